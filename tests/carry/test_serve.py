"""`airsync serve` as a GOPROXY: HTTP semantics, privacy of .airsync/, and the go command using it.

The served mirror carries a checksum database of our own, so the go command, with no go.sum and
GOSUMDB set to our key, verifies every module through `airsync serve` alone.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from airsync import sample
from airsync.carry.serve import DEFAULT_LISTEN, parse_listen
from airsync.sample import build_sumdb
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import build_demo_app
from tests.helpers.serving import airsync_serve

MODULES = sample.demo_modules()
ZIP = "example.com/lib/strs/@v/v1.1.0.zip"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    upstream = tmp / "upstream"
    sample.build_proxy_tree(upstream, MODULES)
    db = build_sumdb(upstream, MODULES, padding=300)
    mirror = tmp / "mirror"
    with FaultServer(upstream) as srv:
        r = subprocess.run(
            [sys.executable, "-m", "airsync", "mirror", *[f"--module={m.path}@{m.version}" for m in MODULES],
             "--to", str(mirror), "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress"],
            capture_output=True, text=True, timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
    with airsync_serve(mirror) as url:
        yield url, mirror, db, upstream


def test_go_verifies_through_airsync_serve(served, tmp_path):
    url, _mirror, db, _ = served
    app = build_demo_app(tmp_path, url, db.vkey)
    assert (app / "go.sum").read_text() == sample.app_gosum(MODULES, sample.demo_app_requires())


def test_http_semantics(served):
    url, mirror, _, _ = served
    body = (mirror / ZIP).read_bytes()
    with httpx.Client(base_url=url) as c:
        full = c.get("/" + ZIP)
        assert full.status_code == 200 and full.content == body
        etag = full.headers["etag"]
        assert not etag.startswith("W/")
        part = c.get("/" + ZIP, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == body[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(body)}"
        same = c.get("/" + ZIP, headers={"Range": "bytes=10-19", "If-Range": etag})
        assert same.status_code == 206
        changed = c.get("/" + ZIP, headers={"Range": "bytes=10-19", "If-Range": '"other"'})
        assert changed.status_code == 200 and changed.content == body
        head = c.head("/" + ZIP)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(body) and not head.content
        assert c.get("/example.com/nope/@v/list").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/.airsync/state.db", "/.airsync/lock", "/%2e%2e/%2e%2e/etc/passwd", "/example.com/", "/a%00b", "/" + "x" * 300,
     "/example.com/%00.airsig"],
)
def test_private_and_outside_paths_are_not_served(served, path):
    url, _, _, _ = served
    r = httpx.get(url + path)
    assert r.status_code == 404


def test_a_mirror_can_pull_from_airsync_serve(served, tmp_path):
    url, mirror, db, _ = served
    r = subprocess.run(
        [sys.executable, "-m", "airsync", "mirror", "--module", "example.com/tools@v0.3.1", "--to",
         str(tmp_path / "second"), "--upstream", url, "--sumdb", db.vkey, "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "second" / "example.com/tools/@v/v0.3.1.zip").read_bytes() == (
        mirror / "example.com/tools/@v/v0.3.1.zip"
    ).read_bytes()


def test_listen_defaults_to_loopback():
    assert parse_listen(DEFAULT_LISTEN) == ("127.0.0.1", 8080)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)


@pytest.mark.parametrize("args,message", [(["--listen", "nope"], "bad listen address"), ([], "no such mirror")])
def test_serve_usage_errors(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "airsync", "serve", str(tmp_path / "missing"), *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_a_port_in_use_is_a_message_not_a_traceback(tmp_path):
    (tmp_path / "m").mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "airsync", "serve", str(tmp_path / "m"), "--listen", f"127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "serving" not in r.stderr
