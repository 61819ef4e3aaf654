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
