"""Go vulnerability databases built from real OSV entries, served on 127.0.0.1 (a helper).

The entries are the Go project's own: the golang.org/x/vulndb module holds every published entry
under ``data/osv/`` (CC-BY 4.0). ``scripts/setup --test`` downloads the version pinned here into
``.cache/gomod`` with the go command; nothing of it is copied into the repository. Its files carry
a zero ``modified`` time (the real service stamps each entry with the time it last changed when
it publishes), so ``load`` stamps each with its ``published`` time (or a time given; a few have
no published time either: 2020-01-01).

``build(root, entries)`` writes a database as the Go project publishes it (golang.org/x/vulndb
internal/database: ``index/db.json`` the newest entry's time, ``index/modules.json`` each
affected module with its entries' ids, times and latest fixes, ``index/vulns.json`` ids, times
and aliases, ``ID/<id>.json``, each file also as ``.json.gz``), written here independently of
airsync's own reading of it. The broken databases the tests need are made by editing one:
``corrupt`` (an entry cut short, an index naming a missing entry, an entry whose id is not its
file name, a huge entry) and ``build`` with older times (a rollback). ``serve(root)`` is a
``FaultServer`` over it (requests and bytes counted, truncation and other faults available).
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from airsync.goproxy import semver
from tests.helpers.faultserver import FaultServer

__all__ = ["VULNDB_VERSION", "osv_dir", "load", "all_ids", "build", "write_file", "serve", "latest_fixed"]

VULNDB_VERSION = "v0.0.0-20261105234957-e22db6528018"  # scripts/setup downloads this one
_ROOT = Path(__file__).resolve().parents[2]
_UNPUBLISHED = "2020-01-01T00:00:00Z"  # the few entries whose published time is zero too


def osv_dir() -> Path:
    """data/osv of the pinned golang.org/x/vulndb, or fail the test (never skip)."""
    d = _ROOT / ".cache" / "gomod" / f"golang.org/x/vulndb@{VULNDB_VERSION}" / "data" / "osv"
    if not d.is_dir():
        pytest.fail(f"{d} missing: run scripts/setup --test (it downloads golang.org/x/vulndb)", pytrace=False)
    return d


def all_ids() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in osv_dir().glob("*.json"))


def load(ids: Iterable[str] | None = None, modified: str | None = None) -> list[dict]:
    """The real entries ``ids`` (default: all), each stamped with ``modified`` or its published time."""
    out = []
    for vid in (all_ids() if ids is None else ids):
        e = json.loads((osv_dir() / f"{vid}.json").read_bytes())
        e["modified"] = modified or (e["published"] if not e["published"].startswith("0001-") else _UNPUBLISHED)
        out.append(e)
    return out


def _v(s: str) -> str:
    return "v" + s.removeprefix("v").removeprefix("go")


def latest_fixed(ranges: list[dict]) -> str:
    """x/vulndb osvutils.LatestFixed."""
    latest = ""
    for r in ranges:
        if r.get("type") != "SEMVER":
            continue
        for e in r["events"]:
            if e.get("fixed") and (not latest or semver.compare(_v(latest), _v(e["fixed"])) < 0):
                latest = e["fixed"]
        for e in r["events"]:
            i = e.get("introduced")
            if i and i != "0" and (not latest or semver.compare(_v(latest), _v(i)) < 0):
                latest = ""
                break
    return latest


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def write_file(root: Path, rel: str, data: bytes, gz: bool = True) -> None:
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    if gz:
        (p.parent / (p.name + ".gz")).write_bytes(gzip.compress(data, 9, mtime=0))


def build(root: Path, entries: list[dict], *, gz: bool = True, db_modified: str | None = None) -> Path:
    """Write the database of ``entries`` under ``root``; returns root."""
    root = Path(root)
    modules: dict[str, list[dict]] = {}
    vulns = []
    for e in sorted(entries, key=lambda e: e["id"]):
        for a in e["affected"]:
            mv = {"id": e["id"], "modified": e["modified"]}
            fixed = latest_fixed(a.get("ranges", []))
            if fixed:
                mv["fixed"] = fixed
            modules.setdefault(a["package"]["name"], []).append(mv)
        v = {"id": e["id"], "modified": e["modified"]}
        if e.get("aliases"):
            v["aliases"] = e["aliases"]
        vulns.append(v)
        write_file(root, f"ID/{e['id']}.json", _dump(e), gz)
    newest = db_modified or max((e["modified"] for e in entries), default="2020-01-01T00:00:00Z")
    write_file(root, "index/modules.json", _dump([{"path": p, "vulns": v} for p, v in sorted(modules.items())]), gz)
    write_file(root, "index/vulns.json", _dump(vulns), gz)
    write_file(root, "index/db.json", _dump({"modified": newest}), gz)
    return root


def corrupt(root: Path, how: str, vid: str) -> None:
    """Break the database at ``root``: ``truncate`` entry ``vid``, ``missing`` (remove its file),
    ``id`` (its file holds another id), ``huge`` (pad it past a megabyte)."""
    root = Path(root)
    p = root / "ID" / f"{vid}.json"
    data = p.read_bytes()
    if how == "truncate":
        new = data[: len(data) // 2]
    elif how == "missing":
        p.unlink()
        (p.parent / (p.name + ".gz")).unlink(missing_ok=True)
        return
    elif how == "id":
        e = json.loads(data)
        e["id"] = e["id"] + "0"
        new = _dump(e)
    elif how == "huge":
        e = copy.deepcopy(json.loads(data))
        e["details"] = e.get("details", "") + " " * (2 << 20)
        new = _dump(e)
    else:
        raise ValueError(how)
    write_file(root, f"ID/{vid}.json", new)


def serve(root: Path) -> FaultServer:
    """A FaultServer over ``root`` (use as a context manager)."""
    return FaultServer(root)
