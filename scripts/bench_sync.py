#!/usr/bin/env python3
"""Sync benchmark: ``airsync sync`` against ``rsync -a``, mirror tree to a directory on the same disk.

Scenarios (the two tools alternate A B / B A for --rounds; fresh target directories every round):

  first copy   an empty target; the signature cache (in MIRROR/.airsync/state.db) warm.
  no-op        a resync of the up-to-date target each tool just made itself.
  add          a resync after adding versions to the mirror (--add-small small modules and one new
               --add-big-mb MiB version of a big module), each tool updating the target it made; the
               additions are removed from the mirror again after the round.
  cold         once, before the rounds: airsync's first copy with no signature cache (it hashes every
               mirror file once: sha256, xxh3, content-defined chunks, go.sum hashes). This run also
               warms the cache, standing in for the untimed warm-up run.

Wall time is time.monotonic() around the child, peak RSS ru_maxrss from os.wait4; both come from the
small launcher of scripts/bench_mirror.py (so the benchmark process's own RSS is not folded in). After
every run the script calls sync(2), untimed by the comparison, and records how long it took (writeback
the tool left behind). Results go to stdout and replace the ``## Sync`` section of BENCHMARKS.md.

    scripts/bench_sync.py            # 2 x 64 MiB + 300 small modules, 3 rounds (~2-4 minutes)
    scripts/bench_sync.py --quick    # 2 x 16 MiB + 60 small modules, 1 round (<1 minute)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
    retire,
    rmtree,
    run_measured,
    source_digest,
    timed_sync,
    tool_version,
    write_section,
)

from airsync import sample  # noqa: E402

MiB = 1 << 20
MB = 1e6
SECTION = "## Sync"


@dataclass
class Measure:
    scenario: str
    tool: str
    round: int
    wall: float
    rss_mb: float
    cpu: float
    sync_s: float
    out: str


def tree(root: Path) -> dict[str, int]:
    """rel path -> size of every regular file under root, skipping dot-paths and airsync's own
    metadata (the manifest, the SBOM, and the chunk sidecars `*.airsig` it writes beside large files)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if f.startswith(".") or f in ("airsync-manifest", "airsync-sbom.cdx.json") or f.endswith(".airsig"):
                continue
            p = Path(dirpath, f)
            out[str(p.relative_to(root))] = p.stat().st_size
    return out


