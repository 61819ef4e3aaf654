"""`airsync pull` between two mirrors: the receiver has version N of modules, the sender N+1.

The sender is `airsync serve` (manifest made and signed on the fly) or nginx in front of a medium
written by `airsync sync`; faults come from our own fault-injecting server. The acceptance test is
the go command building offline, with GOSUMDB on, from the receiver's mirror.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from airsync import sample
from airsync.carry import chunks, manifest
from airsync.carry.medium import MANIFEST, tree_files
from airsync.carry.pull import PullError, pull
from airsync.carry.signatures import SIDECAR_MIN, SignatureCache
from airsync.carry.sync import sync
from airsync.sample import build_sumdb
from airsync.store import MirrorStore
from tests.helpers.faultserver import FOREVER, Fault, FaultServer
from tests.helpers.gotool import build_demo_app
from tests.helpers.nginx import Nginx
from tests.helpers.serving import airsync_serve

MODULES = sample.demo_modules()
BIG = "example.com/big"
BIG_N = sample.big_module(BIG, "v1.0.0", 3 << 20, seed=7)
BIG_N1 = sample.big_module(BIG, "v1.1.0", 3 << 20, seed=7)  # same data files, new version
BIG_ZIP_N1 = f"{BIG}/@v/v1.1.0.zip"
OLD = [m for m in MODULES if not (m.path == sample.STRS and m.version == "v1.1.0")]


def airsync(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airsync", *args], capture_output=True, text=True, timeout=timeout)


def mirror(upstream_url: str, dest: Path, modules, db) -> Path:
    """A mirror of exactly ``modules`` (--no-deps: the receiver must lack what the sender adds)."""
    r = airsync("mirror", *[f"--module={m.path}@{m.version}" for m in modules], "--no-deps", "--to", str(dest),
                "--upstream", upstream_url, "--sumdb", db.vkey, "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    return dest


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An upstream with a checksum database; the sender mirrors everything, the receiver
    template only the older versions."""
    tmp = tmp_path_factory.mktemp("pull")
    everything = [*MODULES, BIG_N, BIG_N1]
    upstream = tmp / "upstream"
    sample.build_proxy_tree(upstream, everything)
    db = build_sumdb(upstream, everything, padding=40)
    with FaultServer(upstream) as srv:
        sender = mirror(srv.url, tmp / "sender", everything, db)
        receiver = mirror(srv.url, tmp / "receiver-template", [*OLD, BIG_N], db)
    key, pub = manifest.keygen(tmp / "border")
    return sender, receiver, db, key, pub


def fresh_receiver(world, tmp_path: Path) -> Path:
    dest = tmp_path / "receiver"
    shutil.copytree(world[1], dest, symlinks=True)
    return dest


def leave_partial(mirror: Path, rel: str, data: bytes) -> Path:
    """What an interrupted pull leaves of ``rel`` in ``mirror`` (made if missing): ``data`` in
    its staging area. The partial's path."""
    store = MirrorStore(mirror)
    part = store.partial_path(rel)
    store.close()
    part.write_bytes(data)
    return part


def same_tree(a: Path, b: Path) -> None:
    fa, fb = tree_files(a).files, tree_files(b).files
    assert sorted(fa) == sorted(fb)
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_pull_from_airsync_serve_moves_only_missing_chunks(world, tmp_path):
    sender, _, db, key, pub = world
    receiver = fresh_receiver(world, tmp_path)
    with airsync_serve(sender, "--signing-key", key) as url:
        r = airsync("pull", url, "--into", str(receiver), "--key", str(pub))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "pulled" in r.stdout and "reused" in r.stdout
        same_tree(sender, receiver)
        # The new big zip shares its data files with version N: most of it comes from local chunks.
        new_bytes = sum(st.st_size for rel, st in tree_files(sender).files.items()
                        if not (world[1] / rel).exists())
        number, unit = r.stdout.split("fetched ")[1].split(" in ")[0].split()
        fetched = float(number) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}[unit]
        assert new_bytes > 3 << 20
        assert fetched < new_bytes / 4, r.stdout
        again = airsync("pull", url, "--into", str(receiver), "--key", str(pub))
        assert again.returncode == 0 and "pulled 0 files" in again.stdout, again.stdout
    build_demo_app(tmp_path, receiver.as_uri(), db.vkey)


