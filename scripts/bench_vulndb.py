#!/usr/bin/env python3
"""Vulnerability database benchmark: what ``airsync mirror --vulndb`` moves, first and on an update.

The database is built from every real OSV entry of golang.org/x/vulndb's ``data/osv`` (the version
tests/helpers/vulndbserver.py pins; ``scripts/setup --test`` downloads it), laid out as the Go
project publishes it (``.json`` and ``.json.gz``), and served from 127.0.0.1 by the tests' counting
static server (tests/helpers/faultserver.py, no faults). Then:

  first      ``airsync mirror --to M --vulndb URL`` into an empty mirror: all entries minus the
             newest NEW (held back for the update);
  no-op      the same again, nothing changed upstream;
  update     NEW entries added and CHANGED existing ones given a new ``modified`` time upstream:
             only they and the three index files may cross;
  plain      the first mirror again from a server that has only the ``.json`` files (no ``.gz``),
             the bytes a client that cannot use the compressed files moves.

Requests and bytes (response bodies, as the server counts them) per run; the update is compared
with fetching the whole database again (the ratio the issue asks about). Results go to stdout and
replace the ``## Vulnerability database`` section of BENCHMARKS.md.

    scripts/bench_vulndb.py [--new 5] [--changed 3] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as _dt
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

from bench_mirror import add_output_args, log, machine_info, write_section  # noqa: E402

from tests.helpers import vulndbserver  # noqa: E402
from tests.helpers.faultserver import FaultServer  # noqa: E402

SECTION = "## Vulnerability database"


def run_mirror(mirror: Path, url: str) -> tuple[float, str]:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "airsync", "--log-format", "json", "mirror", "--to", str(mirror),
                        "--vulndb", url], capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - t
    if r.returncode != 0:
        raise SystemExit(f"airsync mirror failed:\n{r.stdout}\n{r.stderr}")
    return took, r.stdout.strip()


def measure(srv: FaultServer, mirror: Path) -> dict:
    srv.reset_counters()
    took, out = run_mirror(mirror, srv.url)
    reqs = srv.requests
    index = sum(n for path, n in srv.bytes_sent.items() if path.startswith("/index/"))
    return {"seconds": took, "requests": len(reqs), "bytes": srv.total_bytes(), "out": out, "index": index,
            "entries": sum(1 for q in reqs if q.path.startswith("/ID/"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", type=int, default=5, help="entries added upstream for the update")
    ap.add_argument("--changed", type=int, default=3, help="entries whose modified time changes for the update")
    add_output_args(ap)
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)
    work = Path(tempfile.mkdtemp(prefix="bench-vulndb-", dir=args.workdir))
    try:
        entries = vulndbserver.load()
        entries.sort(key=lambda e: (e["modified"], e["id"]))
        first_set, held = entries[: -args.new], entries[-args.new:]
        newest = max(e["modified"] for e in entries)
        later = (_dt.datetime.fromisoformat(newest.replace("Z", "+00:00")) + _dt.timedelta(days=1)) \
            .strftime("%Y-%m-%dT%H:%M:%SZ")
        up = work / "upstream"
        vulndbserver.build(up, first_set)
        json_bytes = sum(p.stat().st_size for p in up.rglob("*.json"))
        gz_bytes = sum(p.stat().st_size for p in up.rglob("*.json.gz"))
        log(f"database: {len(first_set)} entries, {json_bytes:,} B as .json, {gz_bytes:,} B as .json.gz")
        results = {}
        with FaultServer(up) as srv:
            log("first mirror")
            results["first"] = measure(srv, work / "mirror")
            log("no-op")
            results["noop"] = measure(srv, work / "mirror")
            for e in first_set[: args.changed]:
                e["modified"] = later
            for e in held:
                e["modified"] = later
            shutil.rmtree(up)
            vulndbserver.build(up, first_set + held)
            full_after = sum(p.stat().st_size for p in up.rglob("*.json.gz"))
            log("update")
            results["update"] = measure(srv, work / "mirror")
        plain = work / "plain"
        vulndbserver.build(plain, first_set[args.changed:] + held, gz=False)
        with FaultServer(plain) as srv:
            log("plain .json first mirror")
            results["plain"] = measure(srv, work / "mirror-plain")
        for k, r in results.items():
            log(f"{k}: {r['requests']} requests, {r['bytes']:,} B, {r['entries']} entries, {r['seconds']:.1f} s")

        info = machine_info()
        first, noop, upd, pl = results["first"], results["noop"], results["update"], results["plain"]
        L = [f"{SECTION}\n\n",
             f"Measured {started:%Y-%m-%d %H:%M} UTC by `scripts/bench_vulndb.py --new {args.new} --changed "
             f"{args.changed}` on {info['nproc']} CPUs ({info['cpu']}), loopback only: a database built from "
             f"all {len(entries):,} real entries of golang.org/x/vulndb {vulndbserver.VULNDB_VERSION} (data/osv), "
             f"served with `.json` and `.json.gz` files by the tests' counting static server. Bytes are response "
             f"bodies.\n\n",
             "| run | requests | entries fetched | bytes | time |\n| --- | ---: | ---: | ---: | ---: |\n",
             f"| first mirror ({len(first_set):,} entries) | {first['requests']:,} | {first['entries']:,} | "
             f"{first['bytes']:,} | {first['seconds']:.1f} s |\n",
             f"| again, nothing changed | {noop['requests']} | {noop['entries']} | {noop['bytes']:,} | "
             f"{noop['seconds']:.1f} s |\n",
             f"| update: {args.new} new + {args.changed} changed entries | {upd['requests']} | {upd['entries']} | "
             f"{upd['bytes']:,} | {upd['seconds']:.1f} s |\n",
             f"| first mirror from a server without `.gz` files | {pl['requests']:,} | {pl['entries']:,} | "
             f"{pl['bytes']:,} | {pl['seconds']:.1f} s |\n\n",
             f"The update fetches only the changed entries and the three indexes: {upd['bytes']:,} B, "
             f"{upd['bytes'] / full_after:.1%} of fetching the whole compressed database again "
             f"({full_after:,} B), in {upd['requests']} requests instead of {len(entries) + 3:,}; {upd['index'] / upd['bytes']:.0%} of it "
             f"is the indexes (`modules.json` and `vulns.json` list every entry's id and time, and are fetched whole "
             f"whenever `db.json` moves). With nothing changed, one "
             f"request for `index/db.json`. Fetching the `.json.gz` files moves "
             f"{first['bytes'] / pl['bytes']:.0%} of the bytes of the plain `.json` files "
             f"({first['bytes']:,} B against {pl['bytes']:,} B); the requests are one per entry either way (the "
             f"database has no bulk download; airsync keeps 16 in flight).\n"]
        section = "".join(L)
        print(section)
        if not args.no_write:
            write_section(args.output, section, SECTION)
        return 0
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
