"""The Go vulnerability database's files, checked, and what an update of a copy of it must fetch.

The database (https://go.dev/security/vuln/database#api; what ``govulncheck -db`` reads) is
static JSON::

    index/db.json        {"modified": RFC 3339}: the newest modified time of any entry
    index/modules.json   [{"path": module, "vulns": [{"id", "modified", "fixed"?}]}]
    index/vulns.json     [{"id", "modified", "aliases"?}]
    ID/<id>.json         one OSV entry (https://ossf.github.io/osv-schema/)

A copy is only as good as its weakest file, so every file is parsed strictly here before it may
be published: an index must be the shape above, with valid ids and times; an entry must be an
OSV object whose ``id`` is its file name and whose ``modified`` is the one the index gives, with
the modules it affects (``affected[].package.name``) exactly those ``modules.json`` lists it
under; ``db.json``'s time is no older than any entry's. Sizes are bounded (``MAX_ENTRY``,
``MAX_INDEX``) before anything is parsed.

An update compares the new ``vulns.json`` with the copy's: an entry is fetched when it is new,
its ``modified`` time differs, or the copy lacks its file. A database whose ``db.json`` time is
older than the copy's is a rollback (a stale mirror or a replay) and is refused before anything
else is fetched, as TUF and apt refuse metadata that goes back.

Times are kept as integer nanoseconds since the epoch (``parse_time``), so that comparisons are
exact whatever precision the file wrote. Pure: bytes in, values out.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from airsync.errors import AirsyncError
from airsync.vulndb.setting import DEFAULT_URL, parse_setting

__all__ = [
    "DEFAULT_URL",
    "parse_setting",
    "DB_FILE",
    "MODULES_FILE",
    "VULNS_FILE",
    "INDEX_FILES",
    "MAX_ENTRY",
    "MAX_INDEX",
    "VulnDBError",
    "RollbackError",
    "DbMeta",
    "ModuleVuln",
    "ModuleMeta",
    "VulnMeta",
    "Index",
    "Affected",
    "Entry",
    "parse_time",
    "format_time",
    "entry_path",
    "id_of_path",
    "valid_id",
    "parse_db",
    "parse_modules",
    "parse_vulns",
    "parse_index",
    "cross_check",
    "parse_entry",
    "check_entry",
    "UpdatePlan",
    "check_not_older",
    "plan_update",
]

DB_FILE = "index/db.json"
MODULES_FILE = "index/modules.json"
VULNS_FILE = "index/vulns.json"
INDEX_FILES = (DB_FILE, MODULES_FILE, VULNS_FILE)

#: The largest entry accepted: the real database's largest is ~32 KB; a megabyte-sized one is
#: a fault or an attack on whoever parses it.
MAX_ENTRY = 1 << 20
#: The largest index file accepted (the real modules.json is a few megabytes).
MAX_INDEX = 64 << 20

_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._-]+\Z")
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)\Z")


class VulnDBError(AirsyncError):
    """A vulnerability database file that is not what it must be (named by its path)."""


class RollbackError(VulnDBError):
    """A database older than the copy already held."""


def parse_time(s: object) -> int | None:
    """RFC 3339 text to nanoseconds since the epoch (UTC); None when it is not RFC 3339."""
    if not isinstance(s, str):
        return None
    m = _TIME.match(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    try:
        _dt.datetime(y, mo, d, h, mi, min(sec, 59))  # validates the calendar date (60: a leap second)
    except ValueError:
        return None
    if sec > 60:
        return None
    frac = (m.group(7) or "").ljust(9, "0")
    zone = m.group(8)
    offset = 0 if zone in "Zz" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return (calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) - offset) * 1_000_000_000 + int(frac)


def format_time(ns: int, *, date_only: bool = False) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC to the second (or the date alone)."""
    when = _dt.datetime.fromtimestamp(ns // 1_000_000_000, _dt.timezone.utc)
    return when.strftime("%Y-%m-%d" if date_only else "%Y-%m-%dT%H:%M:%SZ")


def valid_id(vid: object) -> bool:
    """An id that is also a safe file name (GO-2024-1234, GHSA-..., no path syntax)."""
    return isinstance(vid, str) and len(vid) <= 128 and _ID.match(vid) is not None and ".." not in vid


def entry_path(vid: str) -> str:
    return f"ID/{vid}.json"


def id_of_path(rel: str) -> str | None:
    """The id of ``ID/<id>.json`` (relative to the database), else None."""
    if rel.startswith("ID/") and rel.endswith(".json") and rel.count("/") == 1:
        vid = rel[3:-5]
        return vid if valid_id(vid) else None
    return None


# --- index files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbMeta:
    modified: int  # ns
    text: str  # as the file wrote it


@dataclass(frozen=True)
class ModuleVuln:
    id: str
    modified: int
    fixed: str  # without the v; "" when none


@dataclass(frozen=True)
class ModuleMeta:
    path: str
    vulns: tuple[ModuleVuln, ...]


@dataclass(frozen=True)
class VulnMeta:
    id: str
    modified: int
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    db: DbMeta
    modules: tuple[ModuleMeta, ...]
    vulns: tuple[VulnMeta, ...]

    def modified(self) -> dict[str, int]:
        """id -> modified time, from vulns.json (made once per index: read it, never change it)."""
        return self._modified

    def modules_of(self) -> dict[str, set[str]]:
        """id -> the module paths modules.json lists it under (made once per index, as above)."""
        return self._modules_of

    # Cached: every entry's check looks its id up in both, thousands of times per database.
    @cached_property
    def _modified(self) -> dict[str, int]:
        return {v.id: v.modified for v in self.vulns}

    @cached_property
    def _modules_of(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for m in self.modules:
            for v in m.vulns:
                out.setdefault(v.id, set()).add(m.path)
        return out


def _load(data: bytes, where: str, limit: int) -> object:
    if len(data) > limit:
        raise VulnDBError(f"{where}: {len(data)} bytes, more than the {limit} a file of the database may have")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise VulnDBError(f"{where}: not UTF-8") from None
    except json.JSONDecodeError as e:
        raise VulnDBError(f"{where}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno}; truncated?)") from None
    except RecursionError:
        raise VulnDBError(f"{where}: JSON nested too deeply") from None


def _time_field(obj: Mapping, key: str, where: str) -> int:
    t = parse_time(obj.get(key))
    if t is None:
        raise VulnDBError(f"{where}: {key} {obj.get(key)!r} is not an RFC 3339 time")
    return t


def _id_field(obj: Mapping, where: str) -> str:
    vid = obj.get("id")
    if not valid_id(vid):
        raise VulnDBError(f"{where}: id {vid!r} is not a valid vulnerability id")
    return vid


def _strings(value: object, where: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise VulnDBError(f"{where}: {what} must be a list of strings")
    return tuple(value)


def parse_db(data: bytes, where: str = DB_FILE) -> DbMeta:
    obj = _load(data, where, MAX_INDEX)
    if not isinstance(obj, dict):
        raise VulnDBError(f"{where}: not a JSON object")
    return DbMeta(_time_field(obj, "modified", where), obj["modified"])


def parse_modules(data: bytes, where: str = MODULES_FILE) -> tuple[ModuleMeta, ...]:
    obj = _load(data, where, MAX_INDEX)
    if not isinstance(obj, list):
        raise VulnDBError(f"{where}: not a JSON array")
    out, seen = [], set()
    for i, m in enumerate(obj):
        at = f"{where}: module #{i + 1}"
        if not isinstance(m, dict) or not isinstance(m.get("path"), str) or not m["path"]:
            raise VulnDBError(f"{at}: want an object with a path")
        if m["path"] in seen:
            raise VulnDBError(f"{at}: {m['path']} listed twice")
        seen.add(m["path"])
        vulns = m.get("vulns")
        if not isinstance(vulns, list):
            raise VulnDBError(f"{at} ({m['path']}): vulns must be an array")
        mv = []
        for v in vulns:
            if not isinstance(v, dict):
                raise VulnDBError(f"{at} ({m['path']}): a vuln is not an object")
            fixed = v.get("fixed", "")
            if not isinstance(fixed, str):
                raise VulnDBError(f"{at} ({m['path']}): fixed must be a string")
            mv.append(ModuleVuln(_id_field(v, f"{at} ({m['path']})"), _time_field(v, "modified", at), fixed))
        out.append(ModuleMeta(m["path"], tuple(mv)))
    return tuple(out)


def parse_vulns(data: bytes, where: str = VULNS_FILE) -> tuple[VulnMeta, ...]:
    obj = _load(data, where, MAX_INDEX)
    if not isinstance(obj, list):
        raise VulnDBError(f"{where}: not a JSON array")
    out, seen = [], set()
    for i, v in enumerate(obj):
        at = f"{where}: entry #{i + 1}"
        if not isinstance(v, dict):
            raise VulnDBError(f"{at}: not an object")
        vid = _id_field(v, at)
        if vid in seen:
            raise VulnDBError(f"{where}: {vid} listed twice")
        seen.add(vid)
        out.append(VulnMeta(vid, _time_field(v, "modified", f"{where}: {vid}"),
                            _strings(v.get("aliases"), f"{where}: {vid}", "aliases")))
    return tuple(out)


def cross_check(index: Index, where: str = "index") -> list[str]:
    """What is inconsistent between the three index files (empty when nothing)."""
    problems = []
    modified = index.modified()
    for m in index.modules:
        for v in m.vulns:
            if v.id not in modified:
                problems.append(f"{MODULES_FILE}: {m.path} lists {v.id}, which {VULNS_FILE} does not")
            elif modified[v.id] != v.modified:
                problems.append(f"{MODULES_FILE}: {m.path} gives {v.id} another modified time than {VULNS_FILE}")
    newest = max(modified.values(), default=None)
    if newest is not None and newest > index.db.modified:
        problems.append(f"{DB_FILE}: modified {index.db.text} is older than an entry's ({format_time(newest)})")
    return problems


def parse_index(db: bytes, modules: bytes, vulns: bytes, prefix: str = "") -> Index:
    """The three index files, each well-formed and all consistent; else VulnDBError (the first problem)."""
    index = Index(parse_db(db, prefix + DB_FILE), parse_modules(modules, prefix + MODULES_FILE),
                  parse_vulns(vulns, prefix + VULNS_FILE))
    problems = cross_check(index)
    if problems:
        raise VulnDBError(prefix + problems[0])
    return index


# --- entries --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Affected:
    module: str  # "stdlib" and "toolchain" for Go itself
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # SEMVER ranges only (others are ignored, as govulncheck does)


@dataclass(frozen=True)
class Entry:
    id: str
    modified: int
    aliases: tuple[str, ...]
    summary: str
    withdrawn: bool
    affected: tuple[Affected, ...]


def _affected(a: object, where: str) -> Affected:
    if not isinstance(a, dict):
        raise VulnDBError(f"{where}: not an object")
    pkg = a.get("package")
    if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str) or not pkg["name"]:
        raise VulnDBError(f"{where}: package.name missing")
    ranges = []
    raw = a.get("ranges") or []
    if not isinstance(raw, list):
        raise VulnDBError(f"{where} ({pkg['name']}): ranges must be an array")
    for r in raw:
        if not isinstance(r, dict) or not isinstance(r.get("type"), str):
            raise VulnDBError(f"{where} ({pkg['name']}): a range without a type")
        events = r.get("events")
        if not isinstance(events, list):
            raise VulnDBError(f"{where} ({pkg['name']}): a range without events")
        if r["type"] != "SEMVER":
            continue
        evs = []
        for e in events:
            if not isinstance(e, dict) or len(e) != 1:
                raise VulnDBError(f"{where} ({pkg['name']}): an event must have exactly one of introduced, fixed")
            (kind, version), = e.items()
            if kind not in ("introduced", "fixed") or not isinstance(version, str) or not version:
                raise VulnDBError(f"{where} ({pkg['name']}): bad event {e!r}")
            evs.append((kind, version))
        ranges.append(tuple(evs))
    return Affected(pkg["name"], tuple(ranges))


def parse_entry(data: bytes, where: str) -> Entry:
    """One OSV entry, well-formed (see the module docstring); else VulnDBError."""
    obj = _load(data, where, MAX_ENTRY)
    if not isinstance(obj, dict):
        raise VulnDBError(f"{where}: not a JSON object")
    vid = _id_field(obj, where)
    modified = _time_field(obj, "modified", where)
    if obj.get("withdrawn") is not None and parse_time(obj["withdrawn"]) is None:
        raise VulnDBError(f"{where}: withdrawn {obj['withdrawn']!r} is not an RFC 3339 time")
    summary = obj.get("summary", "")
    if not isinstance(summary, str):
        raise VulnDBError(f"{where}: summary must be a string")
    affected = obj.get("affected", [])
    if not isinstance(affected, list):
        raise VulnDBError(f"{where}: affected must be an array")
    return Entry(vid, modified, _strings(obj.get("aliases"), where, "aliases"), summary,
                 obj.get("withdrawn") is not None,
                 tuple(_affected(a, f"{where}: affected #{i + 1}") for i, a in enumerate(affected)))


def check_entry(entry: Entry, vid: str, index: Index | None = None, where: str = "") -> str | None:
    """What is wrong with ``entry`` as the file of ``vid`` in ``index``; None when nothing."""
    where = where or entry_path(vid)
    if entry.id != vid:
        return f"{where}: holds the entry {entry.id}, not {vid}"
    if index is None:
        return None
    modified = index.modified().get(vid)
    if modified is None:
        return f"{where}: {vid} is not in {VULNS_FILE}"
    if modified != entry.modified:
        return f"{where}: modified {format_time(entry.modified)} differs from the index's {format_time(modified)}"
    listed = index.modules_of().get(vid, set())
    affected = {a.module for a in entry.affected}
    if listed != affected:
        return (f"{where}: affects {', '.join(sorted(affected)) or 'no module'} but {MODULES_FILE} lists it under "
                f"{', '.join(sorted(listed)) or 'none'}")
    return None


# --- updates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdatePlan:
    fetch: tuple[str, ...]  # ids whose entry is new, changed, or missing from the copy
    unchanged: int
    dropped: tuple[str, ...]  # in the copy's index but not the new one (their files stay)


def check_not_older(new: DbMeta, old: DbMeta | None, where: str = DB_FILE) -> None:
    """RollbackError when ``new`` is older than the copy's ``old``."""
    if old is not None and new.modified < old.modified:
        raise RollbackError(
            f"{where}: the database is older ({new.text}) than the one already held ({old.text}): "
            "refusing to roll it back")


def plan_update(new: Index, old: Index | None, present: Iterable[str]) -> UpdatePlan:
    """The entries to fetch for the copy at ``old`` (None: none yet) to become ``new``;
    ``present``: the ids whose files the copy holds."""
    check_not_older(new.db, old.db if old else None)
    before = old.modified() if old else {}
    have = set(present)
    fetch = tuple(sorted(v.id for v in new.vulns if v.id not in have or before.get(v.id) != v.modified))
    after = {v.id for v in new.vulns}
    return UpdatePlan(fetch, len(new.vulns) - len(fetch), tuple(sorted(set(before) - after)))