def test_pull_from_nginx_serving_a_synced_medium(world, tmp_path):
    sender, _, db, key, pub = world
    medium = tmp_path / "medium"
    medium.mkdir()
    sync(sender, medium, manifest.load_signer(key))
    sidecar = medium / (BIG_ZIP_N1 + ".airsig")
    assert sidecar.is_file() and chunks.decode(sidecar.read_bytes()).size == (sender / BIG_ZIP_N1).stat().st_size
    receiver = fresh_receiver(world, tmp_path)
    with Nginx(medium, tmp_path / "nginx") as web:
        r = airsync("pull", web.url, "--into", str(receiver), "--key", str(pub))
        assert r.returncode == 0, r.stdout + r.stderr
        ranged = [q for q in web.requests() if q.uri.endswith(".zip") and q.status == 206]
        assert ranged, "the delta should have fetched ranges of the new zip"
        assert web.served_bytes() < (sender / BIG_ZIP_N1).stat().st_size / 4
    same_tree(sender, receiver)
    build_demo_app(tmp_path, receiver.as_uri(), db.vkey)


def test_ranges_are_coalesced_and_counted(world, tmp_path):
    sender, _, _, key, pub = world
    receiver = fresh_receiver(world, tmp_path)
    medium = tmp_path / "medium"
    medium.mkdir()
    sync(sender, medium, manifest.load_signer(key))
    # Change one data file's middle in the sender's zip: the delta must fetch a few ranges.
    with FaultServer(medium) as srv:
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub)))
        zip_ranges = [q for q in srv.requests if q.path == "/" + BIG_ZIP_N1 and q.range]
        # v1.1.0's go.mod has the bytes of v1.0.0's: copied from it, never requested.
        assert not srv.requests_for(f"/{BIG}/@v/v1.1.0.mod")
    assert result.ok and result.reused > 2 << 20
    sig = chunks.decode((medium / (BIG_ZIP_N1 + ".airsig")).read_bytes())
    assert len(zip_ranges) < len(sig.chunks) / 4, "nearby ranges must be coalesced"
    assert result.fetched < result.bytes


def test_wrong_key_and_missing_manifest_are_clear_errors(world, tmp_path):
    sender, _, _, key, _ = world
    receiver = fresh_receiver(world, tmp_path)
    _, other_pub = manifest.keygen(tmp_path / "other")
    before = sorted(tree_files(receiver).files)
    with airsync_serve(sender, "--signing-key", key) as url:
        r = airsync("pull", url, "--into", str(receiver), "--key", str(other_pub))
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert "airsync-manifest" in r.stderr, r.stderr
    with airsync_serve(sender) as url:
        r = airsync("pull", url, "--into", str(receiver), "--key", str(other_pub))
        assert r.returncode == 1 and "--signing-key" in r.stderr, r.stderr
    r = airsync("pull", str(sender), "--into", str(receiver), "--key", str(other_pub))
    assert r.returncode == 1 and "airsync import" in r.stderr
    assert sorted(tree_files(receiver).files) == before


def test_a_conflicting_local_file_refuses_the_whole_pull(world, tmp_path):
    sender, _, _, key, pub = world
    receiver = fresh_receiver(world, tmp_path)
    mod = receiver / f"{BIG}/@v/v1.0.0.mod"
    mod.write_bytes(mod.read_bytes() + b"// local edit\n")
    before = sorted(tree_files(receiver).files)
    with airsync_serve(sender, "--signing-key", key) as url:
        r = airsync("pull", url, "--into", str(receiver), "--key", str(pub))
    assert r.returncode == 1
    assert f"{BIG}/@v/v1.0.0.mod: differs" in r.stdout + r.stderr
    assert "nothing pulled" in r.stderr
    assert sorted(tree_files(receiver).files) == before


