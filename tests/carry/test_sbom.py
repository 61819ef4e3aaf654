import json

from airsync.carry import sbom
from airsync.carry.manifest import Entry


def _carry(n):
    entries, gosum = [], []
    for i in range(n):
        path = f"example.com/m{i:03d}"
        entries += [Entry(f"{path}/@v/v1.0.{i % 3}.zip", 10, "ab" * 32, "cd" * 16),
                    Entry(f"{path}/@v/v1.0.{i % 3}.mod", 5, "ef" * 32, "01" * 16)]
        gosum += [f"{path} v1.0.{i % 3} h1:z{i}=", f"{path} v1.0.{i % 3}/go.mod h1:m{i}="]
    entries.append(Entry("example.com/m000/@v/list", 7, "12" * 32, "34" * 16))  # not a component
    return entries, gosum


def test_the_document_is_the_librarys_own_with_dependencies_registered_by_set(monkeypatch):
    entries, gosum = _carry(40)
    ours = sbom.make_sbom(entries, gosum, "carry-1", "2026-12-07T10:00:00Z")
    monkeypatch.setattr(sbom, "_register_by_set", lambda bom: None)
    library = sbom.make_sbom(entries, gosum, "carry-1", "2026-12-07T10:00:00Z")
    assert ours == library
    doc = json.loads(ours)
    assert len(doc["components"]) == 40
    assert sorted(d["ref"] for d in doc["dependencies"]) == sorted(c["bom-ref"] for c in doc["components"])
    assert sbom.validate(ours) is None


def test_every_component_gets_one_empty_dependency_entry():
    doc = json.loads(sbom.make_sbom(*_carry(3), "carry-2", "2026-12-07T10:00:00Z"))
    assert [d for d in doc["dependencies"] if d.get("dependsOn")] == []
    assert len(doc["dependencies"]) == 3


def test_restamp_gives_what_the_library_builds_for_another_serial_and_time():
    entries, gosum = _carry(5)
    first = sbom.make_sbom(entries, gosum, "alice+0000abcd/7", "2026-12-07T10:00:00Z")
    later = sbom.make_sbom(entries, gosum, "alice+0000abcd/8", "2027-01-02T03:04:05Z")
    assert first != later
    assert sbom.restamp(first, "alice+0000abcd/8", "2027-01-02T03:04:05Z") == later


def test_the_content_key_follows_the_components_only():
    entries, gosum = _carry(5)
    key = sbom.content_key(entries, gosum)
    assert sbom.content_key(list(reversed(entries)), gosum) == key
    assert sbom.content_key(entries[:-3], gosum) != key  # a module version fewer
    assert sbom.content_key(entries, [g.replace("h1:z1=", "h1:other=") for g in gosum]) != key
    assert sbom.content_key([*entries, Entry("example.com/m000/@v/v1.0.0.info", 9, "56" * 32, "78" * 16)], gosum) == key


def test_the_cache_gives_the_last_sbom_restamped_and_builds_when_the_components_change(tmp_path, monkeypatch):
    from airsync.carry.signatures import SignatureCache

    entries, gosum = _carry(5)
    built = []
    make = sbom.make_sbom
    monkeypatch.setattr(sbom, "make_sbom", lambda *a: built.append(a[2]) or make(*a))
    cache = SignatureCache(tmp_path / "state.db")
    try:
        one = cache.sbom(entries, gosum, "s/1", "2026-12-07T10:00:00Z")
        two = cache.sbom(entries, gosum, "s/2", "2026-12-07T11:00:00Z")
        assert built == ["s/1"]  # the second was the first, restamped
        assert two == make(entries, gosum, "s/2", "2026-12-07T11:00:00Z") and one != two
        three = cache.sbom(entries[:4], gosum, "s/3", "2026-12-07T12:00:00Z")
        assert built == ["s/1", "s/3"]
        assert len(json.loads(three)["components"]) == 2
        cache.sbom(entries, gosum, "s/4", "2026-12-07T13:00:00Z")  # the first set is still kept
        assert built == ["s/1", "s/3"]
        # a damaged row counts as none
        with cache._sql():
            cache._db.execute("UPDATE sbom_cache SET doc = CAST(replace(CAST(doc AS TEXT), 'library', 'LIBRARY') AS BLOB)")
        five = cache.sbom(entries[:4], gosum, "s/5", "2026-12-07T14:00:00Z")
        assert built == ["s/1", "s/3", "s/5"] and b"LIBRARY" not in five
        # only the last few component sets are kept
        for n in range(1, 6):
            cache.sbom(entries[:2 * n], gosum, f"t/{n}", "2026-12-07T15:00:00Z")
        with cache._sql():
            assert cache._db.execute("SELECT count(*) FROM sbom_cache").fetchone()[0] == cache.SBOMS_KEPT
    finally:
        cache.close()


def test_the_content_key_follows_this_code(monkeypatch, tmp_path):
    entries, gosum = _carry(2)
    key = sbom.content_key(entries, gosum)
    changed = tmp_path / "sbom.py"
    changed.write_text(open(sbom.__file__).read() + "\n# changed\n")
    monkeypatch.setattr(sbom, "__file__", str(changed))
    assert sbom.content_key(entries, gosum) != key
    monkeypatch.setattr(sbom, "__file__", str(tmp_path / "gone.py"))  # no source: never the same key
    assert sbom.content_key(entries, gosum) != sbom.content_key(entries, gosum)
