"""The quick check of a resync: what a sync saw, as one hash.

rsync's quick check compares each file's size and modification time. A sync here has more to
compare: the mirror's files, the target's files and sidecars, the signed manifest and SBOM
that describe them, and the settings (``only``, the signer). After a sync that left the target
equal to the mirror, the lstat of all of them (size, mtime and ctime in nanoseconds, inode,
mode) is hashed into one stamp, kept in the mirror's state with the number of files and the
names of the target's files that are not ours. The next sync of that target scans both trees,
as it must anyway, and stamps them again: the same stamp means nothing changed on either side
since the target was last made equal to the mirror, and the sync ends there, with no manifest
to read and verify and no signature to look up. Any difference, even a file touched with its
bytes unchanged, takes the full path, which checks the signed manifest and compares what it
must. The stamp is never looser than that path's own size-and-mtime check: it covers more
fields of every file, among them the change time, which a program cannot set back.

Pure: stat results and strings in, a stamp and a record out; ``decode`` of a damaged record
gives None (the record is a hint: without it the sync takes the full path).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Changes whenever what a stamp covers changes, so that an older record never matches.
VERSION = "airsync-syncstamp-1"


@dataclass(frozen=True)
class Record:
    stamp: str
    files: int  # files of the mirror (or of its ``only`` subset) on the target
    unknown: tuple[str, ...]  # files on the target that are not ours, left alone


def stamp(trees: Iterable[tuple[str, Mapping[str, os.stat_result | None]]], settings: Iterable[str]) -> str:
    """One hash of named trees (relative path -> lstat, None for an absent file) and settings."""
    h = hashlib.sha256(VERSION.encode())
    for name, files in trees:
        h.update(f"\0tree {name}\n".encode())
        lines = []
        for rel, st in files.items():
            if st is None:
                lines.append(f"{rel}\0-\n")
            else:
                lines.append(
                    f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{st.st_mode}\n"
                )
        lines.sort()
        h.update("".join(lines).encode("utf-8", "surrogateescape"))
    for s in settings:
        h.update(f"\0setting {s}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def encode(record: Record) -> bytes:
    return json.dumps(
        {"version": VERSION, "stamp": record.stamp, "files": record.files, "unknown": list(record.unknown)},
        ensure_ascii=True,
    ).encode()


def decode(data: bytes) -> Record | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return None
    s, files, unknown = doc.get("stamp"), doc.get("files"), doc.get("unknown")
    if not isinstance(s, str) or type(files) is not int or files < 0 or not isinstance(unknown, list):
        return None
    if not all(isinstance(u, str) for u in unknown):
        return None
    return Record(s, files, tuple(unknown))