def test_lying_peer_bytes_are_refused_and_the_rest_still_lands(world, tmp_path):
    sender, _, _, key, pub = world
    medium = tmp_path / "medium"
    medium.mkdir()
    sync(sender, medium, manifest.load_signer(key))
    receiver = fresh_receiver(world, tmp_path)
    strs_zip = f"{sample.STRS}/@v/v1.1.0.zip"
    # A lying sidecar (chunk hashes of other data) costs bandwidth, never correctness.
    sidecar = medium / (BIG_ZIP_N1 + ".airsig")
    sidecar.write_bytes(chunks.encode(chunks.signature_of_bytes(b"\0" * (SIDECAR_MIN * 2))))
    with FaultServer(medium) as srv:
        srv.add_fault(strs_zip, Fault(times=FOREVER, corrupt=True))
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub)))
    assert [p for p, _ in result.failures] == [strs_zip]
    assert "does not match its signed manifest" in result.failures[0][1]
    assert not (receiver / strs_zip).exists()
    assert (receiver / BIG_ZIP_N1).read_bytes() == (sender / BIG_ZIP_N1).read_bytes()
    # The version whose zip failed is not advertised; the others are.
    strs_list = (receiver / f"{sample.STRS}/@v/list").read_text().split()
    assert "v1.1.0" not in strs_list and "v1.0.0" in strs_list
    assert "v1.1.0" in (receiver / f"{BIG}/@v/list").read_text().split()
    assert not list((receiver / ".airsync" / "partial").iterdir())


@pytest.mark.parametrize(
    "fault",
    [
        Fault(times=2, reset_after=1000),
        Fault(times=2, truncate_after=5000),
        Fault(times=2, status=503),
        Fault(times=FOREVER, ignore_range=True),
    ],
    ids=["reset", "truncate", "503", "ignore-range"],
)
def test_pull_survives_faults(world, tmp_path, fault):
    sender, _, _, key, pub = world
    medium = tmp_path / "medium"
    medium.mkdir()
    sync(sender, medium, manifest.load_signer(key))
    receiver = fresh_receiver(world, tmp_path)
    with FaultServer(medium) as srv:
        rule = srv.add_fault(BIG_ZIP_N1, fault)
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub)))
    assert rule.hits >= 1
    assert result.ok, result.failures
    same_tree(sender, receiver)


def test_only_pulls_a_subset_and_signatures_are_recorded(world, tmp_path):
    sender, _, _, key, pub = world
    receiver = fresh_receiver(world, tmp_path)
    with airsync_serve(sender, "--signing-key", key) as url:
        r = airsync("pull", url, "--into", str(receiver), "--key", str(pub), "--only", BIG)
        assert r.returncode == 0, r.stderr
    assert (receiver / BIG_ZIP_N1).is_file()
    assert not (receiver / f"{sample.STRS}/@v/v1.1.0.zip").exists()
    cache = SignatureCache(receiver / ".airsync" / "state.db")
    try:
        sf = cache.get(receiver, BIG_ZIP_N1)
    finally:
        cache.close()
    assert sf.sha256 == hashlib.sha256((receiver / BIG_ZIP_N1).read_bytes()).hexdigest()
    assert sf.h1 == sample.module_h1(BIG_N1)


def test_serve_exports_manifest_and_sidecars(world, tmp_path):
    sender, _, _, key, pub = world
    with airsync_serve(sender, "--signing-key", key) as url:
        m = httpx.get(f"{url}/{MANIFEST}")
        assert m.status_code == 200 and m.headers["content-encoding"] == "gzip"
        assert len(m.content) > 2 * m.num_bytes_downloaded
        opened = manifest.open_manifest(m.content, manifest.load_verifier(pub))
        assert {e.path for e in opened.entries} == set(tree_files(sender).files)
        side = httpx.get(f"{url}/{BIG_ZIP_N1}.airsig")
        assert side.status_code == 200
        sig = chunks.decode(side.content)
        assert sig.sha256 == hashlib.sha256((sender / BIG_ZIP_N1).read_bytes()).digest()
        assert httpx.get(f"{url}/{BIG}/@v/nope.zip.airsig").status_code == 404
        assert httpx.get(f"{url}/.airsync/state.db.airsig").status_code == 404
        assert httpx.get(f"{url}/%2e%2e/%2e%2e/etc/passwd.airsig").status_code == 404
        assert httpx.get(f"{url}/{BIG}/@v/list/x.airsig").status_code == 404


def test_the_mirror_job_records_signatures_when_it_publishes(world):
    sender = world[0]
    db = sqlite3.connect(sender / ".airsync" / "state.db")
    try:
        rows = dict(db.execute("SELECT relpath, h1 FROM signatures").fetchall())
    finally:
        db.close()
    published = {rel for rel in tree_files(sender).files if "/@v/" in rel and not rel.endswith("/list")}
    assert published <= set(rows)
    assert rows[BIG_ZIP_N1] == sample.module_h1(BIG_N1)


