"""ClientSlots: the clients it lends (h11's, or httpx's for HTTP/2 and proxies) keep no cookies, as the
go command's client keeps none; the whole-file lane grows toward a far host."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trio

from airsync.fetch.slots import ClientSlots


class _CookieSetter(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Cookie"))
        self.send_response(200)
        self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.mark.parametrize("http2", [False, True], ids=["h11 client", "httpx client"])
def test_a_set_cookie_is_never_sent_back(http2: bool) -> None:
    _CookieSetter.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CookieSetter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/m/@v/list"

    async def main() -> None:
        async with ClientSlots(2, http2=http2) as slots:
            for _ in range(3):
                async with slots.slot(url) as client:
                    assert isinstance(client, httpx.AsyncClient) == http2
                    async with client.stream("GET", url) as r:
                        body = b"".join([bytes(c) async for c in r.aiter_raw()])
                    assert r.status_code == 200 and r.headers.get("set-cookie").startswith("session=")
                    assert body == b"ok"

    try:
        trio.run(main)
    finally:
        server.shutdown()
        server.server_close()
    assert _CookieSetter.seen == [None, None, None]


def _in_flight_through(per_host: int, per_host_max: int | None, requests: int = 160) -> tuple[int, int]:
    """Fetch ``requests`` files through a server 30 ms away (each answer delayed, none queued),
    all asked for at once; the most requests that were in flight together, and how many failed."""
    import pathlib
    import tempfile

    from tests.helpers.faultserver import FOREVER, Fault, FaultServer

    with tempfile.TemporaryDirectory() as d:
        root = pathlib.Path(d)
        for i in range(requests):
            (root / f"f{i}").write_bytes(b"x" * 100)
        with FaultServer(root) as srv:
            srv.add_fault("*", Fault(delay=0.03, times=FOREVER))
            now = most = failed = 0

            async def one(slots: ClientSlots, i: int) -> None:
                nonlocal now, most, failed
                url = f"{srv.url}/f{i}"
                async with slots.slot(url) as client:
                    now += 1
                    most = max(most, now)
                    try:
                        async with client.stream("GET", url) as r:
                            async for _ in r.aiter_raw():
                                pass
                        failed += r.status_code != 200
                    finally:
                        now -= 1

            async def main() -> None:
                async with ClientSlots(per_host, per_host_max=per_host_max) as slots, trio.open_nursery() as n:
                    for i in range(requests):
                        n.start_soon(one, slots, i)

            trio.run(main)
    return most, failed


def test_more_requests_are_in_flight_to_a_far_host_up_to_per_host_max() -> None:
    most, failed = _in_flight_through(4, 16)
    assert failed == 0
    assert 4 < most <= 16


def test_per_host_max_equal_to_per_host_keeps_the_number_fixed() -> None:
    most, failed = _in_flight_through(4, 4)
    assert failed == 0 and most == 4


def test_a_proxy_from_the_environment_goes_through_httpx(monkeypatch) -> None:
    from airsync.fetch.h11client import H11Client

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # never dialled: no request is made

    async def main() -> None:
        async with ClientSlots(2) as slots:
            async with slots.slot("https://proxy.example/m/@v/list") as client:
                assert isinstance(client, httpx.AsyncClient)  # httpx applies the proxy and NO_PROXY
            async with slots.slot("http://127.0.0.1:1/m/@v/list") as client:
                assert isinstance(client, H11Client)  # no proxy named for http

    trio.run(main)
