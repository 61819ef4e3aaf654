#!/usr/bin/env python3
"""The CPU floor of mirroring a file set: only the work that no mirror which verifies as the go
command does, and keeps chunk signatures for deltas, can skip.

For every file of the set, read from the upstream tree (in the page cache, as nginx serves it):
  - one write of its bytes into a fresh directory, in pieces of ``PIECE`` (no fsync: the
    durability airsync adds is its own cost, measured by the benchmark). Pieces, not one
    ``write`` per file: on this machine's kernel a single write of 2 MiB or more into the page
    cache costs 12x the CPU of the same bytes in pieces of up to 1 MiB (0.165 s against 0.013 s
    for 64 MiB), which no mirror has to pay; a floor written whole was that much too high;
  - for a ``.zip``: its h1, i.e. every entry inflated and SHA-256'd, then the summary hash
    (``dirhash.hash_zip``, the same code the go command's rules are checked against);
  - for a ``.mod``: its h1 (one SHA-256);
  - one content-defined chunking pass with airsync's parameters (FastCDC), each chunk hashed
    once with xxh3 (the signature's cost, without the whole-file hashes it also records).

No network, no event loop, one thread: the floor is the work, not how it is scheduled. The
benchmark runs this as a child and reports its user+system CPU seconds per GB next to airsync's.

    scripts/cpu_floor.py UPSTREAM_DIR OUT_DIR FILELIST     # FILELIST: one relative path per line
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pyfastcdc  # noqa: E402
import xxhash  # noqa: E402

from airsync.carry.chunks import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, NORMALIZATION  # noqa: E402
from airsync.goproxy import dirhash  # noqa: E402

#: Bytes per read and write of the copy.
PIECE = 1 << 20


def main(argv: list[str]) -> int:
    upstream, out, listing = Path(argv[0]), Path(argv[1]), Path(argv[2])
    total = 0
    buf = bytearray(PIECE)
    for rel in listing.read_text().split():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with open(upstream / rel, "rb", buffering=0) as src:
                while n := src.readinto(buf):
                    os.write(fd, memoryview(buf)[:n])
                    total += n
        finally:
            os.close(fd)
        if rel.endswith(".zip"):
            dirhash.hash_zip(dest)
        elif rel.endswith(".mod"):
            dirhash.hash_gomod(dest.read_bytes())
        cdc = pyfastcdc.FastCDC(CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX, normalized_chunking=NORMALIZATION)
        with open(dest, "rb", buffering=0) as f:
            for cut in cdc.cut_stream(f):
                xxhash.xxh3_128_digest(cut.data)
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