class EvilPeer:
    """A peer that answers some paths with what it likes (``answers[path] = handler(h)``) and
    serves a medium's files for the rest."""

    def __init__(self, root: Path, answers: dict) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path in outer.answers:
                    try:
                        outer.answers[self.path](self)
                    except OSError:
                        pass  # the client gave up on us
                    return
                super().do_GET()

        self.answers = answers
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> EvilPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def garbage_gzip(h) -> None:
    h.send_response(200)
    h.send_header("Content-Encoding", "gzip")
    h.send_header("Content-Length", "9")
    h.end_headers()
    h.wfile.write(b"not gzip!")


def endless(h) -> None:
    h.send_response(200)
    h.end_headers()
    block = b"x" * (1 << 20)
    for _ in range(400):  # bounded: 400 MiB at most, far past what a pull may hold
        h.wfile.write(block)


def drip(h) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "1000000")
    h.end_headers()
    for _ in range(200):  # bounded: 20 s at most
        h.wfile.write(b"x")
        h.wfile.flush()
        time.sleep(0.1)


@pytest.fixture
def medium(world, tmp_path):
    sender, _, _, key, _ = world
    d = tmp_path / "medium"
    d.mkdir()
    sync(sender, d, manifest.load_signer(key))
    return d


def test_an_undecodable_sidecar_is_only_a_lost_hint(world, medium, tmp_path):
    sender, _, _, _, pub = world
    receiver = fresh_receiver(world, tmp_path)
    with EvilPeer(medium, {f"/{BIG_ZIP_N1}.airsig": garbage_gzip}) as peer:
        result = trio.run(lambda: pull(peer.url, receiver, manifest.load_verifier(pub)))
    assert result.ok, result.failures
    same_tree(sender, receiver)


def test_an_endless_manifest_is_refused_not_buffered(world, medium, tmp_path, monkeypatch):
    import airsync.carry.pull as pullmod

    monkeypatch.setattr(pullmod, "MANIFEST_MAX", 8 << 20)
    receiver = fresh_receiver(world, tmp_path)
    with EvilPeer(medium, {"/" + MANIFEST: endless}) as peer:
        with pytest.raises(PullError, match="more than the 8388608 bytes"):
            trio.run(lambda: pull(peer.url, receiver, manifest.load_verifier(world[4])))


def test_a_dripping_peer_meets_a_deadline(world, medium, tmp_path, monkeypatch):
    import airsync.carry.pull as pullmod

    monkeypatch.setattr(pullmod, "DEADLINE_BASE", 0.5)
    monkeypatch.setattr(pullmod, "ATTEMPTS", 1)
    receiver = fresh_receiver(world, tmp_path)
    strs_zip = f"/{sample.STRS}/@v/v1.1.0.zip"
    started = time.monotonic()
    with EvilPeer(medium, {strs_zip: drip}) as peer:
        result = trio.run(lambda: pull(peer.url, receiver, manifest.load_verifier(world[4])))
    assert time.monotonic() - started < 15
    assert [p for p, _ in result.failures] == [strs_zip[1:]]
    assert "no complete answer within" in result.failures[0][1]


def test_a_full_local_disk_stops_the_pull_with_a_message(world, medium, mount_tmpfs, tmp_path):
    small = mount_tmpfs("6m")
    shutil.copytree(world[1], small / "m", symlinks=True, dirs_exist_ok=True)
    with FaultServer(medium) as srv:
        r = airsync("pull", srv.url, "--into", str(small / "m"), "--key", str(world[4]))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "stopped" in r.stderr


def test_bad_urls_and_empty_selections_are_clear_errors(world, medium, tmp_path):
    receiver = fresh_receiver(world, tmp_path)
    r = airsync("pull", "http://[::1", "--into", str(receiver), "--key", str(world[4]))
    assert r.returncode == 1 and "not a usable URL" in r.stderr and "Traceback" not in r.stderr
    with FaultServer(medium) as srv:
        r = airsync("pull", srv.url, "--into", str(receiver), "--key", str(world[4]), "--only", "nomatch.example")
    assert r.returncode == 1 and "selects no module" in r.stderr, r.stderr


def test_leftovers_of_a_killed_pull_are_cleaned(world, medium, tmp_path):
    receiver = fresh_receiver(world, tmp_path)
    leftover = receiver / ".airsync" / "partial" / "deadbeef.part"
    leftover.write_bytes(b"x" * 1000)
    with FaultServer(medium) as srv:
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(world[4])))
    assert result.ok and not leftover.exists()


