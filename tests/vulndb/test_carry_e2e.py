"""The vulnerability database carried: sync, verify, import, pull and serve treat vulndb/ like sumdb/."""

import gzip
import json
import shutil

import httpx
import pytest

from airsync.carry.signatures import selected
from airsync.vulndb import db
from tests.helpers import vulndbserver
from tests.helpers.cli import airsync
from tests.helpers.serving import airsync_serve

pytestmark = pytest.mark.e2e

OLD = ["GO-2020-0048", "GO-2021-0094", "GO-2022-0969"]
NEW = OLD + ["GO-2022-0603", "GO-2023-1526"]
LATER = "2026-12-01T00:00:00Z"  # the time of NEW's two newer entries


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _mirror(tmp_path, name, ids):
    entries = vulndbserver.load(ids)
    for e in entries:
        if e["id"] not in OLD:
            e["modified"] = LATER
    up = vulndbserver.build(tmp_path / f"up-{name}", entries)
    with vulndbserver.serve(up) as srv:
        r = airsync("mirror", "--to", tmp_path / name, "--vulndb", srv.url)
    assert r.returncode == 0, r.stderr
    return tmp_path / name


@pytest.fixture
def key(tmp_path):
    assert airsync("keygen", "--out", tmp_path / "border").returncode == 0
    return tmp_path / "border"


def _sync(mirror, medium, key, *extra):
    medium.mkdir(exist_ok=True)
    r = airsync("sync", "--mirror", mirror, "--to", medium, "--signing-key", f"{key}.key", *extra)
    assert r.returncode == 0, r.stderr


def test_sync_verify_import_newer_wins(tmp_path, key):
    old, new = _mirror(tmp_path, "old", OLD), _mirror(tmp_path, "new", NEW)
    medium_new, medium_old = tmp_path / "usb-new", tmp_path / "usb-old"
    _sync(old, medium_old, key)  # signed first: its manifest's sequence is the lower one
    _sync(new, medium_new, key)
    assert _tree(medium_new / "vulndb") == _tree(new / "vulndb")
    assert _tree(medium_old / "vulndb") == _tree(old / "vulndb")
    for m in (medium_new, medium_old):
        r = airsync("verify", m, "--key", f"{key}.pub")
        assert r.returncode == 0, r.stdout + r.stderr

    inside = tmp_path / "inside"
    r = airsync("import", medium_old, "--into", inside, "--key", f"{key}.pub")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tree(inside / "vulndb") == _tree(old / "vulndb")
    r = airsync("import", medium_new, "--into", inside, "--key", f"{key}.pub")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tree(inside / "vulndb") == _tree(new / "vulndb")
    # An older medium is refused (anti-rollback); even restored on purpose it never puts an
    # older database back.
    r = airsync("import", medium_old, "--into", inside, "--key", f"{key}.pub")
    assert r.returncode == 1 and "older than" in r.stderr, r.stdout + r.stderr
    r = airsync("import", medium_old, "--into", inside, "--key", f"{key}.pub", "--allow-rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tree(inside / "vulndb") == _tree(new / "vulndb")


def test_only_carries_the_whole_database():
    assert selected("vulndb/index/db.json", "example.com/x") and selected("vulndb/ID/GO-2021-0094.json", "x/y")
    assert not selected("example.com/y/@v/list", "example.com/x")


@pytest.mark.parametrize("how", ["entry", "index"])
def test_verify_names_a_bad_carried_database(tmp_path, key, how):
    mirror = _mirror(tmp_path, "m", OLD)
    # Damaged in the mirror before the sync: the manifest signs it as it is, and the checks still find it.
    if how == "entry":
        p = mirror / "vulndb/ID/GO-2021-0094.json"
        e = json.loads(p.read_bytes())
        e["modified"] = "2030-01-01T00:00:00Z"
        p.write_text(json.dumps(e))
        where, why = "vulndb/ID/GO-2021-0094.json", "differs from the index's"
    else:
        (mirror / "vulndb/index/vulns.json").write_text("[]")
        where, why = "vulndb/index/modules.json", "which index/vulns.json does not"
    medium = tmp_path / "usb"
    _sync(mirror, medium, key)
    r = airsync("verify", medium, "--key", f"{key}.pub")
    assert r.returncode == 1
    assert where in r.stdout + r.stderr and why in r.stdout + r.stderr, r.stdout + r.stderr
    r = airsync("import", medium, "--into", tmp_path / "inside", "--key", f"{key}.pub")
    assert r.returncode == 1
    assert not (tmp_path / "inside" / "vulndb").exists()


def test_serve_gzip_and_pull(tmp_path, key):
    old, new = _mirror(tmp_path, "old", OLD), _mirror(tmp_path, "new", NEW)
    with airsync_serve(new, "--signing-key", f"{key}.key") as url:
        r = httpx.get(f"{url}/vulndb/index/db.json.gz")
        assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
        assert gzip.decompress(r.content) == (new / "vulndb" / db.DB_FILE).read_bytes()
        h = httpx.head(f"{url}/vulndb/index/modules.json.gz")
        assert h.status_code == 200 and int(h.headers["content-length"]) > 0
        plain = httpx.get(f"{url}/vulndb/index/modules.json", headers={"Accept-Encoding": "identity"})
        assert plain.content == (new / "vulndb" / db.MODULES_FILE).read_bytes()
        enc = httpx.get(f"{url}/vulndb/index/modules.json", headers={"Accept-Encoding": "gzip"})
        assert enc.headers["content-encoding"] == "gzip" and enc.content == plain.content
        assert httpx.get(f"{url}/vulndb/ID/GO-1999-0000.json.gz").status_code == 404

        r = airsync("pull", url, "--into", old, "--key", f"{key}.pub")
        assert r.returncode == 0, r.stdout + r.stderr
        assert _tree(old / "vulndb") == _tree(new / "vulndb")

    # The other way round: an older peer never rolls a newer database back.
    older = _mirror(tmp_path, "older", OLD)
    shutil.rmtree(older / ".airsync")
    with airsync_serve(older, "--signing-key", f"{key}.key") as url:
        r = airsync("pull", url, "--into", new, "--key", f"{key}.pub")
        assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((new / "vulndb" / db.DB_FILE).read_bytes()) == json.loads(
        (tmp_path / "up-new" / "index/db.json").read_bytes())
