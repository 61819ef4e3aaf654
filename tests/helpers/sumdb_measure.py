"""Measure what a carried checksum database costs: tiles and bytes per closure and per new head.

Run: ``.venv/bin/python -m tests.helpers.sumdb_measure [OLD_AIRSYNC_SRC]`` (a helper, not a test).
A real Go sumdb server (tests/helpers/sumdbserver) with 1,000,000 records, a closure of 128 module
versions spread through the log (half answered from the proxy's cache at older heads, the rest
live while the log grows), mirrored by airsync; then the log grows by 20,000 records and 8 new
modules are carried at a new head. Prints files and bytes under ``sumdb/`` after each round and
what changed between them (what a sync writes to a medium). With OLD_AIRSYNC_SRC (a checkout of
an older airsync) the same runs with it too, for comparison.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from airsync import sample
from airsync.trust import note
from tests.helpers.sumdbserver import SumDBServer, build_sumdbserver

NAME = "sumdb.airsync.test"


def snapshot(root: Path) -> dict[str, bytes]:
    base = root / "sumdb" / NAME
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def summarize(files: dict[str, bytes]) -> str:
    tiles = {k: v for k, v in files.items() if k.startswith("tile/")}
    lookups = {k: v for k, v in files.items() if k.startswith("lookup/")}
    other = {k: v for k, v in files.items() if k not in tiles and k not in lookups}
    return (f"{len(tiles)} tiles {sum(map(len, tiles.values()))} B, {len(lookups)} lookups "
            f"{sum(map(len, lookups.values()))} B, {len(other)} other {sum(map(len, other.values()))} B; "
            f"total {sum(map(len, files.values()))} B")


def run(src: Path | None, work: Path, binary: Path, label: str) -> None:
    mods = sample.demo_modules() + sample.small_modules(128 - len(sample.demo_modules()) + 8, seed=5)
    first, second = mods[:128], mods[128:]
    root = work / "upstream"
    sample.build_proxy_tree(root, mods)
    skey, vkey = note.generate_key(NAME)
    m = work / "mirror"
    env = dict(os.environ)
    cwd = str(src) if src else str(Path(__file__).resolve().parents[2])
    if src:
        env["PYTHONPATH"] = str(src)

    def mirror(url, ms):
        r = subprocess.run([sys.executable, "-m", "airsync", "mirror", *[f"--module={x.path}@{x.version}" for x in ms],
                            "--to", str(m), "--upstream", url, "--sumdb", vkey, "--no-progress"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr

    with SumDBServer(binary, root, skey, NAME, work=work / "db", pad=1_000_000, prelog=first[::2]) as db:
        mirror(db.url, first)
        one = snapshot(m)
        db.grow(20_000)
        mirror(db.url, second)
        two = snapshot(m)
    changed = {k: v for k, v in two.items() if one.get(k) != v}
    print(f"[{label}] closure of {len(first)}: {summarize(one)}")
    print(f"[{label}] after a new head (+{len(second)} modules): {summarize(two)}")
    print(f"[{label}] new or changed by the new head: {summarize(changed)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_sumdbserver(Path(tmp) / "build")
        run(None, Path(tmp) / "new", binary, "this airsync")
        if len(sys.argv) > 1:
            run(Path(sys.argv[1]), Path(tmp) / "old", binary, "old airsync")


if __name__ == "__main__":
    main()
