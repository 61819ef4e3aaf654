"""A fault-injecting HTTP/1.1 static file server for tests (a helper module, not a test file).

``with FaultServer(root) as srv:`` serves the files under ``root`` at ``srv.url``
(``http://127.0.0.1:PORT``) from a ``ThreadingHTTPServer`` in a background thread: GET and HEAD,
single ``Range: bytes=a-b`` / ``a-`` / ``-n`` ranges (206 + Content-Range; 416 + ``bytes */size`` when
unsatisfiable; multi-range or malformed headers are ignored and answered 200 in full), a strong ETag
(``"<sha1 of the content>"``), Last-Modified, ``If-Range`` (an ETag or date that does not match gives 200
with the whole file), ``Accept-Ranges: bytes``, keep-alive with Content-Length, 404 for anything missing
or outside root. Nothing is logged.

Counters (thread-safe snapshots): ``srv.requests`` is a list of ``Request(method, path, range, status)``
named tuples (``path`` is the percent-decoded URL path with its leading '/', query dropped;
``range`` is the Range header or None); ``srv.bytes_sent`` maps path -> body bytes written to the socket;
``srv.total_bytes()`` sums them; ``srv.reset_counters()`` clears both.

Faults: ``srv.add_fault(pattern, Fault(...))`` applies to requests whose path (leading '/' optional in
the pattern; the path is percent-decoded, so '!' patterns work whether a client sends '!' or '%21')
matches ``pattern`` exactly or as an fnmatch glob ('*' also crosses '/'). Each rule hits
the first ``times`` matching requests (``times=FOREVER`` for all), then service is normal again; when
several rules match, the oldest one with budget left applies. One Fault may combine kinds:

- ``delay``: seconds to sleep before the status line (WAN latency);
- ``status`` (+ ``retry_after``): answer that status with a short text body instead of the file;
- ``ignore_range``: answer 200 with the whole file whatever Range says;
- ``corrupt``: flip (xor 0xFF) the middle byte (offset length//2) of the response body;
- ``reset_after=n``: send the headers and n body bytes, then close with SO_LINGER 0 (a TCP RST);
- ``truncate_after=n``: promise the full Content-Length, send n bytes, close cleanly (FIN);
- ``stall_after=n`` + ``stall_seconds``: send n bytes, go silent for stall_seconds (bounded; cut short
  when the server stops), then send the rest.

``add_fault`` returns the ``FaultRule``; its ``hits`` property counts the requests it affected.
``srv.replace_file(path, data)`` atomically swaps a file's content mid-run; its ETag changes with the
content and its Last-Modified moves at least one second forward. ``FaultServer(root, auth=HEADER)``
answers 401 to any request whose Authorization header is not exactly HEADER (a private proxy).
"""

from __future__ import annotations

import email.utils
import fnmatch
import hashlib
import io
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = ["FaultServer", "Fault", "FaultRule", "Request", "FOREVER"]

FOREVER = 1 << 62
CHUNK = 64 * 1024
_DISCONNECT = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class Fault:
    times: int = 1
    status: int | None = None
    retry_after: int | str | None = None
    reset_after: int | None = None
    truncate_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 5.0
    ignore_range: bool = False
    corrupt: bool = False
    delay: float = 0.0


class FaultRule:
    def __init__(self, pattern: str, fault: Fault) -> None:
        self.pattern = pattern.lstrip("/")
        self.fault = fault
        self.remaining = fault.times
        self._hits = 0

    @property
    def hits(self) -> int:
        return self._hits

    def matches(self, path: str) -> bool:
        p = path.lstrip("/")
        return p == self.pattern or fnmatch.fnmatchcase(p, self.pattern)


