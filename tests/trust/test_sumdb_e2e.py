"""The checksum database end to end: airsync carries it, the go command verifies offline.

The upstream (our fault server) serves a generated GOPROXY tree with a checksum database of our
own (airsync.sample.build_sumdb, own ed25519 key). airsync mirrors modules that no go.sum pins, so only
the database vouches for them; then the real go command, with an empty module cache, no go.sum
lines, GOPROXY=file://<mirror>, GOSUMDB=<our key> and the upstream gone, downloads and builds,
verifying the mirrored lookups and tiles itself. Tampered databases are refused by airsync with
a clear message, and the go command refuses a tampered mirror.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airsync import sample
from airsync.goproxy import dirhash
from airsync.goproxy.modpath import ModuleVersion
from airsync.sample import NAME, build_sumdb
from airsync.trust import note, sumdb, tlog
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import build_demo_app, go_env, run_go
from tests.helpers.tamper import flip_first_hash

pytestmark = pytest.mark.e2e

MODULES = sample.demo_modules()


def mirror_cmd(mirror: Path, url: str, vkey: str, *extra: str) -> list[str]:
    mods = [f"--module={m.path}@{m.version}" for m in MODULES]
    return [sys.executable, "-m", "airsync", "--log-format", "json", "mirror", *mods, "--to", str(mirror),
            "--upstream", url, "--sumdb", vkey, "--no-progress", *extra]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture
def upstream(tmp_path: Path):
    root = tmp_path / "upstream"
    sample.build_proxy_tree(root, MODULES)
    db = build_sumdb(root, MODULES, padding=300)
    return root, db


def test_mirror_carries_the_database_and_go_verifies_offline(tmp_path, upstream):
    root, db = upstream
    mirror = tmp_path / "mirror"
    with FaultServer(root) as srv:
        r = run(mirror_cmd(mirror, srv.url, db.vkey))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "not hash-pinned" not in r.stdout  # the database vouched for every version
        assert f"carried {len(MODULES)} new record(s)" in r.stdout
        srv.reset_counters()
        r2 = run(mirror_cmd(mirror, srv.url, db.vkey))
        assert r2.returncode == 0 and srv.requests == []  # lookups and tiles are all in the mirror
    carried = mirror / "sumdb" / NAME
    assert (carried / "supported").exists()
    for m in MODULES:
        lookup = carried / sumdb.lookup_path(ModuleVersion(m.path, m.version))
        assert lookup.read_bytes() == (db.dir / sumdb.lookup_path(ModuleVersion(m.path, m.version))).read_bytes()
    assert any((carried / "tile").rglob("*"))

    # Inside: no network (the upstream is gone), no go.sum, checksum database on.
    app = build_demo_app(tmp_path, mirror.as_uri(), db.vkey)
    assert (app / "go.sum").read_text() == sample.app_gosum(MODULES, sample.demo_app_requires())


def test_go_refuses_a_tampered_mirror(tmp_path, upstream):
    root, db = upstream
    mirror = tmp_path / "mirror"
    with FaultServer(root) as srv:
        assert run(mirror_cmd(mirror, srv.url, db.vkey)).returncode == 0
    flip_first_hash(mirror / "sumdb" / NAME / sumdb.lookup_path(ModuleVersion(sample.STRS, "v1.1.0")))
    app = tmp_path / "app"
    sample.write_main_module(app, sample.demo_app_requires())
    r = run_go(["mod", "tidy"], app, go_env(tmp_path, mirror.as_uri(), gosumdb=db.vkey))
    assert r.returncode != 0 and "verifying" in r.stderr, r.stderr


def test_altered_record_is_refused(tmp_path, upstream):
    root, db = upstream
    flip_first_hash(db.dir / sumdb.lookup_path(ModuleVersion(sample.STRS, "v1.1.0")))
    with FaultServer(root) as srv:
        r = run(mirror_cmd(tmp_path / "m", srv.url, db.vkey))
    assert r.returncode == 1
    assert "does not match its log" in r.stdout and "example.com/lib/strs@v1.1.0" in r.stdout


def test_bad_signature_is_refused(tmp_path, upstream):
    root, db = upstream
    other_skey, _ = note.generate_key(NAME)  # same name, another key: the note is not ours
    fake = build_sumdb(tmp_path / "fake", MODULES, padding=300, skey=other_skey)
    shutil.rmtree(db.dir)
    shutil.copytree(fake.dir, db.dir)
    with FaultServer(root) as srv:
        r = run(mirror_cmd(tmp_path / "m", srv.url, db.vkey))
    assert r.returncode == 1 and "bad checksum database answer" in r.stdout


def test_missing_tile_is_refused(tmp_path, upstream):
    root, db = upstream
    # The level-0 tile holding the demo modules' records (ids 300 and up, after the padding).
    needed = tlog.tile_for_index(8, tlog.stored_hash_index(0, 300))
    needed = tlog.Tile(needed.h, needed.l, needed.n, db.tree.n - 256)  # the partial right edge
    (db.dir / needed.path()).unlink()
    with FaultServer(root) as srv:
        r = run(mirror_cmd(tmp_path / "m", srv.url, db.vkey))
    assert r.returncode == 1 and "cannot prove" in r.stdout


def test_forked_tree_stops_the_job(tmp_path, upstream):
    root, db = upstream
    mirror = tmp_path / "mirror"
    with FaultServer(root) as srv:
        assert run(mirror_cmd(mirror, srv.url, db.vkey, "--module", "example.com/tools@v0.3.1")).returncode == 0
    # The same key signs a different log of the same size: a fork.
    forked = build_sumdb(tmp_path / "forked", MODULES, padding=301, skey=db.skey)
    shutil.rmtree(db.dir)
    shutil.copytree(forked.dir, db.dir)
    shutil.rmtree(mirror / "sumdb" / NAME / "lookup")  # force fresh lookups against the forked log
    with FaultServer(root) as srv:
        r = run(mirror_cmd(mirror, srv.url, db.vkey))
    assert r.returncode == 1 and "SECURITY ERROR" in r.stdout and "forked" in r.stdout


def test_zip_that_differs_from_its_record_is_refused(tmp_path):
    root = tmp_path / "upstream"
    sample.build_proxy_tree(root, MODULES)
    victim = next(m for m in MODULES if (m.path, m.version) == (sample.STRS, "v1.1.0"))
    other = "h1:" + "A" * 43 + "="
    gomod = dirhash.hash_gomod(dict(victim.files)["go.mod"])
    text = f"{victim.path} {victim.version} {other}\n{victim.path} {victim.version}/go.mod {gomod}\n".encode()
    db = build_sumdb(root, MODULES, padding=10, records={victim.mv: text})
    with FaultServer(root) as srv:
        r = run(mirror_cmd(tmp_path / "m", srv.url, db.vkey))
    assert r.returncode == 1
    assert other in r.stdout and "example.com/lib/strs@v1.1.0" in r.stdout
    assert not (tmp_path / "m" / "example.com/lib/strs/@v/v1.1.0.zip").exists()


def test_unreachable_database_warns_for_pinned_and_fails_unpinned(tmp_path):
    root = tmp_path / "upstream"
    sample.build_proxy_tree(root, MODULES)  # no sumdb/ at all
    gosum = tmp_path / "go.sum"
    gosum.write_text(sample.gosum_lines([m for m in MODULES if m.path != sample.TOOLS]))
    with FaultServer(root) as srv:
        r = run([sys.executable, "-m", "airsync", "--log-format", "json", "mirror", "--go-sum", str(gosum),
                 "--module", "example.com/tools@v0.3.1", "--to", str(tmp_path / "m"), "--upstream", srv.url,
                 "--no-progress"])  # default database: sum.golang.org, asked through our upstream only
    assert r.returncode == 1
    assert "checksum database was not carried" in r.stdout
    assert "FAILED example.com/tools/@v/v0.3.1.zip" in r.stdout
    assert "no go.sum line pins it, and the checksum database is unavailable" in r.stdout
    assert (tmp_path / "m/example.com/lib/strs/@v/v1.1.0.zip").exists()
    assert not (tmp_path / "m/example.com/tools/@v/v0.3.1.zip").exists()


def test_private_modules_are_never_looked_up(tmp_path, upstream):
    root, db = upstream
    with FaultServer(root) as srv:
        r = run(mirror_cmd(tmp_path / "m", srv.url, db.vkey, "--private", "example.org"))
        asked = [q.path for q in srv.requests if "/lookup/" in q.path]
    assert r.returncode == 0, r.stdout
    assert asked and not any("example.org" in p for p in asked)
    assert "not hash-pinned" in r.stdout and "example.org/legacy@v1.0.0" in r.stdout


def test_lookups_from_an_older_tree_still_verify_after_it_grew(tmp_path):
    """Run 1 stores lookups signed at tree size N1; the log grows; run 2 sees size N2.

    The go command inside trusts the newest tree it sees (N2) and must still prove the old
    records and the N1 -> N2 consistency from tiles in the mirror: airsync stores those too.
    """
    root = tmp_path / "upstream"
    sample.build_proxy_tree(root, MODULES)
    first = [m for m in MODULES if m.path in (sample.STRS, sample.BIGCORP)]
    later = [m for m in MODULES if m not in first]
    db1 = build_sumdb(root, first, padding=250)
    mirror = tmp_path / "mirror"

    def mirror_some(mods, vkey):
        return run([sys.executable, "-m", "airsync", "--log-format", "json", "mirror",
                    *[f"--module={m.path}@{m.version}" for m in mods], "--to", str(mirror),
                    "--upstream", srv.url, "--sumdb", vkey, "--no-progress"])

    with FaultServer(root) as srv:
        assert mirror_some(first, db1.vkey).returncode == 0
        # The same log, grown by unrelated records, so that the tile the first records sit in
        # is full only in the new tree: the go command needs that tile too.
        db2 = build_sumdb(root, first + later, padding=250, skey=db1.skey, gap=(len(first), 400))
        assert db2.tree.n > db1.tree.n
        r = mirror_some(later, db2.vkey)
        assert r.returncode == 0, r.stdout
    # The first lookups now carry the newest head (N2): the database's own record lines, unchanged,
    # and its own signed note of N2, which airsync proved includes them...
    rel = sumdb.lookup_path(ModuleVersion(sample.STRS, "v1.1.0"))
    body = (mirror / "sumdb" / NAME / rel).read_bytes()
    assert f"\n{db2.tree.n}\n".encode() in body
    assert body == (db2.dir / rel).read_bytes()
    # ...and the go command verifies everything from the mirror alone.
    app = tmp_path / "app"
    sample.write_main_module(app, sample.demo_app_requires())
    env = go_env(tmp_path, mirror.as_uri(), gosumdb=db2.vkey)
    r = run_go(["mod", "tidy"], app, env)
    assert r.returncode == 0, r.stderr


def test_direct_database_url(tmp_path):
    """GOSUMDB 'name+hash+key URL': the database is asked directly, not through the proxy."""
    proxy = tmp_path / "proxy"
    sample.build_proxy_tree(proxy, MODULES)  # no sumdb/ here
    dbroot = tmp_path / "dbhost"
    db = build_sumdb(dbroot, MODULES, padding=20)
    with FaultServer(proxy) as px, FaultServer(db.dir) as dbsrv:
        r = run(mirror_cmd(tmp_path / "m", px.url, f"{db.vkey} {dbsrv.url}"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert not any("/sumdb/" in q.path for q in px.requests)
        assert any(q.path.startswith("/lookup/") for q in dbsrv.requests)
    assert (tmp_path / "m" / "sumdb" / NAME / "supported").exists()


def test_a_module_the_database_does_not_know_is_reported_once_per_file(tmp_path, upstream):
    root, db = upstream
    with FaultServer(root) as srv:
        r = run(mirror_cmd(tmp_path / "m", srv.url, db.vkey, "--module", "example.com/nothere@v1.0.0"))
    assert r.returncode == 1
    failed = [line for line in r.stdout.splitlines() if line.strip().startswith("FAILED")]
    assert len(failed) == 3 and all("not found upstream" in line for line in failed), r.stdout
    assert "failed 3;" in r.stdout
