"""A fault-injecting HTTP/1.1 reverse proxy for tests (a helper module, not a test file).

``with FaultProxy(upstream_url) as px:`` listens on 127.0.0.1 (``px.url``) and forwards every
request, headers and body as they are (the Host header too, so an S3 signature made for the
proxy's address still verifies upstream), to ``upstream_url``, and the answer back. Faults, for the
first ``times`` requests whose method and path match (fnmatch globs, ``*`` crosses '/'):

- ``status``: answer that status (e.g. 500, 503) with a short body instead of forwarding;
- ``reset``: close the connection with a TCP RST before answering.

``px.add_fault(method, pattern, status=..., reset=..., times=...)`` returns the rule, whose ``hits``
counts the requests it took. ``px.requests`` lists (method, path, status) of what passed.
"""

from __future__ import annotations

import fnmatch
import http.client
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "ProxyFault", "FOREVER"]

FOREVER = 1 << 62


@dataclass
class ProxyFault:
    method: str
    pattern: str
    status: int | None = None
    reset: bool = False
    times: int = 1
    hits: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _handle(self) -> None:
        proxy = self.server.owner
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = proxy._take(self.command, path)
        if fault is not None and fault.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and fault.status is not None:
            data = f"injected {fault.status}\n".encode()
            self.send_response(fault.status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            proxy._log(self.command, path, fault.status)
            return
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        proxy._log(self.command, path, resp.status)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultProxy

    def handle_error(self, request, client_address):
        pass


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self._lock = threading.Lock()
        self._faults: list[ProxyFault] = []
        self.requests: list[tuple[str, str, int]] = []
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_fault(self, method: str, pattern: str, *, status: int | None = None, reset: bool = False,
                  times: int = 1) -> ProxyFault:
        f = ProxyFault(method, pattern, status, reset, times)
        with self._lock:
            self._faults.append(f)
        return f

    def _take(self, method: str, path: str) -> ProxyFault | None:
        with self._lock:
            for f in self._faults:
                if f.hits < f.times and (f.method in ("*", method)) and fnmatch.fnmatchcase(path, f.pattern):
                    f.hits += 1
                    return f
        return None

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def __enter__(self) -> FaultProxy:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
