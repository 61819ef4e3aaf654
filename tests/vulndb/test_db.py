"""The vulnerability database's files and update plans (pure), over real OSV entries."""

import json

import pytest

from airsync.vulndb import db
from tests.helpers import vulndbserver


def _files(root):
    return [(root / f).read_bytes() for f in db.INDEX_FILES]


def test_parse_time():
    assert db.parse_time("2026-12-01T00:00:00Z") == 1796083200 * 10**9
    assert db.parse_time("2026-12-01T01:00:00+01:00") == db.parse_time("2026-12-01T00:00:00Z")
    assert db.parse_time("2026-12-01T00:00:00.5Z") == db.parse_time("2026-12-01T00:00:00Z") + 5 * 10**8
    for bad in ("2026-13-01T00:00:00Z", "2026-12-01", "yesterday", 5, None, "2026-02-30T00:00:00Z"):
        assert db.parse_time(bad) is None
    assert db.format_time(db.parse_time("2026-12-01T10:00:00Z"), date_only=True) == "2026-12-01"


def test_ids():
    assert db.valid_id("GO-2024-1234") and db.valid_id("GHSA-abcd-efgh-ijkl")
    for bad in ("../x", "GO-2024/1", "", ".hidden", "GO-..", None):
        assert not db.valid_id(bad)
    assert db.id_of_path("ID/GO-2022-0001.json") == "GO-2022-0001"
    assert db.id_of_path("ID/x/GO-1.json") is None and db.id_of_path("index/db.json") is None


def test_every_real_entry_parses():
    ids = vulndbserver.all_ids()
    assert len(ids) > 4000
    stdlib = 0
    for vid in ids:
        e = db.parse_entry((vulndbserver.osv_dir() / f"{vid}.json").read_bytes(), vid)
        assert db.check_entry(e, vid) is None
        stdlib += any(a.module == "stdlib" for a in e.affected)
    assert stdlib > 100


def test_built_database_checks(tmp_path):
    entries = vulndbserver.load(["GO-2021-0094", "GO-2022-0969", "GO-2020-0048"])
    root = vulndbserver.build(tmp_path, entries)
    index = db.parse_index(*_files(root))
    assert {m.path for m in index.modules} >= {"stdlib", "golang.org/x/net", "github.com/hashicorp/go-slug"}
    assert index.db.text == max(e["modified"] for e in entries)
    for e in entries:
        parsed = db.parse_entry((root / db.entry_path(e["id"])).read_bytes(), e["id"])
        assert db.check_entry(parsed, e["id"], index) is None


def test_entry_problems(tmp_path):
    entries = vulndbserver.load(["GO-2021-0094", "GO-2020-0048"])
    root = vulndbserver.build(tmp_path, entries)
    index = db.parse_index(*_files(root))
    good = (root / "ID/GO-2021-0094.json").read_bytes()
    with pytest.raises(db.VulnDBError, match="not valid JSON.*truncated"):
        db.parse_entry(good[:100], "ID/GO-2021-0094.json")
    with pytest.raises(db.VulnDBError, match="more than"):
        db.parse_entry(good + b" " * db.MAX_ENTRY, "ID/GO-2021-0094.json")
    other = db.parse_entry((root / "ID/GO-2020-0048.json").read_bytes(), "x")
    assert "holds the entry GO-2020-0048, not GO-2021-0094" in db.check_entry(other, "GO-2021-0094", index)
    obj = json.loads(good)
    obj["modified"] = "2030-01-01T00:00:00Z"
    changed = db.parse_entry(json.dumps(obj).encode(), "x")
    assert "differs from the index" in db.check_entry(changed, "GO-2021-0094", index)
    obj = json.loads(good)
    obj["affected"][0]["package"]["name"] = "example.com/other"
    moved = db.parse_entry(json.dumps(obj).encode(), "x")
    assert "modules.json lists it under github.com/hashicorp/go-slug" in db.check_entry(moved, "GO-2021-0094", index)
    obj = json.loads(good)
    obj["affected"][0]["ranges"][0]["events"][0] = {"introduced": "0", "fixed": "1.0.0"}
    with pytest.raises(db.VulnDBError, match="exactly one"):
        db.parse_entry(json.dumps(obj).encode(), "x")


def test_index_problems(tmp_path):
    root = vulndbserver.build(tmp_path, vulndbserver.load(["GO-2021-0094"]))
    dbf, mods, vulns = _files(root)
    with pytest.raises(db.VulnDBError, match="index/db.json: modified"):
        db.parse_index(b'{"modified": "soon"}', mods, vulns)
    with pytest.raises(db.VulnDBError, match="older than an entry"):
        db.parse_index(b'{"modified": "2000-01-01T00:00:00Z"}', mods, vulns)
    with pytest.raises(db.VulnDBError, match="lists GO-2021-0094, which index/vulns.json does not"):
        db.parse_index(dbf, mods, b"[]")
    with pytest.raises(db.VulnDBError, match="not a JSON array"):
        db.parse_index(dbf, b"{}", vulns)
    with pytest.raises(db.VulnDBError, match="listed twice"):
        v = json.loads(vulns)
        db.parse_index(dbf, mods, json.dumps(v + v).encode())


def _index(entries, db_modified=None):
    files = {}
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        vulndbserver.build(Path(d), entries, gz=False, db_modified=db_modified)
        files = [(Path(d) / f).read_bytes() for f in db.INDEX_FILES]
    return db.parse_index(*files)


def test_plan_update():
    old_entries = vulndbserver.load(["GO-2021-0094", "GO-2020-0048", "GO-2022-0969"])
    old = _index(old_entries)
    first = db.plan_update(old, None, [])
    assert first.fetch == ("GO-2020-0048", "GO-2021-0094", "GO-2022-0969")
    new_entries = vulndbserver.load(["GO-2021-0094", "GO-2020-0048", "GO-2022-0969", "GO-2022-0603"])
    new_entries[0]["modified"] = "2026-12-01T00:00:00Z"  # GO-2021-0094 changed
    new = _index(new_entries)
    plan = db.plan_update(new, old, ["GO-2021-0094", "GO-2020-0048"])  # GO-2022-0969's file is missing
    assert plan.fetch == ("GO-2021-0094", "GO-2022-0603", "GO-2022-0969")
    assert plan.unchanged == 1
    same = db.plan_update(old, old, ["GO-2021-0094", "GO-2020-0048", "GO-2022-0969"])
    assert same.fetch == () and same.unchanged == 3
    with pytest.raises(db.RollbackError, match="older"):
        db.plan_update(old, new, [])
    dropped = db.plan_update(_index(new_entries[:2], db_modified="2026-12-02T00:00:00Z"), new, [])
    assert dropped.dropped == ("GO-2022-0603", "GO-2022-0969")
