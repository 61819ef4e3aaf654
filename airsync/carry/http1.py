"""The little of HTTP/1.1 that a static GOPROXY replica speaks: GET and HEAD, keep-alive (pure).

``airsync serve s3://`` answers every request from memory (or a stream from the store), so the
cost of a request is all protocol: measured under ``wrk``, Hypercorn's general HTTP machinery
(h11's state machine, a task and a cancel scope per request) took over 90 % of a replica's CPU.
This module is what replaces it: ``parse_head`` reads one request head (RFC 9112 section 3 and
5: request line, header fields, no obsolete line folding), ``response_head`` writes a status line
and header fields. A request with a body (Content-Length other than 0, or Transfer-Encoding) is
refused: GET and HEAD have none, and a proxy that smuggled one past us would desynchronise the
connection. Everything here is bytes in, values out; the socket loop is in ``storeserve``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

MAX_HEAD = 16 * 1024

_REQUEST_LINE = re.compile(rb"^([A-Z]{1,16}) (\S{1,8000}) HTTP/1\.([01])$")
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
REASONS = {200: "OK", 206: "Partial Content", 302: "Found", 304: "Not Modified", 400: "Bad Request",
           404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 503: "Service Unavailable", 505: "HTTP Version Not Supported"}


class BadRequest(Exception):
    def __init__(self, status: int, why: str) -> None:
        self.status = status
        super().__init__(why)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query
    minor: int  # HTTP/1.<minor>
    headers: dict[bytes, bytes]  # lower-case names; repeated fields joined with ", "
    keep_alive: bool


def parse_head(head: bytes) -> Request:
    """One request head, without its final empty line; BadRequest (with the status to answer) if bad."""
    lines = head.split(b"\r\n")
    m = _REQUEST_LINE.match(lines[0])
    if m is None:
        if re.match(rb"^[A-Z]+ \S+ HTTP/\d", lines[0]):
            raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
        raise BadRequest(400, "malformed request line")
    method, target, minor = m.group(1).decode(), m.group(2), int(m.group(3))
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise BadRequest(400, "malformed header field")
        name, value = name.lower(), value.strip(b" \t")
        headers[name] = headers[name] + b", " + value if name in headers else value
    if method not in ("GET", "HEAD"):
        raise BadRequest(405, f"method {method} not allowed: only GET and HEAD")
    if b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() not in (b"0", b""):
        raise BadRequest(413, "a request with a body")
    if minor == 1 and b"host" not in headers:
        raise BadRequest(400, "no Host header")
    if not target.startswith(b"/"):
        raise BadRequest(400, "only origin-form request targets")
    path = unquote(target.split(b"?", 1)[0].decode("latin-1"), errors="surrogateescape")
    conn = headers.get(b"connection", b"").lower()
    keep = b"close" not in conn if minor == 1 else b"keep-alive" in conn
    return Request(method, path, minor, headers, keep)


def response_head(status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n".encode()]
    out += [k + b": " + v + b"\r\n" for k, v in headers]
    if not keep_alive:
        out.append(b"connection: close\r\n")
    out.append(b"\r\n")
    return b"".join(out)