class Bench:
    def __init__(self, args, work: Path, mirror: Path, key: Path) -> None:
        self.args, self.work, self.mirror, self.key = args, work, mirror, key
        self.env = base_env(work)
        self.env["PYTHONPATH"] = str(REPO)
        self.measures: list[Measure] = []
        self.notes: list[str] = []
        self.rsync = shutil.which("rsync") or "/usr/bin/rsync"

    def cmd(self, tool: str, target: Path) -> list[str]:
        if tool == "airsync":
            return [sys.executable, "-m", "airsync", "sync", "--mirror", str(self.mirror), "--to", str(target),
                    "--signing-key", str(self.key)]
        return [self.rsync, "-a", "--exclude=/.airsync", f"{self.mirror}/", f"{target}/"]

    def run(self, scenario: str, tool: str, rnd: int, target: Path) -> Measure:
        target.mkdir(parents=True, exist_ok=True)
        r = run_measured(self.cmd(tool, target), self.env, cwd=REPO, timeout=self.args.timeout)
        if r.rc != 0 or r.killed:
            raise RuntimeError(f"{scenario} {tool} round {rnd}: exit {r.rc}, killed={r.killed}\n{r.stdout}\n{r.stderr}")
        s = timed_sync()
        m = Measure(scenario, tool, rnd, r.wall, r.rss_kb * 1024 / MB, r.utime + r.stime, s,
                    (r.stdout + r.stderr).strip().replace("\n", " / "))
        self.measures.append(m)
        log(f"{scenario:10} {tool:7} round {rnd}: {r.wall:6.2f} s  {m.rss_mb:6.1f} MB  cpu {m.cpu:5.2f} s  "
            f"sync {s:.2f} s  {m.out[:90]}")
        return m

    def check(self, target: Path, what: str) -> None:
        want, have = tree(self.mirror), tree(target)
        if want != have:
            missing = sorted(set(want) - set(have))[:3]
            differ = sorted(k for k in want if k in have and want[k] != have[k])[:3]
            extra = sorted(set(have) - set(want))[:3]
            raise RuntimeError(f"{what}: target differs from the mirror: missing {missing} differ {differ} extra {extra}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 x 16 MiB + 60 small modules, 1 round")
    ap.add_argument("--rounds", type=int, help="A B rounds (default 3; --quick 1)")
    ap.add_argument("--big-count", type=int, default=2)
    ap.add_argument("--big-size-mb", type=int, help="MiB per big module (default 64; --quick 16)")
    ap.add_argument("--small-count", type=int, help="small modules (default 300; --quick 60)")
    ap.add_argument("--add-small", type=int, help="small modules added before the resync (default 20; --quick 5)")
    ap.add_argument("--add-big-mb", type=int, help="MiB of the big module version added (default 16; --quick 4)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is killed")
    add_output_args(ap)
    args = ap.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.big_size_mb = args.big_size_mb or (16 if q else 64)
    args.small_count = args.small_count if args.small_count is not None else (60 if q else 300)
    args.add_small = args.add_small if args.add_small is not None else (5 if q else 20)
    args.add_big_mb = args.add_big_mb or (4 if q else 16)
    argv_shown = "scripts/bench_sync.py" + ("".join(" " + shlex.quote(a) for a in (argv or sys.argv[1:])))

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    digest_start = source_digest()
    work = Path(tempfile.mkdtemp(prefix="airsync-bench-sync-", dir=args.workdir))
    try:
        mirror = work / "mirror"
        base = [sample.big_module(f"example.com/big/b{i:02d}", "v1.0.0", args.big_size_mb * MiB, seed=100 + i)
                for i in range(args.big_count)]
        base += sample.small_modules(args.small_count, seed=1)
        extra = [sample.big_module("example.com/big/b00", "v1.1.0", args.add_big_mb * MiB, seed=999)]
        extra += sample.small_modules(args.add_small, seed=2, prefix="example.com/added")
        log(f"building the mirror in {mirror}")
        sample.build_proxy_tree(mirror, base)
        base_tree = tree(mirror)
        base_bytes = sum(base_tree.values())
        key_prefix = work / "key" / "bench"
        key_prefix.parent.mkdir()
        subprocess.run([sys.executable, "-m", "airsync", "keygen", "--out", str(key_prefix)], cwd=REPO,
                       check=True, capture_output=True, timeout=60)
        key = Path(str(key_prefix) + ".key")
        if not key.exists():
            key = next(p for p in key_prefix.parent.iterdir() if p.suffix == ".key")
        log(f"mirror: {len(base_tree)} files, {base_bytes / MB:.1f} MB; sync after building: {timed_sync():.2f} s")

        b = Bench(args, work, mirror, key)
        true = shutil.which("true") or "/bin/true"
        rss_floor = max(run_measured([true], b.env).rss_kb for _ in range(3)) * 1024 / MB
        startup = med([run_measured([sys.executable, "-m", "airsync", "--version"], b.env, cwd=REPO).wall
                       for _ in range(7)])
        help_s = med([run_measured([sys.executable, "-m", "airsync", "--help"], b.env, cwd=REPO).wall
                      for _ in range(7)])
        log(f"airsync command-line startup (python -m airsync --version, median of 7): {startup:.3f} s; "
            f"--help {help_s:.3f} s")
        startup = (startup, help_s)
        load_start = os.getloadavg()

        # cold signature cache: one airsync first copy, which also warms the cache for the rounds
        rmtree(mirror / ".airsync")
        t = work / "cold"
        b.run("cold", "airsync", 0, t)
        b.check(t, "cold airsync")
        timed_sync()
        retire(t, work)  # deleted at the end, out of the page cache now: see bench_mirror.retire

        extra_files: list[str] = []
        for rnd in range(1, args.rounds + 1):
            order = ["airsync", "rsync"] if rnd % 2 else ["rsync", "airsync"]
            tg = {tool: work / f"r{rnd}-{tool}" for tool in order}
            for tool in order:
                b.run("first copy", tool, rnd, tg[tool])
                b.check(tg[tool], f"first copy {tool} round {rnd}")
            for tool in order:
                b.run("no-op", tool, rnd, tg[tool])
            # add versions to the mirror (as a mirror run would: new files, one @v/list rewritten)
            before = set(tree(mirror))
            sample.build_proxy_tree(mirror, base + extra)
            extra_files = sorted(set(tree(mirror)) - before)
            log(f"added {len(extra_files)} files to the mirror; sync: {timed_sync():.2f} s")
            for tool in order:
                b.run("add", tool, rnd, tg[tool])
                b.check(tg[tool], f"add {tool} round {rnd}")
            for rel in extra_files:
                os.unlink(mirror / rel)
            sample.build_proxy_tree(mirror, base)  # restores b00's @v/list
            timed_sync()
            for tool in order:
                retire(tg[tool], work)
            if tree(mirror) != base_tree:
                raise RuntimeError("the mirror was not restored after the round")

        elapsed = time.monotonic() - t0
        section = markdown(b, args, argv_shown, started, elapsed, base_tree, extra, extra_files, rss_floor,
                           load_start, digest_start, startup)
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


