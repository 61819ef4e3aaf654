"""The mirror in an S3-compatible store, end to end: versitygw on 127.0.0.1, the airsync CLI as a
subprocess, the go command building through ``airsync serve s3://`` replicas.

versitygw keeps each object as a plain file ``ROOT/BUCKET/KEY``, so the store's contents are
compared byte for byte with a directory mirror's files, and changed behind airsync's back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from airsync import sample
from airsync.carry import manifest
from airsync.sample import build_sumdb
from tests.helpers.cli import airsync
from tests.helpers.faultproxy import FaultProxy
from tests.helpers.faultserver import FOREVER
from tests.helpers.faultserver import Fault, FaultServer
from tests.helpers.gotool import build_demo_app
from tests.helpers.s3server import SECRET_KEY
from tests.helpers.serving import airsync_serve

pytestmark = pytest.mark.e2e

MODULES = sample.demo_modules()
STORE = "s3://mirror/go"


def tree(root: Path) -> dict[str, bytes]:
    """A mirror's published files (dot paths are airsync's own: .airsync/, versitygw's .sgwtmp)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = p.read_bytes()
    return out


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def world(tmp_path):
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, MODULES)
    db = build_sumdb(upstream, MODULES, padding=300)
    with FaultServer(upstream) as srv:
        yield srv, db, upstream


def mirror_args(srv, db, *modules) -> list[str]:
    mods = modules or MODULES
    return ["mirror", *[f"--module={m.path}@{m.version}" for m in mods], "--upstream", srv.url,
            "--sumdb", db.vkey if db else "off", "--no-progress"]


def test_mirror_into_store_is_a_directory_mirror_byte_for_byte_and_a_rerun_writes_nothing(s3, world, tmp_path):
    srv, db, _ = world
    r = airsync(*mirror_args(srv, db), "--to", tmp_path / "dir")
    assert r.returncode == 0, r.stderr
    r = airsync(*mirror_args(srv, db), "--to", STORE)
    assert r.returncode == 0, r.stderr
    in_store = s3.root / "mirror" / "go"
    assert tree(in_store) == tree(tmp_path / "dir")
    assert any(k.startswith("sumdb/") for k in tree(in_store))
    assert not (in_store / ".airsync" / "lease").exists()  # released at the end

    before, seen = mtimes(in_store), len(srv.requests)
    r = airsync(*mirror_args(srv, db), "--to", STORE)
    assert r.returncode == 0, r.stderr
    assert "fetched 0 files" in r.stdout
    assert mtimes(in_store) == before
    dir_before = len(srv.requests)
    assert airsync(*mirror_args(srv, db), "--to", tmp_path / "dir").returncode == 0
    # The store's rerun asked the upstream no more than the directory's rerun did.
    assert dir_before - seen == len(srv.requests) - dir_before


def test_go_builds_offline_through_two_serve_replicas_of_one_store(s3, world, tmp_path):
    srv, db, upstream = world
    assert airsync(*mirror_args(srv, db), "--to", STORE).returncode == 0
    with airsync_serve(STORE) as a, airsync_serve(STORE) as b:
        for name, url in (("a", a), ("b", b)):
            app = build_demo_app(tmp_path / name, url, db.vkey)
            assert (app / "go.sum").read_text() == sample.app_gosum(MODULES, sample.demo_app_requires())
        for rel in tree(s3.root / "mirror" / "go"):
            ra, rb = httpx.get(f"{a}/{rel}"), httpx.get(f"{b}/{rel}")
            assert ra.status_code == rb.status_code == 200, rel
            assert ra.content == rb.content == (s3.root / "mirror" / "go" / rel).read_bytes()

        # A version published while both replicas run (and have cached the list) reaches both.
        m = MODULES[0]
        new = sample.library_module(m.path, "v1.9.9")
        list_url = f"{m.path}/@v/list"
        assert "v1.9.9" not in httpx.get(f"{a}/{list_url}").text + httpx.get(f"{b}/{list_url}").text
        sample.build_proxy_tree(upstream, [new])
        r = airsync(*mirror_args(srv, None, new), "--to", STORE)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 20
        while not all("v1.9.9" in httpx.get(f"{u}/{list_url}").text for u in (a, b)):
            assert time.monotonic() < deadline, "the new version did not reach both replicas"
            time.sleep(0.2)
        assert httpx.get(f"{a}/{m.path}/@latest").json()["Version"] == "v1.9.9"