def test_an_interrupted_file_resumes_where_it_stopped(world, medium, tmp_path):
    sender, _, _, _, pub = world
    data = (sender / BIG_ZIP_N1).read_bytes()
    # A receiver with nothing local to build from: the file comes whole, by Range after what an
    # earlier, interrupted pull left in the staging area.
    receiver = tmp_path / "empty"
    part = leave_partial(receiver, BIG_ZIP_N1, data[: 2 << 20])
    with FaultServer(medium) as srv:
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub), only=BIG))
        asked = [q.range for q in srv.requests_for(BIG_ZIP_N1)]
        sent = srv.bytes_sent.get("/" + BIG_ZIP_N1, 0)
    assert result.ok, result.failures
    assert asked == [f"bytes={2 << 20}-"] and sent == len(data) - (2 << 20)
    assert (receiver / BIG_ZIP_N1).read_bytes() == data and not part.exists()


def test_a_bad_leftover_is_fetched_again_whole(world, medium, tmp_path):
    sender, _, _, _, pub = world
    data = (sender / BIG_ZIP_N1).read_bytes()
    receiver = tmp_path / "empty"
    leave_partial(receiver, BIG_ZIP_N1, b"\0" * (1 << 20))  # not the file's bytes: only the final sha256 can tell
    with FaultServer(medium) as srv:
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub), only=BIG))
    assert result.ok, result.failures
    assert (receiver / BIG_ZIP_N1).read_bytes() == data


def test_a_delta_resumes_after_the_chunks_an_interrupted_pull_wrote(world, medium, tmp_path):
    sender, _, _, _, pub = world
    data = (sender / BIG_ZIP_N1).read_bytes()
    runs = []
    for name, prefix in (("fresh", 0), ("resumed", 2 << 20)):
        receiver = fresh_receiver(world, tmp_path / name)
        if prefix:
            leave_partial(receiver, BIG_ZIP_N1, data[:prefix])
        with FaultServer(medium) as srv:
            runs.append(trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub), only=BIG)))
        assert (receiver / BIG_ZIP_N1).read_bytes() == data
    fresh, resumed = runs
    # The intact chunks of the leftover (checked against the sidecar) are neither copied nor fetched.
    assert fresh.reused + fresh.fetched - (resumed.reused + resumed.fetched) > (2 << 20) - (256 << 10)


def test_a_file_cut_off_by_a_lost_peer_resumes_at_the_next_pull(world, medium, tmp_path, monkeypatch):
    import airsync.carry.pull as pullmod

    monkeypatch.setattr(pullmod, "ATTEMPTS", 1)
    sender, _, _, _, pub = world
    data = (sender / BIG_ZIP_N1).read_bytes()
    receiver = tmp_path / "empty"
    MirrorStore(receiver).close()
    with FaultServer(medium) as srv:
        srv.add_fault(BIG_ZIP_N1, Fault(times=1, reset_after=(1 << 20) + 5000))
        first = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub), only=BIG))
        assert [p for p, _ in first.failures] == [BIG_ZIP_N1]
        srv.reset_counters()
        second = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub), only=BIG))
        sent = srv.bytes_sent.get("/" + BIG_ZIP_N1, 0)
    assert second.ok, second.failures
    assert sent <= len(data) - (1 << 20)  # what came the first time did not cross again
    assert (receiver / BIG_ZIP_N1).read_bytes() == data


@pytest.mark.parametrize("leftover", ["whole", "longer"])
def test_a_leftover_that_is_the_whole_file_lands_or_is_fetched_again(world, medium, tmp_path, leftover):
    sender, _, _, _, pub = world
    data = (sender / BIG_ZIP_N1).read_bytes()
    receiver = tmp_path / "empty"
    leave_partial(receiver, BIG_ZIP_N1, data if leftover == "whole" else data[:-10] + b"x" * 20)
    with FaultServer(medium) as srv:
        result = trio.run(lambda: pull(srv.url, receiver, manifest.load_verifier(pub), only=BIG))
        asked = srv.requests_for(BIG_ZIP_N1)
    assert result.ok, result.failures
    assert (receiver / BIG_ZIP_N1).read_bytes() == data
    assert (asked == []) if leftover == "whole" else len(asked) >= 1
