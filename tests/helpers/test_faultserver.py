"""Tests for tests/helpers/faultserver.py, the fault-injecting file server the download tests rely on."""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

try:
    from tests.helpers.faultserver import FOREVER, Fault, FaultServer, Request
except ImportError:  # tests/ imported as a package
    from tests.helpers.faultserver import FOREVER, Fault, FaultServer, Request

SIZE = 200_000
DATA = bytes((i * 7 + i // 256) % 251 for i in range(SIZE))
ZIP = "example.com/!big!corp/!util/@v/v1.2.0.zip"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / ZIP).parent.mkdir(parents=True)
    (r / ZIP).write_bytes(DATA)
    (r / "small.txt").write_bytes(b"hello world\n")
    (r / "empty").write_bytes(b"")
    (tmp_path / "secret").write_bytes(b"outside root\n")
    return r


@pytest.fixture
def srv(root: Path):
    with FaultServer(root) as s:
        yield s


@pytest.fixture
def client(srv: FaultServer):
    with httpx.Client(base_url=srv.url, headers={"Accept-Encoding": "identity"}, timeout=10) as c:
        yield c


def raw_get(srv: FaultServer, path: str, headers: dict[str, str] | None = None,
            timeout: float = 10) -> tuple[bytes, bytes, BaseException | None]:
    """(header block, body bytes received, the error that ended the read or None) over a raw socket."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    hdrs = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{hdrs}\r\n".encode())
    buf = b""
    err: BaseException | None = None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        err = e
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head, body, err


# --- normal service ------------------------------------------------------------------------------

def test_get_head_and_validators(srv: FaultServer, client: httpx.Client, root: Path) -> None:
    assert srv.url.startswith("http://127.0.0.1:")
    r = client.get("/" + ZIP)
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == f'"{hashlib.sha1(DATA).hexdigest()}"'
    mtime = (root / ZIP).stat().st_mtime
    assert r.headers["last-modified"] == email.utils.formatdate(mtime, usegmt=True)
    h = client.head("/" + ZIP)
    assert h.status_code == 200 and h.content == b"" and h.headers["content-length"] == str(SIZE)
    assert h.headers["etag"] == r.headers["etag"]
    assert srv.requests == [Request("GET", "/" + ZIP, None, 200), Request("HEAD", "/" + ZIP, None, 200)]
    assert srv.bytes_sent == {"/" + ZIP: SIZE}
    assert srv.total_bytes() == SIZE
    assert srv.etag_of(ZIP) == r.headers["etag"]


def test_missing_and_escapes(srv: FaultServer, client: httpx.Client, root: Path) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/example.com").status_code == 404  # a directory
    assert client.get("/").status_code == 404
    os.symlink(root.parent / "secret", root / "link")
    assert client.get("/link").status_code == 404
    for path in ("/../secret", "/%2e%2e/secret", "/x/../../secret", "//secret"):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 404, path
        assert b"outside" not in resp.read()
        conn.close()
    assert client.get("/small.txt").content == b"hello world\n"  # still serving


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("bytes=10-19", 10, 20),
    ("bytes=0-0", 0, 1),
    ("bytes=150000-", 150000, SIZE),
    ("bytes=-1000", SIZE - 1000, SIZE),
    ("bytes=199990-999999", 199990, SIZE),
    ("bytes=-999999", 0, SIZE),
])
def test_ranges(client: httpx.Client, srv: FaultServer, spec: str, start: int, end: int) -> None:
    r = client.get("/" + ZIP, headers={"Range": spec})
    assert r.status_code == 206
    assert r.content == DATA[start:end]
    assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert r.headers["content-length"] == str(end - start)
    assert srv.requests[-1] == Request("GET", "/" + ZIP, spec, 206)
    assert srv.bytes_sent["/" + ZIP] == end - start


def test_unsatisfiable_and_ignored_ranges(client: httpx.Client) -> None:
    for spec in (f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"):
        r = client.get("/" + ZIP, headers={"Range": spec})
        assert r.status_code == 416, spec
        assert r.headers["content-range"] == f"bytes */{SIZE}"
    assert client.get("/empty", headers={"Range": "bytes=0-"}).status_code == 416
    # Multi-range, malformed and other units are ignored: the whole file.
    for spec in ("bytes=0-1,5-6", "bytes=abc", "items=0-5", "bytes=9-3", "bytes=-"):
        r = client.get("/" + ZIP, headers={"Range": spec})
        assert r.status_code == 200 and r.content == DATA, spec


def test_if_range(client: httpx.Client) -> None:
    full = client.head("/" + ZIP)
    etag, lm = full.headers["etag"], full.headers["last-modified"]
    rng = {"Range": "bytes=100-199"}
    r = client.get("/" + ZIP, headers={**rng, "If-Range": etag})
    assert r.status_code == 206 and r.content == DATA[100:200]
    r = client.get("/" + ZIP, headers={**rng, "If-Range": lm})
    assert r.status_code == 206
    for bad in ('"0000"', "W/" + etag, "Mon, 01 Jan 1990 00:00:00 GMT"):
        r = client.get("/" + ZIP, headers={**rng, "If-Range": bad})
        assert r.status_code == 200 and r.content == DATA, bad


def test_keep_alive(srv: FaultServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    socks = []
    for i in range(5):
        conn.request("GET", "/" + ZIP, headers={"Range": f"bytes={i * 10}-{i * 10 + 9}"})
        resp = conn.getresponse()
        assert resp.status == 206 and resp.read() == DATA[i * 10:i * 10 + 10]
        assert not resp.will_close
        socks.append(conn.sock)
    conn.request("GET", "/nope")
    resp = conn.getresponse()
    assert resp.status == 404
    resp.read()
    socks.append(conn.sock)
    assert all(s is socks[0] for s in socks), "one connection for all requests"
    conn.close()


def test_replace_file(srv: FaultServer, client: httpx.Client) -> None:
    old = client.head("/" + ZIP)
    new = DATA[::-1]
    srv.replace_file(ZIP, new)
    r = client.get("/" + ZIP, headers={"Range": "bytes=0-99", "If-Range": old.headers["etag"]})
    assert r.status_code == 200 and r.content == new
    assert r.headers["etag"] == f'"{hashlib.sha1(new).hexdigest()}"' != old.headers["etag"]
    assert r.headers["last-modified"] != old.headers["last-modified"]
    r = client.get("/" + ZIP, headers={"Range": "bytes=0-99", "If-Range": old.headers["last-modified"]})
    assert r.status_code == 200
    r = client.get("/" + ZIP, headers={"Range": "bytes=0-99", "If-Range": srv.etag_of("/" + ZIP)})
    assert r.status_code == 206 and r.content == new[:100]
    srv.replace_file("/new/file.bin", b"fresh")
    assert client.get("/new/file.bin").content == b"fresh"


# --- faults --------------------------------------------------------------------------------------

def test_status_fault_with_budget(srv: FaultServer, client: httpx.Client) -> None:
    rule = srv.add_fault(ZIP, Fault(times=2, status=503, retry_after=3))
    for _ in range(2):
        r = client.get("/" + ZIP)
        assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert client.get("/" + ZIP).status_code == 200
    assert rule.hits == 2
    assert client.get("/small.txt").status_code == 200  # other paths unaffected
    assert [q.status for q in srv.requests] == [503, 503, 200, 200]


def test_glob_faults_and_rule_order(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault("*.zip", Fault(times=1, status=429))
    srv.add_fault("/example.com/*", Fault(times=FOREVER, status=500))
    assert client.get("/" + ZIP).status_code == 429  # oldest rule with budget first
    for _ in range(3):
        assert client.get("/" + ZIP).status_code == 500
    assert client.head("/" + ZIP).status_code == 500
    assert client.get("/small.txt").status_code == 200
    assert client.get("/example.com/missing").status_code == 500  # status faults precede the 404
    srv.clear_faults()
    assert client.get("/" + ZIP).status_code == 200


def test_ignore_range(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault(ZIP, Fault(ignore_range=True))
    r = client.get("/" + ZIP, headers={"Range": "bytes=10-19"})
    assert r.status_code == 200 and r.content == DATA and "content-range" not in r.headers
    r = client.get("/" + ZIP, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206


def test_corrupt(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault(ZIP, Fault(times=2, corrupt=True))
    r = client.get("/" + ZIP)
    assert r.status_code == 200 and len(r.content) == SIZE
    diff = [i for i in range(SIZE) if r.content[i] != DATA[i]]
    assert diff == [SIZE // 2] and r.content[SIZE // 2] == DATA[SIZE // 2] ^ 0xFF
    assert r.headers["etag"] == f'"{hashlib.sha1(DATA).hexdigest()}"'  # still claims the good content
    r = client.get("/" + ZIP, headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content != DATA[1000:2000]
    assert sum(a != b for a, b in zip(r.content, DATA[1000:2000])) == 1
    assert client.get("/" + ZIP).content == DATA


def test_truncate(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault(ZIP, Fault(truncate_after=5000))
    got = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", "/" + ZIP) as r:
            assert r.headers["content-length"] == str(SIZE)
            for chunk in r.iter_raw():
                got += chunk
    assert bytes(got) == DATA[:5000]
    assert srv.bytes_sent["/" + ZIP] == 5000
    head, body, err = raw_get(srv, "/" + ZIP)  # budget spent: normal again
    assert body == DATA and err is None
    # A clean close (FIN), not a reset.
    srv.add_fault(ZIP, Fault(truncate_after=100))
    head, body, err = raw_get(srv, "/" + ZIP, {"Range": "bytes=0-999"})
    assert b" 206 " in head.split(b"\r\n")[0] and body == DATA[:100] and err is None


def test_reset(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault(ZIP, Fault(times=2, reset_after=3000))
    head, body, err = raw_get(srv, "/" + ZIP)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert isinstance(err, ConnectionResetError)
    assert body == DATA[:len(body)] and len(body) <= 3000
    got = bytearray()
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        with client.stream("GET", "/" + ZIP) as r:
            for chunk in r.iter_raw():
                got += chunk
    assert bytes(got) == DATA[:len(got)]
    assert srv.bytes_sent["/" + ZIP] == 6000
    assert client.get("/" + ZIP).content == DATA  # the client recovers on a new connection


def test_stall_times_out_client_and_ends_by_itself(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault(ZIP, Fault(stall_after=1000, stall_seconds=1.0))
    t0 = time.monotonic()
    got = bytearray()
    with pytest.raises(httpx.ReadTimeout):
        with client.stream("GET", "/" + ZIP, timeout=httpx.Timeout(5, read=0.3)) as r:
            for chunk in r.iter_raw():
                got += chunk
    assert time.monotonic() - t0 < 1.0
    assert bytes(got) == DATA[:1000]
    # A patient client gets everything after the stall.
    srv.add_fault(ZIP, Fault(stall_after=1000, stall_seconds=0.5))
    t0 = time.monotonic()
    r = client.get("/" + ZIP, timeout=5)
    assert r.content == DATA and 0.45 < time.monotonic() - t0 < 4
    # stall_after=0: silence right after the headers.
    srv.add_fault(ZIP, Fault(stall_after=0, stall_seconds=0.5))
    with pytest.raises(httpx.ReadTimeout):
        client.get("/" + ZIP, timeout=httpx.Timeout(5, read=0.2))


def test_stop_cuts_stalls_short(root: Path) -> None:
    srv = FaultServer(root).start()
    srv.add_fault(ZIP, Fault(stall_after=10, stall_seconds=60))
    result: list[object] = []

    def fetch() -> None:
        result.append(raw_get(srv, "/" + ZIP, timeout=30))

    t = threading.Thread(target=fetch)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.stop()
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 5


def test_delay(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault("*", Fault(times=FOREVER, delay=0.3))
    t0 = time.monotonic()
    assert client.get("/small.txt").content == b"hello world\n"
    assert client.get("/nope").status_code == 404
    assert time.monotonic() - t0 >= 0.6
    with pytest.raises(httpx.ReadTimeout):
        client.get("/small.txt", timeout=httpx.Timeout(5, read=0.1))


def test_combined_fault(srv: FaultServer, client: httpx.Client) -> None:
    srv.add_fault(ZIP, Fault(ignore_range=True, truncate_after=10))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/" + ZIP, headers={"Range": "bytes=500-"})
    assert srv.requests[-1] == Request("GET", "/" + ZIP, "bytes=500-", 200)


def test_disconnects_are_quiet(srv: FaultServer, capfd: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(f"GET /{ZIP} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(100)
        s.close()  # leave mid-body
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GARBAGE\r\n\r\n")
        s.close()
    srv.add_fault(ZIP, Fault(times=FOREVER, reset_after=10))
    for _ in range(3):
        raw_get(srv, "/" + ZIP)
    time.sleep(0.3)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def test_concurrent_counters(srv: FaultServer) -> None:
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with httpx.Client(base_url=srv.url) as c:
                for j in range(10):
                    a = (i * 10 + j) * 1000
                    r = c.get("/" + ZIP, headers={"Range": f"bytes={a}-{a + 999}"})
                    assert r.status_code == 206 and r.content == DATA[a:a + 1000]
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(srv.requests) == 160
    assert srv.total_bytes() == 160_000
    assert len(srv.requests_for(ZIP)) == 160
    srv.reset_counters()
    assert srv.requests == [] and srv.total_bytes() == 0


# --- as a GOPROXY for the real go command ----------------------------------------------------------

@pytest.mark.e2e
def test_go_command_through_faultserver(tmp_path: Path) -> None:
    from airsync.sample import app_gosum, build_proxy_tree, demo_app_requires, demo_modules, write_main_module
    from tests.helpers.gotool import go_env, require_go

    go = require_go()
    tree = tmp_path / "tree"
    build_proxy_tree(tree, demo_modules())
    app = tmp_path / "app"
    write_main_module(app, demo_app_requires())
    with FaultServer(tree) as srv:
        # The go command retries nothing itself; a 404 on a .info is fine for a pinned build.
        srv.add_fault("*.info", Fault(times=FOREVER, status=404))
        env = go_env(tmp_path, srv.url)
        r = subprocess.run([go, "mod", "tidy"], cwd=app, env=env, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, r.stderr
        paths = {q.path for q in srv.requests}
    assert (app / "go.sum").read_text() == app_gosum(demo_modules(), demo_app_requires())
    assert "/example.com/!big!corp/!util/@v/v1.2.0.zip" in paths
    assert "/example.com/lib/strs/@v/v1.0.0.mod" in paths
    assert "/example.com/lib/strs/@v/v1.0.0.zip" not in paths
    assert not any("%" in p for p in paths)  # the go command sent %21; the counters decode it


def test_percent_encoded_paths(srv: FaultServer) -> None:
    enc = "/" + ZIP.replace("!", "%21")
    srv.add_fault("example.com/!big!corp/*", Fault(status=503))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    for want in (503, 200):
        conn.request("GET", enc)
        resp = conn.getresponse()
        assert resp.status == want
        body = resp.read()
    assert body == DATA
    assert [q.path for q in srv.requests] == ["/" + ZIP] * 2
    conn.close()
