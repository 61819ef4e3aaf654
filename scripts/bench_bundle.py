#!/usr/bin/env python3
"""Bundle benchmark: ``airsync bundle`` / ``airsync import`` of a bundle against tar, side by side.

Scenarios (the two sides alternate A B / B A for --rounds; fresh output directories every round):

  bundle       ``airsync bundle`` of the mirror (tar parts of --max-size, hashed, fsynced, signed, with
               its SBOM) against ``tar -cf`` of the same tree (then ``sync``, so both reach the disk).
  import       ``airsync import`` of that bundle into an empty mirror (every part, file, h1 and the
               checksum database checked, published atomically) against ``tar -xf`` of a medium's tar
               (the same files with a medium's signed manifest) followed by ``airsync verify`` of it
               (then ``sync``).
  differential once: after one new version of a big module is added to the mirror, the bytes of
               ``airsync bundle --since <the receipt of the first import>`` against the new files' bytes.

The signature cache of the mirror is warmed once before the rounds (an untimed bundle). Wall time is
time.monotonic() around the child (the launcher of scripts/bench_mirror.py), plus the ``sync`` after it.
Results go to stdout and replace the ``## Bundle`` section of BENCHMARKS.md.

    scripts/bench_bundle.py            # 2 x 64 MiB + 300 small modules, 3 rounds
    scripts/bench_bundle.py --quick    # 2 x 16 MiB + 60 small modules, 1 round (<1 minute)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_mirror import (  # noqa: E402  (stdlib-only helpers shared with the mirror benchmark)
    add_output_args,
    base_env,
    fmt_range,
    log,
    machine_info,
    med,
    rmtree,
    run_measured,
    timed_sync,
    tool_version,
    write_section,
)

from airsync import sample  # noqa: E402

MiB = 1 << 20
MB = 1e6
SECTION = "## Bundle"


def tree_bytes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if f.startswith(".") or f.startswith("airsync-"):
                continue
            p = Path(dirpath, f)
            out[str(p.relative_to(root))] = p.stat().st_size
    return out


def tree_digests(root: Path) -> dict[str, tuple[int, str]]:
    return {rel: (size, hashlib.sha256((root / rel).read_bytes()).hexdigest()) for rel, size in tree_bytes(root).items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 x 16 MiB + 60 small modules, 1 round")
    ap.add_argument("--rounds", type=int, help="A B rounds (default 3; --quick 1)")
    ap.add_argument("--big-size-mb", type=int, help="MiB per big module (default 64; --quick 16)")
    ap.add_argument("--small-count", type=int, help="small modules (default 300; --quick 60)")
    ap.add_argument("--max-size", default="256M", help="bundle part size (default 256M)")
    ap.add_argument("--timeout", type=float, default=600.0)
    add_output_args(ap)
    args = ap.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.big_size_mb = args.big_size_mb or (16 if q else 64)
    args.small_count = args.small_count if args.small_count is not None else (60 if q else 300)
    argv_shown = "scripts/bench_bundle.py" + "".join(" " + shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="airsync-bench-bundle-", dir=args.workdir))
    env = base_env(work)
    env["PYTHONPATH"] = str(REPO)
    air = [sys.executable, "-m", "airsync"]
    tar = shutil.which("tar") or "/bin/tar"
    rows: dict[str, list[float]] = {}

    def run(name: str, cmd: list[str]) -> float:
        r = run_measured(cmd, env, cwd=REPO, timeout=args.timeout)
        if r.rc != 0 or r.killed:
            raise RuntimeError(f"{name}: exit {r.rc}\n{r.stdout}\n{r.stderr}")
        s = timed_sync()
        log(f"{name:28} {r.wall:6.2f} s + sync {s:.2f} s  {(r.stdout + r.stderr).strip()[:100]}")
        return r.wall + s

    try:
        mirror = work / "mirror"
        mods = [sample.big_module(f"example.com/big/b{i:02d}", "v1.0.0", args.big_size_mb * MiB, seed=100 + i)
                for i in range(2)]
        mods += sample.small_modules(args.small_count, seed=1)
        sample.build_proxy_tree(mirror, mods)
        files = tree_bytes(mirror)
        total = sum(files.values())
        key = work / "k"
        subprocess.run([*air, "keygen", "--out", str(key)], env=env, check=True, capture_output=True)
        log(f"mirror: {len(files)} files, {total / MB:.1f} MB")
        run("warm-up (signature cache)", [*air, "bundle", "--mirror", str(mirror), "--out", str(work / "warm"),
                                          "--signing-key", f"{key}.key", "--max-size", args.max_size])
        rmtree(work / "warm")
        medium = work / "medium"
        medium.mkdir()
        run("medium for the tar side", [*air, "sync", "--mirror", str(mirror), "--to", str(medium),
                                        "--signing-key", f"{key}.key"])
        subprocess.run([tar, "-cf", str(work / "medium.tar"), "-C", str(medium), "--exclude=./.airsync-partial", "."],
                       check=True)
        for rnd in range(1, args.rounds + 1):
            order = ["airsync", "tar"] if rnd % 2 else ["tar", "airsync"]
            for side in order:
                out = work / f"r{rnd}-{side}-out"
                if side == "airsync":
                    rows.setdefault("bundle airsync", []).append(run(f"bundle airsync r{rnd}", [
                        *air, "bundle", "--mirror", str(mirror), "--out", str(out), "--signing-key", f"{key}.key",
                        "--max-size", args.max_size]))
                else:
                    out.mkdir()
                    rows.setdefault("bundle tar", []).append(run(f"bundle tar -cf r{rnd}", [
                        tar, "-cf", str(out / "mirror.tar"), "-C", str(mirror), "--exclude=./.airsync", "."]))
            for side in order:
                into = work / f"r{rnd}-{side}-inside"
                if side == "airsync":
                    rows.setdefault("import airsync", []).append(run(f"import airsync r{rnd}", [
                        *air, "import", str(work / f"r{rnd}-airsync-out"), "--into", str(into),
                        "--key", f"{key}.pub", "--receipt", str(work / "receipt")]))
                    if tree_bytes(into) != files:
                        raise RuntimeError("the imported mirror differs from the border's")
                else:
                    into.mkdir()
                    t = run(f"import tar -xf r{rnd}", [tar, "-xf", str(work / "medium.tar"), "-C", str(into)])
                    t += run(f"import verify r{rnd}", [*air, "verify", str(into), "--key", f"{key}.pub"])
                    rows.setdefault("import tar", []).append(t)
            for side in order:
                rmtree(work / f"r{rnd}-{side}-out")
                if rnd < args.rounds:
                    rmtree(work / f"r{rnd}-{side}-inside")
        # One version update: the differential bundle's bytes against the new files'.
        before = tree_digests(mirror)
        sample.build_proxy_tree(mirror, mods + [sample.updated_module(mods[0], "v1.1.0", seed=7)])
        after = tree_digests(mirror)
        new_files = [rel for rel, d in after.items() if before.get(rel) != d]
        new_bytes = sum(after[rel][0] for rel in new_files)
        diff = work / "diff"
        run("differential bundle", [*air, "bundle", "--mirror", str(mirror), "--out", str(diff), "--signing-key",
                                    f"{key}.key", "--since", str(work / "receipt"), "--max-size", args.max_size])
        diff_bytes = sum(p.stat().st_size for p in diff.glob("*.tar"))
        # Where airsync's time goes besides the bytes: its start-up, and the SBOM (cyclonedx-python-lib).
        startup = sorted(run_measured([*air, "--version"], env, cwd=REPO).wall for _ in range(3))[1]
        from airsync.carry import manifest, sbom

        (mpath,) = diff.glob("*.manifest")
        bm = manifest.decode(mpath.read_bytes().split(b"\n\n")[0] + b"\n")
        every = [e for e in bm.entries] + list(bm.held)
        t = time.monotonic()
        sbom.make_sbom(every, bm.gosum, "bench", bm.created)
        sbom_s = time.monotonic() - t
        elapsed = time.monotonic() - t0
        info = machine_info()

        def ratio(a: str, b: str) -> str:
            return f"{med(rows[a]) / med(rows[b]):.2f}x"

        section = "\n".join([
            f"{SECTION}\n",
            f"Measured {started:%Y-%m-%d %H:%M} UTC by `{argv_shown}` (whole run {elapsed / 60:.1f} min).\n",
            f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, Linux {info['kernel']}; Python "
            f"{info['python']}; {tool_version([tar, '--version'])}; airsync {info['airsync']}.\n",
            f"Method: a mirror of 2 big modules ({args.big_size_mb} MiB each, incompressible) and "
            f"{args.small_count} small ones: {len(files)} files, {total / MB:.1f} MB, in the page cache. "
            f"*bundle*: `airsync bundle --max-size {args.max_size}` (tar parts, every file hashed, each part "
            f"fsynced, SBOM, signed manifest) against `tar -cf` of the tree; *import*: `airsync import` of that "
            f"bundle into an empty mirror (parts, files, h1 and checksums checked, published) against `tar -xf` of "
            f"a medium's tar followed by `airsync verify` of the result. Both sides end with `sync`, counted. "
            f"The sides alternate over {args.rounds} round(s); medians (min-max) in seconds.\n",
            "| scenario | airsync | tar | ratio |",
            "| --- | --- | --- | --- |",
            f"| bundle (vs `tar -cf` + sync) | {fmt_range(rows['bundle airsync'])} | {fmt_range(rows['bundle tar'])} | "
            f"{ratio('bundle airsync', 'bundle tar')} |",
            f"| import (vs `tar -xf` + `airsync verify` + sync) | {fmt_range(rows['import airsync'])} | "
            f"{fmt_range(rows['import tar'])} | {ratio('import airsync', 'import tar')} |",
            "",
            f"Differential bundle after one version update (`{mods[0].path}@v1.1.0`, "
            f"{len(new_files)} new or changed files, {new_bytes / MB:.2f} MB): parts total {diff_bytes / MB:.2f} MB "
            f"= {diff_bytes / new_bytes:.3f}x the new files' bytes (tar headers and padding).\n",
            f"Where airsync's time goes besides moving and hashing bytes: starting the command "
            f"({startup:.2f} s for `airsync --version`, paid by each side's `airsync` once) and building the "
            f"SBOM with cyclonedx-python-lib ({sbom_s:.2f} s for the {args.small_count + 3} module versions here, "
            f"about {sbom_s / (args.small_count + 3) * 1000:.1f} ms each). `tar -cf` from the page cache only "
            f"copies bytes; the bundle also hashes each file (xxh3) and each part (sha256), fsyncs each part and "
            f"signs. Import pays the part's sha256, then the same checks as `airsync verify`, then publishing.\n",
        ])
        print()
        print(section)
        if not args.no_write:
            write_section(args.output, section, SECTION)
        return 0
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
