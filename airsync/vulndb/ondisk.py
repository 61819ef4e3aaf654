"""A vulnerability database in a directory: read it, check it, publish a new one into a mirror.

A mirror (and a medium, an imported mirror) keeps the database under ``vulndb/`` in the layout
``govulncheck -db file:///MIRROR/vulndb`` reads (``airsync.vulndb.db``).

``check`` is what ``verify`` and ``import`` run over a carried copy: the three index files parse
and agree, every entry ``vulns.json`` names is there, parses, has its file's id, the index's
``modified`` time and the modules ``modules.json`` lists it under. Entry files no index names are
allowed (an entry the database dropped stays, harmless: nothing reads it).

``publish`` puts a checked new version into the mirror so that no reader ever sees an index that
names an entry not there yet: new and changed entries first (each written to the mirror's staging
area, made durable, renamed into ``vulndb/ID/``, the directory made durable), then
``vulns.json``, ``modules.json`` and last ``db.json``, each the same way. A crash between leaves
the old index over a mix of old and newer entries, which govulncheck reads fine and which the
next update (comparing times with the old index) completes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from airsync.errors import ModulePathError
from airsync.goproxy import modpath
from airsync.store import Flusher, MirrorStore, fsync_dir, makedirs_durable, write_plain
from airsync.vulndb import db

__all__ = ["VULNDB", "read_small", "read_index", "present_ids", "check", "check_dir", "publish", "find",
           "reader", "held_versions"]

VULNDB = "vulndb"  # the database's directory in a mirror or on a medium


def read_small(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, refusing more than ``limit`` (never follows a symlink)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise db.VulnDBError(f"{path}: more than the {limit} bytes a file of the database may have")
    return data


def _read(files: Mapping[str, Path], rel: str, where: str, limit: int) -> bytes:
    path = files.get(rel)
    if path is None:
        raise db.VulnDBError(f"{where}/{rel}: missing")
    try:
        return read_small(path, limit)
    except FileNotFoundError:
        raise db.VulnDBError(f"{where}/{rel}: missing") from None
    except OSError as e:
        raise db.VulnDBError(f"{where}/{rel}: cannot read: {e.strerror or e}") from None


def _dir_files(root: Path) -> dict[str, Path]:
    files = {rel: root / rel for rel in db.INDEX_FILES}
    try:
        with os.scandir(root / "ID") as it:
            for entry in it:
                files[f"ID/{entry.name}"] = Path(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return files


def read_index(root: Path, where: str | None = None) -> db.Index | None:
    """The index of the database at ``root``; None when it has none (no ``index/db.json``)."""
    where = where or str(root)
    if not (root / db.DB_FILE).exists():
        return None
    files = {rel: root / rel for rel in db.INDEX_FILES}  # not the entries: a listing of ID/ is thousands
    return db.parse_index(*(_read(files, rel, where, db.MAX_INDEX) for rel in db.INDEX_FILES), prefix=where + "/")


def read_db(root: Path) -> db.DbMeta | None:
    """``index/db.json`` of the database at ``root``; None when it is missing or unreadable."""
    try:
        return db.parse_db(read_small(root / db.DB_FILE, db.MAX_INDEX), str(root / db.DB_FILE))
    except (OSError, db.VulnDBError):
        return None


def present_ids(root: Path) -> set[str]:
    """The ids whose entry files are in the database at ``root``."""
    try:
        with os.scandir(root / "ID") as it:
            return {vid for e in it if (vid := db.id_of_path(f"ID/{e.name}")) is not None}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def check(files: Mapping[str, Path], where: str = VULNDB) -> list[tuple[str, str]]:
    """(path, problem) for the database whose files (relative to it) are ``files``; paths in the
    problems are ``where/<rel>``."""
    try:
        index = db.parse_index(*(_read(files, rel, where, db.MAX_INDEX) for rel in db.INDEX_FILES))
    except db.VulnDBError as e:
        msg = str(e)
        path, _, why = msg.partition(": ")
        if not path.startswith(where):
            path = f"{where}/{path}"
        return [(path, why or msg)]
    problems = []
    for v in index.vulns:
        rel = db.entry_path(v.id)
        at = f"{where}/{rel}"
        try:
            entry = db.parse_entry(_read(files, rel, where, db.MAX_ENTRY), at)
        except db.VulnDBError as e:
            why = str(e).removeprefix(f"{at}: ")
            problems.append((at, why if why != "missing" else f"missing: {db.VULNS_FILE} names {v.id}"))
            continue
        problem = db.check_entry(entry, v.id, index, at)
        if problem:
            problems.append((at, problem.removeprefix(f"{at}: ")))
    return problems


def check_dir(root: Path, where: str | None = None) -> list[tuple[str, str]]:
    """``check`` over the database in the directory ``root``."""
    return check(_dir_files(root), where or str(root))


def _stage(store: MirrorStore, rel: str, data: bytes) -> Path:
    partial = store.partial_path(rel)
    write_plain(partial, data)
    return partial


def publish(store: MirrorStore, entries: Mapping[str, bytes], index: Mapping[str, bytes],
            flusher: Flusher | None = None) -> None:
    """Put checked ``entries`` (id -> bytes) and the three ``index`` files (rel -> bytes) of a
    new version into ``store``'s ``vulndb/``: entries first, then the indexes, ``db.json`` last."""
    root = store.root / VULNDB
    flusher = flusher or Flusher(store.root)
    for d in (root / "ID", root / "index"):
        makedirs_durable(d)
    staged = [(_stage(store, f"{VULNDB}/{db.entry_path(vid)}", data), db.entry_path(vid))
              for vid, data in sorted(entries.items())]
    flusher.files([p for p, _ in staged])
    for partial, rel in staged:
        os.replace(partial, root / rel)
    if staged:
        flusher.dirs({root / "ID"})
    # vulns.json and modules.json before db.json: a reader that sees the new time sees its index.
    for rel in (db.VULNS_FILE, db.MODULES_FILE, db.DB_FILE):
        partial = _stage(store, f"{VULNDB}/{rel}", index[rel])
        flusher.files([partial])
        os.replace(partial, root / rel)
        fsync_dir(root / "index")


def find(path: Path) -> Path | None:
    """The database at ``path``: itself when it holds ``index/db.json``, else its ``vulndb/``."""
    for root in (path, path / VULNDB):
        if (root / db.DB_FILE).is_file():
            return root
    return None


def reader(root: Path, index: db.Index):
    """A function reading (and checking) the entry of an id in the database at ``root``."""

    def read(vid: str) -> db.Entry:
        where = f"{root}/{db.entry_path(vid)}"
        try:
            data = read_small(root / db.entry_path(vid), db.MAX_ENTRY)
        except FileNotFoundError:
            raise db.VulnDBError(f"{where}: missing ({db.MODULES_FILE} names it)") from None
        except OSError as e:
            raise db.VulnDBError(f"{where}: cannot read: {e.strerror or e}") from None
        entry = db.parse_entry(data, where)
        problem = db.check_entry(entry, vid, index, where)
        if problem:
            raise db.VulnDBError(problem)
        return entry

    return read


def held_versions(root: Path) -> list[modpath.ModuleVersion]:
    """Every module version whose ``.zip`` the mirror or medium at ``root`` holds."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("sumdb", VULNDB)]
        if os.path.basename(dirpath) != "@v":
            continue
        dirnames[:] = []
        for name in filenames:
            if name.endswith(".zip"):
                try:
                    found = modpath.parse_proxy_file(f"{rel}/{name}")
                except ModulePathError:
                    continue
                if found is not None:
                    out.append(found[0])
    return sorted(out, key=str)
