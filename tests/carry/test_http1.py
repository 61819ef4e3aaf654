"""The request heads a store replica reads and the response heads it writes (pure)."""

from __future__ import annotations

import pytest

from airsync.carry import http1


def test_parse_head():
    r = http1.parse_head(b"GET /example.com/m/@v/v1.0.0.mod?x=1 HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\n"
                         b"X-A: 1\r\nx-a: 2")
    assert (r.method, r.path, r.minor, r.keep_alive) == ("GET", "/example.com/m/@v/v1.0.0.mod", 1, True)
    assert r.headers[b"if-none-match"] == b'"a"' and r.headers[b"x-a"] == b"1, 2"
    assert http1.parse_head(b"GET /a%21b HTTP/1.1\r\nHost: h").path == "/a!b"
    assert not http1.parse_head(b"HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close").keep_alive
    assert not http1.parse_head(b"GET / HTTP/1.0").keep_alive
    assert http1.parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive
    assert http1.parse_head(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0").method == "GET"


@pytest.mark.parametrize("head, status", [
    (b"GET /", 400),
    (b"get / HTTP/1.1\r\nHost: h", 400),
    (b"GET / HTTP/2.0\r\nHost: h", 505),
    (b"GET / HTTP/1.1", 400),  # no Host
    (b"GET http://x/ HTTP/1.1\r\nHost: h", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\n folded", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5", 413),
    (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked", 413),
    (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5", 405),
    (b"POST / HTTP/1.1\r\nHost: h", 405),
])
def test_bad_heads(head, status):
    with pytest.raises(http1.BadRequest) as e:
        http1.parse_head(head)
    assert e.value.status == status


def test_response_head():
    assert http1.response_head(200, [(b"content-length", b"3")], True) == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"
    assert http1.response_head(404, [], False) == b"HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n"
