"""ClientSlots: the clients it lends keep no cookies, as the go command's client keeps none."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


def test_a_set_cookie_is_never_sent_back() -> None:
    _CookieSetter.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CookieSetter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/m/@v/list"

    async def main() -> None:
        async with ClientSlots(2) as slots:
            for _ in range(3):
                async with slots.slot(url) as client:
                    r = await client.get(url)
                    assert r.status_code == 200 and r.headers["set-cookie"].startswith("session=")
                    assert len(client.cookies) == 0

    try:
        trio.run(main)
    finally:
        server.shutdown()
        server.server_close()
    assert _CookieSetter.seen == [None, None, None]
