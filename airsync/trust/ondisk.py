"""Carried checksum databases on disk: find them in a tree, and run the go command's checks on them.

What this is: the thin I/O around ``carried`` for a mirror, a medium, or a mirror with a medium laid
over it (what an import would leave). A tree holds a database under ``sumdb/<name>/``: its
``supported`` file, ``lookup/...`` answers, ``tile/...`` hashes, and airsync's own ``airsync/heads/N``
(every head carried) and ``airsync/key`` (the key the border checked them with).

How it works: ``databases(files)`` groups a tree's files (relative path -> file on disk) by
database; ``DatabaseFiles`` reads them (never through a symlink); ``check`` picks the key (the one
this machine trusts for that name when it has one, else the one the border carried) and returns
``carried.check_database``'s problems with tree-relative paths. A database directory with no
lookups and no heads holds nothing the go command could check, and passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airsync.errors import AirsyncError, ConfigError
from airsync.trust import carried, note, sumdb

MAX_FILE = 1 << 20  # a lookup answer, tile, head or key is far smaller


def read_small(path: Path) -> bytes | None:
    """A small regular file's bytes; None when it is missing, not regular, or too large."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = os.read(fd, MAX_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= MAX_FILE else None


@dataclass
class DatabaseFiles:
    """One carried database: its files by path relative to ``sumdb/<name>/``."""

    name: str
    files: dict[str, Path] = field(default_factory=dict)
    _cache: dict[str, bytes | None] = field(default_factory=dict, repr=False)

    def read(self, rel: str) -> bytes | None:
        if rel not in self._cache:
            path = self.files.get(rel)
            self._cache[rel] = None if path is None else read_small(path)
        return self._cache[rel]

    def lookups(self) -> dict[str, bytes]:
        out = {}
        for rel in self.files:
            if rel.startswith("lookup/"):
                data = self.read(rel)
                out[rel] = b"" if data is None else data
        return out

    def head_files(self) -> dict[str, bytes]:
        out = {}
        for rel in self.files:
            if rel.startswith(carried.HEADS_DIR + "/"):
                data = self.read(rel)
                out[rel] = b"" if data is None else data
        return out

    def read_tile(self, rel: str) -> bytes | None:
        return self.read(rel) if rel.startswith("tile/") else None

    def carried_key(self) -> str | None:
        data = self.read(carried.KEY_FILE)
        try:
            return data.decode("utf-8").strip() if data else None
        except UnicodeDecodeError:
            return None

    def heads(self, verifier: note.Verifier) -> list[carried.Head]:
        """Every head these files carry (lookups and head files) that opens with the key, newest last."""
        found: dict = {}
        msgs = [m for m in self.head_files().values()]
        for body in self.lookups().values():
            try:
                msgs.append(carried.split_lookup(body)[3])
            except AirsyncError:
                continue
        for msg in msgs:
            try:
                h = carried.open_head(msg, verifier)
            except AirsyncError:
                continue
            found.setdefault(h.tree, h)
        return sorted(found.values(), key=lambda h: h.n)


def databases(files: Mapping[str, Path]) -> dict[str, DatabaseFiles]:
    """Group a tree's files (tree-relative path -> file) into its carried databases."""
    out: dict[str, DatabaseFiles] = {}
    for rel, path in files.items():
        parts = rel.split("/", 2)
        if len(parts) == 3 and parts[0] == "sumdb":
            out.setdefault(parts[1], DatabaseFiles(parts[1])).files[parts[2]] = path
    return out


def mirror_databases(root: Path) -> dict[str, DatabaseFiles]:
    """The databases a mirror (or medium) directory carries under ``sumdb/``."""
    files: dict[str, Path] = {}
    base = Path(root) / "sumdb"
    if base.is_dir():
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                p = Path(dirpath) / f
                if not f.startswith(".") and p.is_file() and not p.is_symlink():
                    files[p.relative_to(root).as_posix()] = p
    return databases(files)


def trusted_key(name: str, gosumdb: str | None) -> str | None:
    """The key this machine trusts for database ``name``: from a GOSUMDB value naming it, or the
    go command's built-in key for a known name; None when neither says."""
    if gosumdb:
        try:
            db = sumdb.parse_gosumdb(gosumdb)
        except ConfigError:
            db = None
        if db is not None and db.name == name:
            return db.vkey
    try:
        db = sumdb.parse_gosumdb(name)  # a known name stands for its key
    except ConfigError:
        return None
    return db.vkey if db is not None and db.name == name else None


def choose_key(db: DatabaseFiles, gosumdb: str | None) -> tuple[note.Verifier | None, list[tuple[str, str]]]:
    """The verifier to check ``db`` with, and problems with the keys (tree-relative paths)."""
    where = f"sumdb/{db.name}/{carried.KEY_FILE}"
    trusted = trusted_key(db.name, gosumdb)
    carried_key = db.carried_key()
    problems = []
    if trusted and carried_key and carried_key != trusted:
        problems.append((where, f"the border checked this database with key {carried_key}; "
                                f"this machine trusts {trusted} (GOSUMDB): a note signed by another key"))
    vkey = trusted or carried_key
    if vkey is None:
        return None, problems
    try:
        return note.parse_verifier(vkey), problems
    except note.NoteError as e:
        return None, [*problems, (where, f"unusable checksum database key: {e}")]


def check(db: DatabaseFiles, gosumdb: str | None = None) -> list[tuple[str, str]]:
    """The go command's checks over one carried database, as (tree-relative path, problem)."""
    lookups, heads = db.lookups(), db.head_files()
    if not lookups and not heads:
        return []
    verifier, problems = choose_key(db, gosumdb)
    prefix = f"sumdb/{db.name}/"
    if verifier is None:
        if not problems:
            problems.append((prefix + carried.KEY_FILE, f"no key known for checksum database {db.name}: set GOSUMDB "
                                                        "to its name+hash+key to check it"))
        return problems
    found = carried.check_database(lookups, heads, db.read_tile, verifier, supported=carried.SUPPORTED in db.files)
    return problems + [(prefix + path, why) for path, why in found]