def test_serve_store_http(s3, world):
    srv, db, _ = world
    assert airsync(*mirror_args(srv, db), "--to", STORE).returncode == 0
    zip_rel = f"{MODULES[0].path}/@v/{MODULES[0].version}.zip"
    with airsync_serve(STORE) as url:
        r = httpx.get(f"{url}/{zip_rel}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert r.content == (s3.root / "mirror" / "go" / zip_rel).read_bytes()
        etag = r.headers["etag"]
        assert httpx.get(f"{url}/{zip_rel}", headers={"If-None-Match": etag}).status_code == 304
        h = httpx.head(f"{url}/{zip_rel}")
        assert h.status_code == 200 and int(h.headers["content-length"]) == len(r.content) and not h.content
        for private in (".airsync/lease", ".airsync/state.db", "a/.x/b", "nothing/@v/list", ""):
            assert httpx.get(f"{url}/{private}").status_code == 404, private
        assert httpx.put(f"{url}/{zip_rel}", content=b"x").status_code == 405
    with airsync_serve(STORE, "--redirect-zips") as url:
        r = httpx.get(f"{url}/{zip_rel}")
        assert r.status_code == 302 and "X-Amz-Signature=" in r.headers["location"]
        got = httpx.get(r.headers["location"])  # the client fetches from the store itself
        assert got.status_code == 200 and got.content == (s3.root / "mirror" / "go" / zip_rel).read_bytes()
        assert SECRET_KEY not in r.headers["location"]


def _medium(tmp: Path, srv, modules, name: str, key_prefix: Path) -> Path:
    mirror, medium = tmp / f"{name}-mirror", tmp / f"{name}-medium"
    assert airsync(*mirror_args(srv, None, *modules), "--to", mirror).returncode == 0
    medium.mkdir()
    r = airsync("sync", "--mirror", mirror, "--to", medium, "--signing-key", f"{key_prefix}.key")
    assert r.returncode == 0, r.stderr
    return medium


def test_import_into_store_and_two_racing_imports_lose_nothing(s3, world, tmp_path):
    srv, _, upstream = world
    key = tmp_path / "k"
    manifest.keygen(key)
    shared = MODULES[0].path
    extra = [sample.library_module(shared, f"v1.9{i}.0") for i in range(3)]
    sample.build_proxy_tree(upstream, extra)
    a = _medium(tmp_path, srv, MODULES, "a", key)
    b = _medium(tmp_path, srv, extra, "b", key)

    r = airsync("import", a, "--into", tmp_path / "inside", "--key", f"{key}.pub", "--sumdb", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    r = airsync("import", a, "--into", STORE, "--key", f"{key}.pub", "--sumdb", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(s3.root / "mirror" / "go") == tree(tmp_path / "inside")
    before = mtimes(s3.root / "mirror" / "go")
    r = airsync("import", a, "--into", STORE, "--key", f"{key}.pub", "--sumdb", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    assert mtimes(s3.root / "mirror" / "go") == before  # a second import writes nothing

    # Two imports into one fresh prefix at once, both adding versions to the same @v/list. (Two
    # media of one key: whichever is recorded first would refuse the older one as a rollback;
    # --allow-rollback leaves this to what it tests, the store's compare-and-swap.)
    procs = [
        subprocess.Popen([sys.executable, "-m", "airsync", "import", m, "--into", "s3://mirror/race",
                          "--key", f"{key}.pub", "--sumdb", "off", "--allow-rollback"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for m in (a, b)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    listed = (s3.root / "mirror" / "race" / shared / "@v" / "list").read_text().split()
    assert set(listed) == {m.version for m in [*MODULES, *extra] if m.path == shared}
    assert tree(s3.root / "mirror" / "race").keys() >= {k for k in tree(tmp_path / "inside") if not k.endswith("list")}


@pytest.mark.parametrize("kill_at", [0.5])
def test_kill9_mid_mirror_into_store_then_rerun_converges(s3, tmp_path, kill_at):
    upstream = tmp_path / "upstream"
    big = sample.big_module("example.com/big", "v1.0.0", 6 << 20, seed=5)
    small = sample.small_modules(40, seed=2)
    sample.build_proxy_tree(upstream, [big, *small])
    zip_rel = "example.com/big/@v/v1.0.0.zip"
    mods = [big, *small]
    with FaultServer(upstream) as srv:
        srv.add_fault(zip_rel, Fault(times=FOREVER, stall_after=1 << 20, stall_seconds=60))
        cmd = [sys.executable, "-m", "airsync", *mirror_args(srv, None, *mods), "--to", STORE]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not any(r.path == "/" + zip_rel for r in srv.requests):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(kill_at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        in_store = s3.root / "mirror" / "go"
        assert not (in_store / zip_rel).exists()  # the stalled zip is not published in part
        listed = (in_store / "example.com/big/@v/list")
        assert not listed.exists()
        srv.clear_faults()
        r = airsync(*mirror_args(srv, None, *mods), "--to", STORE, timeout=120)
        assert r.returncode == 0, r.stderr
    want = tree(upstream)
    got = tree(in_store)
    for rel, data in want.items():
        if "/@v/" in rel:
            assert got.get(rel) == data, rel


def _denied(r, *words):
    assert r.returncode == 1, r.stdout + r.stderr
    assert SECRET_KEY not in r.stdout + r.stderr
    line = r.stderr.strip().splitlines()[-1]
    for w in words:
        assert w in line, line


def test_wrong_credentials_and_missing_bucket(s3, world, tmp_path):
    srv, db, _ = world
    env = s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret", XDG_STATE_HOME=str(tmp_path / "st"))
    for r in (airsync(*mirror_args(srv, db), "--to", STORE, env=env),
              airsync("serve", STORE, "--listen", "127.0.0.1:1", env=env)):
        _denied(r, "s3://mirror", "access denied")
        assert "not-the-secret" not in r.stdout + r.stderr
    _denied(airsync(*mirror_args(srv, db), "--to", "s3://nosuchbucket/go"), "s3://nosuchbucket", "no such bucket")
    r = airsync(*mirror_args(srv, db), "--to", "s3://x")
    assert r.returncode == 2 and "bad bucket name" in r.stderr
    env = s3.env(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", XDG_STATE_HOME=str(tmp_path / "st"))
    _denied(airsync(*mirror_args(srv, db), "--to", STORE, env=env), "no store credentials")
    assert not (s3.root / "mirror" / "go").exists()


def test_credentials_from_a_profile_and_the_config_table(s3, world, tmp_path):
    srv, db, _ = world
    creds = tmp_path / "credentials"
    creds.write_text(f"[other]\naws_access_key_id = {s3.env()['AWS_ACCESS_KEY_ID']}\naws_secret_access_key = {SECRET_KEY}\n")
    env = s3.env(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_PROFILE="other",
                 AWS_SHARED_CREDENTIALS_FILE=str(creds), XDG_STATE_HOME=str(tmp_path / "st"))
    r = airsync(*mirror_args(srv, db), "--to", STORE, env=env)
    assert r.returncode == 0, r.stderr
    conf = tmp_path / "airsync.toml"
    conf.write_text(f'[store]\nendpoint = "{s3.endpoint}"\nstate = "{tmp_path / "st2"}"\n'
                    f'access_key_id = "{s3.env()["AWS_ACCESS_KEY_ID"]}"\nsecret_access_key = "{SECRET_KEY}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    r = airsync(*mirror_args(srv, db), "--to", STORE, "--config", conf, env=env)
    assert r.returncode == 0, r.stderr
    assert "fetched 0 files" in r.stdout
    assert (tmp_path / "st2" / ".airsync" / "state.db").exists()


def test_an_object_changed_behind_airsyncs_back_is_an_error_never_overwritten(s3, world):
    srv, db, _ = world
    m = MODULES[0]
    mod_rel = f"{m.path}/@v/{m.version}.mod"
    planted = s3.root / "mirror" / "go" / mod_rel
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"module someone.else\n")
    r = airsync(*mirror_args(srv, db), "--to", STORE)
    assert r.returncode == 1
    assert "published file disagrees with the checksum database" in r.stderr and mod_rel in r.stderr
    assert planted.read_bytes() == b"module someone.else\n"


def test_a_key_written_by_someone_else_meanwhile_is_never_overwritten(s3, tmp_path):
    from airsync.objstore.client import ObjectStoreError
    from airsync.objstore.mirror import ObjectMirrorStore, target

    store = ObjectMirrorStore(target(STORE))
    try:
        rel = "example.com/m/@v/v1.0.0.mod"
        partial = store.partial_path(rel)
        partial.write_bytes(b"module example.com/m\n")
        theirs = s3.root / "mirror" / "go" / rel
        # Another writer puts it after airsync listed the store.
        store.bucket.put(store.url.key(rel), b"module other\n")
        with pytest.raises(ObjectStoreError, match=rf"s3://mirror/go/{rel}: the store already holds different bytes"):
            store.publish(partial, rel)
        assert theirs.read_bytes() == b"module other\n"
        store.bucket.put(store.url.key(rel), b"module example.com/m\n")  # the same bytes: a rerun's, or another's
        assert store.publish(partial, rel) == set()
        assert store.is_published(rel)
    finally:
        store.close()


@pytest.mark.parametrize("fault", ["503", "500", "reset", "403"])
def test_a_failing_store_is_a_named_error_and_nothing_is_half_published(s3, world, tmp_path, fault):
    srv, db, _ = world
    with FaultProxy(s3.endpoint) as px:
        kw = {"reset": True} if fault == "reset" else {"status": int(fault)}
        px.add_fault("PUT", "/mirror/go/*.zip", times=FOREVER, **kw)
        env = s3.env(endpoint=px.url, XDG_STATE_HOME=str(tmp_path / "st"))
        r = airsync(*mirror_args(srv, db), "--to", STORE, env=env, timeout=180)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "s3://mirror/go/" in r.stderr and ".zip" in r.stderr
        want = {"503": "503", "500": "500", "reset": "connection", "403": "access denied while writing"}[fault]
        if fault != "403":  # the store is gone: the job stops; denied writes fail each version instead
            assert "mirror store error on" in r.stdout + r.stderr
        assert want in r.stderr
        in_store = tree(s3.root / "mirror" / "go")
        assert not any(k.endswith(".zip") or k.endswith("/@v/list") or k.endswith("@latest") for k in in_store)

        if fault == "403":
            return
        # A store that fails twice and then answers: retried, and the mirror completes.
        px._faults.clear()
        rule = px.add_fault("PUT", "/mirror/go/*.zip", times=2, **kw)
        r = airsync(*mirror_args(srv, db), "--to", STORE, env=env, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert rule.hits == 2


def test_lists_updated_by_compare_and_swap_lose_no_version(s3, tmp_path):
    from airsync.objstore.mirror import ObjectMirrorStore, target

    t = target(STORE)
    store = ObjectMirrorStore(t)
    try:
        versions = [f"v1.{i}.0" for i in range(24)]

        def add(v):
            store.add_to_list("example.com/m/@v/list", v)

        threads = [threading.Thread(target=add, args=(v,)) for v in versions]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        listed = (s3.root / "mirror" / "go" / "example.com/m/@v/list").read_text().split()
        assert listed == sorted(versions, key=lambda v: int(v.split(".")[1]))
    finally:
        store.close()


def test_a_second_writer_waits_for_the_lease(s3, tmp_path):
    from airsync.objstore.mirror import ObjectMirrorStore, target
    from airsync.store import StoreError

    t = target(STORE)
    first = ObjectMirrorStore(t)
    try:
        lease = s3.root / "mirror" / "go" / ".airsync" / "lease"
        assert lease.exists()
        # Another workspace (another host's state), so not the same local lock.
        t2 = target(STORE, {"state": str(tmp_path / "other")})
        with pytest.raises(StoreError, match=r"s3://mirror/go is in use by another airsync process"):
            ObjectMirrorStore(t2, lease_wait=0.5)
    finally:
        first.close()
    assert not lease.exists()
    ObjectMirrorStore(target(STORE, {"state": str(tmp_path / "other")}), lease_wait=0.5).close()


def test_sync_from_a_store_to_a_medium_carries_the_same_files_as_from_a_directory(s3, world, tmp_path):
    srv, db, _ = world
    key = tmp_path / "k"
    manifest.keygen(key)
    assert airsync(*mirror_args(srv, db), "--to", tmp_path / "dir").returncode == 0
    assert airsync(*mirror_args(srv, db), "--to", STORE).returncode == 0
    for name, source in (("from-dir", tmp_path / "dir"), ("from-store", STORE)):
        (tmp_path / name).mkdir()
        r = airsync("sync", "--mirror", source, "--to", tmp_path / name, "--signing-key", f"{key}.key")
        assert r.returncode == 0, r.stdout + r.stderr
    a, b = tree(tmp_path / "from-store"), tree(tmp_path / "from-dir")
    ma, mb = a.pop("airsync-manifest"), b.pop("airsync-manifest")
    a.pop("airsync-sbom.cdx.json"), b.pop("airsync-sbom.cdx.json")  # named after each manifest's sequence
    assert a == b
    entries = [line for line in ma.splitlines() if line.startswith(b"f ") or b"/@v/" in line]
    assert entries and entries == [line for line in mb.splitlines() if line.startswith(b"f ") or b"/@v/" in line]
    # The medium made from the store verifies and imports like any other.
    r = airsync("import", tmp_path / "from-store", "--into", tmp_path / "inside", "--key", f"{key}.pub",
                "--sumdb", db.vkey)
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(tmp_path / "inside") == tree(tmp_path / "dir")
    # A second sync brings nothing new into the local copy.
    r = airsync("sync", "--mirror", STORE, "--to", tmp_path / "from-store", "--signing-key", f"{key}.key")
    assert r.returncode == 0 and "0 object(s) brought" in r.stderr, r.stderr


def test_bundle_from_a_store_imports_as_the_directory_mirror(s3, world, tmp_path):
    srv, db, _ = world
    key = tmp_path / "k"
    manifest.keygen(key)
    assert airsync(*mirror_args(srv, db), "--to", tmp_path / "dir").returncode == 0
    assert airsync(*mirror_args(srv, db), "--to", STORE).returncode == 0
    r = airsync("bundle", "--mirror", STORE, "--out", tmp_path / "bundle", "--signing-key", f"{key}.key")
    assert r.returncode == 0, r.stdout + r.stderr
    r = airsync("import", tmp_path / "bundle", "--into", tmp_path / "inside", "--key", f"{key}.pub", "--sumdb", db.vkey)
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(tmp_path / "inside") == tree(tmp_path / "dir")


def _raw(url: str, data: bytes) -> bytes:
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_serve_store_speaks_plain_http11(s3, world):
    srv, db, _ = world
    assert airsync(*mirror_args(srv, db), "--to", STORE).returncode == 0
    m = MODULES[0]
    mod = (s3.root / "mirror" / "go" / f"{m.path}/@v/{m.version}.mod").read_bytes()
    with airsync_serve(STORE) as url:
        # Two pipelined requests on one connection, then the client closes.
        req = f"GET /{m.path}/@v/{m.version}.mod HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        out = _raw(url, req + req)
        assert out.count(b"HTTP/1.1 200 OK") == 2 and out.count(mod) == 2
        out = _raw(url, f"GET /{m.path}/@v/{m.version}.mod HTTP/1.0\r\n\r\n".encode())
        assert out.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in out and out.endswith(mod)
        assert _raw(url, b"BOGUS\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        assert _raw(url, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
        assert _raw(url, b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").startswith(b"HTTP/1.1 413 ")
        # The connection still serves after the bad ones.
        assert httpx.get(f"{url}/{m.path}/@v/{m.version}.mod").content == mod


def test_pull_into_a_store_gives_what_a_pull_into_a_directory_gives(s3, world, tmp_path):
    srv, db, _ = world
    key = tmp_path / "k"
    manifest.keygen(key)
    sender = tmp_path / "sender"
    assert airsync(*mirror_args(srv, db), "--to", sender).returncode == 0
    with airsync_serve(sender, "--signing-key", f"{key}.key") as url:
        r = airsync("pull", url, "--into", tmp_path / "dir", "--key", f"{key}.pub")
        assert r.returncode == 0, r.stdout + r.stderr
        r = airsync("pull", url, "--into", STORE, "--key", f"{key}.pub")
        assert r.returncode == 0, r.stdout + r.stderr
        assert tree(s3.root / "mirror" / "go") == tree(tmp_path / "dir")
        before = mtimes(s3.root / "mirror" / "go")
        r = airsync("pull", url, "--into", STORE, "--key", f"{key}.pub")
        assert r.returncode == 0 and "0 object(s) published" in r.stderr, r.stdout + r.stderr
        assert mtimes(s3.root / "mirror" / "go") == before


def test_import_with_a_checksum_database_into_a_store(s3, world, tmp_path):
    srv, db, _ = world
    key = tmp_path / "k"
    manifest.keygen(key)
    assert airsync(*mirror_args(srv, db), "--to", tmp_path / "border").returncode == 0
    (tmp_path / "medium").mkdir()
    r = airsync("sync", "--mirror", tmp_path / "border", "--to", tmp_path / "medium", "--signing-key", f"{key}.key")
    assert r.returncode == 0, r.stderr
    for into in (tmp_path / "inside", STORE, STORE):
        r = airsync("import", tmp_path / "medium", "--into", into, "--key", f"{key}.pub", "--sumdb", db.vkey)
        assert r.returncode == 0, r.stdout + r.stderr
    assert tree(s3.root / "mirror" / "go") == tree(tmp_path / "inside")
    with airsync_serve(STORE) as url:
        app = build_demo_app(tmp_path / "go", url, db.vkey)
        assert (app / "go.sum").read_text() == sample.app_gosum(MODULES, sample.demo_app_requires())


def test_a_replica_streams_objects_too_large_for_its_cache(s3, tmp_path):
    upstream = tmp_path / "upstream"
    big = sample.big_module("example.com/big", "v1.0.0", 3 << 20, seed=9)
    sample.build_proxy_tree(upstream, [big])
    with FaultServer(upstream) as srv:
        assert airsync(*mirror_args(srv, None, big), "--to", STORE).returncode == 0
    rel = "example.com/big/@v/v1.0.0.zip"
    want = (upstream / rel).read_bytes()
    with airsync_serve(STORE, "--cache-mb", "1") as url:  # objects over 64 KiB are streamed
        for _ in range(2):
            r = httpx.get(f"{url}/{rel}")
            assert r.status_code == 200 and r.content == want
        h = httpx.head(f"{url}/{rel}")
        assert h.status_code == 200 and int(h.headers["content-length"]) == len(want) and not h.content