class Request(NamedTuple):
    method: str
    path: str
    range: str | None
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: FaultServer

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # client disconnects and the like: stay quiet


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultserver/1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    # -- helpers --

    def _record(self, status: int) -> None:
        self.server.owner._record(Request(self.command, self._path, self.headers.get("Range"), status))

    def _simple(self, status: int, body: bytes, extra: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        # Counters are updated before the bytes leave, so a client never sees them stale.
        self._record(status)
        self.end_headers()
        if not head:
            self._write(body)

    def _write(self, data: bytes) -> None:
        owner = self.server.owner
        owner._add_bytes(self._path, len(data))
        try:
            self.wfile.write(data)
        except BaseException:
            owner._add_bytes(self._path, -len(data))  # count none of a chunk that failed
            raise

    def _rst(self) -> None:
        """Close the connection abruptly: RST instead of FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # Drop the makefile() references first so close() really closes the descriptor now.
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        try:
            sock.close()
        except OSError:
            pass
        # The base class flushes wfile after the method returns and closes both in finish().
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        # Percent-decoded: the go command sends "!" as "%21", httpx sends it raw.
        self._path = unquote(urlsplit(self.path).path) or "/"
        if owner.auth is not None and self.headers.get("Authorization") != owner.auth:
            self._simple(401, b"credentials required\n", {"WWW-Authenticate": 'Basic realm="private"'}, head)
            return
        fault = owner._take_fault(self._path)
        try:
            if fault and fault.delay > 0:
                owner._stop.wait(fault.delay)
            if fault and fault.status is not None:
                extra = {}
                if fault.retry_after is not None:
                    extra["Retry-After"] = str(fault.retry_after)
                self._simple(fault.status, f"injected {fault.status}\n".encode(), extra, head)
                return
            self._serve_file(head, fault)
        except _DISCONNECT:
            self.close_connection = True

    def _serve_file(self, head: bool, fault: Fault | None) -> None:
        owner = self.server.owner
        fpath = owner._resolve(self._path)
        f = None
        if fpath is not None:
            try:
                f = open(fpath, "rb")  # noqa: SIM115
            except OSError:
                f = None
        if f is None:
            self._simple(404, b"not found\n", head=head)
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = owner._etag(f, st)
            last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)

            rng = None
            range_header = self.headers.get("Range")
            if range_header is not None and not (fault and fault.ignore_range):
                if_range = self.headers.get("If-Range")
                if if_range is None or _if_range_matches(if_range.strip(), etag, last_modified):
                    rng = _parse_range(range_header, size)
            if rng == "unsatisfiable":
                self._simple(416, b"range not satisfiable\n",
                             {"Content-Range": f"bytes */{size}", "ETag": etag,
                              "Last-Modified": last_modified}, head)
                return
            if rng is None:
                status, start, end = 200, 0, size
            else:
                status, (start, end) = 206, rng
            length = end - start
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self._record(status)
            self.end_headers()
            if head:
                return
            self._send_body(f, start, length, fault)

    def _send_body(self, f, start: int, length: int, fault: Fault | None) -> None:  # noqa: ANN001
        owner = self.server.owner
        stop_at = length
        if fault and fault.reset_after is not None:
            stop_at = min(stop_at, max(0, fault.reset_after))
        if fault and fault.truncate_after is not None:
            stop_at = min(stop_at, max(0, fault.truncate_after))
        stall_at = fault.stall_after if fault and fault.stall_after is not None else None
        corrupt_at = length // 2 if fault and fault.corrupt and length > 0 else None

        sent = 0
        f.seek(start)
        stalled = False
        while sent < stop_at:
            want = min(CHUNK, stop_at - sent)
            if stall_at is not None and not stalled and sent < stall_at:
                want = min(want, stall_at - sent)
            if stall_at is not None and not stalled and sent >= stall_at:
                self.wfile.flush()
                owner._stop.wait(max(0.0, fault.stall_seconds))  # type: ignore[union-attr]
                stalled = True
                continue
            data = f.read(want)
            if not data:
                break  # the file shrank under us; the client sees a short body
            if corrupt_at is not None and sent <= corrupt_at < sent + len(data):
                b = bytearray(data)
                b[corrupt_at - sent] ^= 0xFF
                data = bytes(b)
            self._write(data)
            sent += len(data)
        if sent < length:
            if fault and fault.reset_after is not None and sent >= fault.reset_after:
                time.sleep(0.05)  # let the bytes reach the peer before the RST discards the queue
                self._rst()
            else:
                self.close_connection = True  # clean close: FIN after a short body


def _if_range_matches(value: str, etag: str, last_modified: str) -> bool:
    if value.startswith("W/"):
        return False  # weak validators never match If-Range
    if value.startswith('"'):
        return value == etag
    return value == last_modified


def _parse_range(header: str, size: int):  # noqa: ANN202
    """(start, end exclusive), 'unsatisfiable', or None to ignore the header (serve 200)."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None  # multiple ranges: not supported, whole file instead (allowed by RFC 9110)
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
        return None
    if not first:  # suffix range: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size
    a = int(first)
    if last and int(last) < a:
        return None  # invalid range: ignore
    if a >= size:
        return "unsatisfiable"
    b = size - 1 if not last else min(int(last), size - 1)
    return a, b + 1


class FaultServer:
    def __init__(self, root: Path | str, auth: str | None = None, tls=None) -> None:  # noqa: ANN001
        """``auth``: the Authorization header every request must carry (else 401), e.g. a private proxy.
        ``tls``: an ``ssl.SSLContext`` (server side) to serve HTTPS instead (``srv.url`` says https)."""
        self.root = Path(root).resolve()
        self.auth = auth
        self.tls = tls
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._bytes: dict[str, int] = {}
        self._rules: list[FaultRule] = []
        self._etags: dict[tuple, str] = {}
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.port = 0

    # -- lifecycle --

    def start(self) -> FaultServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"{'https' if self.tls is not None else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"faultserver:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # ends stalls and delays early
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults --

    def add_fault(self, pattern: str, fault: Fault) -> FaultRule:
        rule = FaultRule(pattern, fault)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.matches(path):
                    rule.remaining -= 1
                    rule._hits += 1
                    return rule.fault
        return None

    # -- files --

    def _resolve(self, url_path: str) -> Path | None:
        rel = url_path.lstrip("/")  # already percent-decoded
        if not rel or "\x00" in rel:
            return None
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            return None
        p = (self.root / rel).resolve()
        if not p.is_relative_to(self.root) or not p.is_file():
            return None
        return p

    def _etag(self, f, st: os.stat_result) -> str:  # noqa: ANN001
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            tag = self._etags.get(key)
        if tag is None:
            h = hashlib.sha1()
            pos = 0
            while True:
                chunk = os.pread(f.fileno(), 1 << 20, pos)
                if not chunk:
                    break
                h.update(chunk)
                pos += len(chunk)
            tag = f'"{h.hexdigest()}"'
            with self._lock:
                self._etags[key] = tag
        return tag

    def path_of(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def replace_file(self, path: str, data: bytes) -> None:
        """Atomically give path (URL path or root-relative) new content, ETag and Last-Modified."""
        target = self.path_of(path)
        try:
            old_mtime = target.stat().st_mtime
        except FileNotFoundError:
            old_mtime = 0.0
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".faultserver-tmp")
        tmp.write_bytes(data)
        mtime = max(time.time(), float(int(old_mtime)) + 1.0)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target)

    def etag_of(self, path: str) -> str:
        with open(self.path_of(path), "rb") as f:
            return self._etag(f, os.fstat(f.fileno()))

    # -- counters --

    def _record(self, req: Request) -> None:
        with self._lock:
            self._requests.append(req)

    def _add_bytes(self, path: str, n: int) -> None:
        with self._lock:
            self._bytes[path] = self._bytes.get(path, 0) + n

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def bytes_sent(self) -> dict[str, int]:
        with self._lock:
            return dict(self._bytes)

    def total_bytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def requests_for(self, path: str) -> list[Request]:
        p = "/" + path.lstrip("/")
        return [r for r in self.requests if r.path == p]

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()
            self._bytes.clear()