def markdown(b: Bench, args, argv_shown, started, elapsed, base_tree, extra, extra_files, rss_floor,
             load_start, digest_start, startup) -> str:
    info = machine_info()
    ms = b.measures

    def sel(scen, tool):
        return [m for m in ms if m.scenario == scen and m.tool == tool]

    add_bytes = sum(len(sample.zip_bytes(m)) for m in extra)
    L = [f"{SECTION}\n",
         f"Measured {started:%Y-%m-%d %H:%M} UTC by `{argv_shown}` (whole run {elapsed / 60:.1f} min).\n",
         f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, Linux {info['kernel']}; "
         f"Python {info['python']}; {tool_version(['rsync', '--version'])}; airsync {info['airsync']}. Load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.\n",
         f"Method: the mirror is a GOPROXY tree built with `airsync.sample.build_proxy_tree`: {args.big_count} big "
         f"modules `example.com/big/bNN@v1.0.0` with {args.big_size_mb} MiB of incompressible data (stored zip) + "
         f"{args.small_count} small modules (.info, .mod, .zip, @v/list each): {len(base_tree)} files, "
         f"{sum(base_tree.values()) / MB:.1f} MB. Mirror and targets are on the same disk (the mirror's files are "
         f"in the page cache). Fresh target directories every round; the tools alternate A B / B A for "
         f"{args.rounds} round(s). *add*: before the resync, {args.add_small} small modules "
         f"`example.com/added/mNNNN@v1.0.0` and `example.com/big/b00@v1.1.0` ({args.add_big_mb} MiB) are added "
         f"to the mirror ({len(extra_files)} files, {add_bytes / MB:.1f} MB of zips; b00's @v/list rewritten), "
         f"and removed after the round; each tool resyncs the target it made itself. Wall time is "
         f"`time.monotonic()` around the child, peak RSS `ru_maxrss` from `os.wait4` via a small launcher "
         f"(its floor, /bin/true's reported peak, is {rss_floor:.1f} MB), CPU is user+system. After every run "
         f"the script calls `sync` (not part of the wall time; its duration is the last column: writeback the "
         f"tool left behind). MB = 10^6 bytes. Every target is checked against the mirror (same files, same "
         f"sizes).\n",
         "```\n"
         "# airsync\n"
         "python -m airsync sync --mirror MIRROR --to TARGET --signing-key K.key\n"
         "# rsync (airsync's state directory MIRROR/.airsync is not copied)\n"
         "rsync -a --exclude=/.airsync MIRROR/ TARGET/\n"
         "```\n",
         "| scenario | tool | wall s, median (min-max) | peak RSS MB | CPU s | `sync` after, s | airsync/rsync (median wall) |",
         "|---|---|---|---|---|---|---|"]
    ratios = {}
    for scen in ("cold", "first copy", "no-op", "add"):
        for tool in ("airsync", "rsync"):
            xs = sel(scen, tool)
            if not xs:
                continue
            ratio = ""
            if tool == "airsync":
                ref = sel("first copy" if scen == "cold" else scen, "rsync")
                if ref:
                    ratios[scen] = med([m.wall for m in xs]) / med([m.wall for m in ref])
                    ratio = f"{ratios[scen]:.2f}x" + (" (vs rsync's first copy)" if scen == "cold" else "")
            name = "first copy, cold signature cache (once)" if scen == "cold" else scen
            L.append(f"| {name} | {tool} | {fmt_range([m.wall for m in xs])} | "
                     f"{fmt_range([m.rss_mb for m in xs], '{:.1f}')} | {fmt_range([m.cpu for m in xs])} | "
                     f"{fmt_range([m.sync_s for m in xs])} | {ratio} |")
    L.append("")
    L.append("Targets (from the issue):\n")

    def verdict(r, lim):
        return f"{r:.2f}x: **{'met' if r <= lim else 'missed'}**" if r == r else "not measured"

    version_s, help_s = startup
    first_a, first_r = sel("first copy", "airsync"), sel("first copy", "rsync")
    noop_a, noop_r = sel("no-op", "airsync"), sel("no-op", "rsync")
    nan = float("nan")
    # rsync leaves its writes to the page cache: its `sync` afterwards is part of a durable copy.
    first = (med([m.wall for m in first_a]) / med([m.wall + m.sync_s for m in first_r])
             if first_a and first_r else nan)
    noop = (max(med([m.wall for m in noop_a]) - version_s, 0.0) / med([m.wall for m in noop_r])
            if noop_a and noop_r else nan)
    L.append(f"- first copy (warm signature cache) <= 1.0x `rsync -a` + `sync`: {verdict(first, 1.0)}")
    L.append(f"- no-op resync <= 1.2x rsync, net of airsync's start-up ({version_s:.3f} s): {verdict(noop, 1.2)}")
    L.append(f"- `airsync --help` <= 60 ms (median of 7): {help_s * 1000:.0f} ms: "
             f"**{'met' if help_s <= 0.060 else 'missed'}**")
    L.append("")
    outs = {}
    for m in ms:
        if m.tool == "airsync":
            outs.setdefault(m.scenario, m.out)
    L.append(f"For scale: `python -m airsync --version` (interpreter start and the command line's imports) "
             f"takes {version_s:.3f} s here (median of 7), a floor under every airsync row.\n")
    L.append("airsync's summary line, first round of each scenario: " +
             "; ".join(f"{s}: `{o[:160]}`" for s, o in outs.items()) + "\n")
    L.append("Per run (wall s / `sync` s): " + "; ".join(
        f"{m.scenario} {m.tool} r{m.round} {m.wall:.2f}/{m.sync_s:.2f}" for m in ms) + "\n")
    if source_digest() != digest_start:
        L.append("Note: airsync's sources changed during this run; the runs may mix two versions.\n")
    return "\n".join(L).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.exit(main())
