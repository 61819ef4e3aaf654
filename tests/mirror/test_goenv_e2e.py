"""The user's Go environment, end to end: GOPROXY, GOSUMDB, GOINSECURE, netrc, GOAUTH, HTTP proxies.

A private proxy on 127.0.0.1 (our fault server) demands basic auth. ``airsync mirror`` run with no
``--upstream`` and no ``--sumdb`` takes them from the environment as the go command would, finds
the credentials in a netrc file or from a GOAUTH command, and never shows them: not on stdout or
stderr, not in the debug log, not in any file of the mirror or its state. An HTTP forward proxy
of our own checks that HTTP_PROXY is honoured and NO_PROXY too.
"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airsync import sample
from airsync.sample import build_sumdb
from tests.helpers.cli import airsync
from tests.helpers.faultserver import FaultServer

pytestmark = pytest.mark.e2e

USER, SECRET = "ci-bot", "s3cret-t0ken-value"
AUTH = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
MODULE = f"{sample.TOOLS}@v0.3.1"


@pytest.fixture
def private(tmp_path: Path):
    root = tmp_path / "private"
    modules = sample.demo_modules()
    sample.build_proxy_tree(root, modules)
    db = build_sumdb(root, modules, padding=20)
    with FaultServer(root, auth=AUTH) as srv:
        yield srv, db


def mirror(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "NETRC", "HTTP_PROXY", "HTTPS_PROXY",
                                                                       "NO_PROXY", "ALL_PROXY"))}
    full.update(HOME=str(tmp / "home"), **env)
    return airsync("--log-level", "debug", "mirror", "--module", MODULE, "--to", tmp / "m", "--no-progress", *args,
                   timeout=120, env=full)


def assert_no_secret(tmp: Path, r: subprocess.CompletedProcess) -> None:
    for text in (r.stdout, r.stderr):
        assert SECRET not in text and AUTH.split()[1] not in text
    for p in (tmp / "m").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert SECRET.encode() not in data and AUTH.split()[1].encode() not in data, p


def test_netrc_credentials_reach_a_private_proxy_named_by_goproxy(tmp_path, private):
    srv, db = private
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{srv.port}\n  login {USER}\n  password {SECRET}\n")
    env = {"GOPROXY": f"{srv.url},direct", "GOSUMDB": db.vkey, "NETRC": str(netrc),
           "GOINSECURE": f"127.0.0.1:{srv.port}"}
    r = mirror(tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: GOPROXY=" in r.stderr and "direct skipped" in r.stderr
    assert (tmp_path / "m" / "example.com/tools/@v/v0.3.1.zip").is_file()
    assert not any(q.status == 401 for q in srv.requests)  # sent with every request, not after a refusal
    assert_no_secret(tmp_path, r)


def test_credentials_never_travel_over_plain_http_unless_goinsecure_says_so(tmp_path, private):
    srv, db = private
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{srv.port} login {USER} password {SECRET}\n")
    r = mirror(tmp_path, {"GOPROXY": srv.url, "GOSUMDB": "off", "NETRC": str(netrc)})
    assert r.returncode == 1
    assert "HTTP 401" in r.stderr and "GOINSECURE" in r.stderr, r.stderr
    assert all(q.status == 401 for q in srv.requests)
    # Credentials in the URL itself: refused up front, as the go command refuses them.
    r = mirror(tmp_path, {"GOSUMDB": "off"}, "--upstream", f"http://{USER}:{SECRET}@127.0.0.1:{srv.port}")
    assert r.returncode == 2 and "refusing to pass credentials to insecure URL" in r.stderr
    assert_no_secret(tmp_path, r)
    r = mirror(tmp_path, {"GOSUMDB": db.vkey, "GOINSECURE": "127.0.0.1"},
               "--upstream", f"http://{USER}:{SECRET}@127.0.0.1:{srv.port}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_no_secret(tmp_path, r)


def test_goauth_command_headers(tmp_path, private):
    srv, db = private
    helper = tmp_path / "auth-helper"
    helper.write_text(f"#!/bin/sh\nprintf 'https://elsewhere.example\\nhttp://ignored\\n\\n' >/dev/null\n"
                      f"printf 'https://127.0.0.1:{srv.port}/\\n\\nAuthorization: {AUTH}\\n\\n'\n")
    helper.chmod(0o755)
    env = {"GOPROXY": srv.url, "GOSUMDB": db.vkey, "GOAUTH": f"{helper}", "GOINSECURE": f"127.0.0.1:{srv.port}"}
    r = mirror(tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_no_secret(tmp_path, r)
    bad = mirror(tmp_path, {**env, "GOAUTH": "off;netrc"})
    assert bad.returncode == 2 and "GOAUTH=off;netrc" in bad.stderr


class _Forward(BaseHTTPRequestHandler):
    """A minimal HTTP forward proxy: absolute-form GETs relayed to the target, counted."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        u = urlsplit(self.path)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection", "host")}
        conn.request("GET", u.path + (f"?{u.query}" if u.query else ""), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        conn.close()


def test_http_proxy_and_no_proxy_are_honoured(tmp_path):
    root = tmp_path / "up"
    modules = sample.demo_modules()
    sample.build_proxy_tree(root, modules)
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with FaultServer(root) as srv:
            via = f"http://127.0.0.1:{proxy.server_address[1]}"
            r = mirror(tmp_path, {"GOPROXY": srv.url, "GOSUMDB": "off", "HTTP_PROXY": via})
            assert r.returncode == 0, r.stdout + r.stderr
            assert any(p.endswith("/example.com/tools/@v/v0.3.1.zip") for p in _Forward.seen), _Forward.seen
            _Forward.seen.clear()
            r = mirror(tmp_path / "second", {"GOPROXY": srv.url, "GOSUMDB": "off", "HTTP_PROXY": via,
                                             "NO_PROXY": "127.0.0.1"})
            assert r.returncode == 0, r.stdout + r.stderr
            assert _Forward.seen == [] and srv.requests
    finally:
        proxy.shutdown()
        proxy.server_close()
