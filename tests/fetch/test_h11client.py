"""H11Client, the fetcher's HTTP/1.1 client on h11: keep-alive, redirects to other origins,
TLS with the system's trust (a site CA through SSL_CERT_FILE) or none for GOINSECURE hosts, a
kept-alive connection the server closed, and every fault mapped to the httpx error the fetcher
retries (resets, truncation, stalls, refused connections); httpx itself is never imported."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trio

from airsync.fetch import h11client as hc
from airsync.fetch.h11client import MAX_REDIRECTS, H11Client, Timeouts
from tests.helpers.faultserver import FOREVER, Fault, FaultServer
from tests.helpers.tlscerts import make_tls

TIMEOUT = Timeouts(connect=5.0, read=5.0, write=5.0)


def client(ctx: ssl.SSLContext | None = None, timeout: Timeouts = TIMEOUT, **kw) -> H11Client:
    context = ctx or ssl.create_default_context()
    return H11Client(ssl_for=lambda _url: context, timeout=timeout, user_agent="airsync-test", **kw)


async def get(c: H11Client, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, H11Client]:
    async with c.stream("GET", url, headers=headers) as r:
        body = b"".join([bytes(x) async for x in r.aiter_raw()])
    return r.status_code, body, r


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "m/@v").mkdir(parents=True)
    for i in range(5):
        (root / f"m/@v/v1.0.{i}.info").write_bytes(b'{"Version":"v1.0.%d"}' % i)
    (root / "m/@v/big.zip").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    return root


def test_keep_alive_ranges_and_headers(files: Path) -> None:
    with FaultServer(files) as srv:
        async def main() -> None:
            c = client()
            for i in range(5):
                status, body, r = await get(c, f"{srv.url}/m/@v/v1.0.{i}.info")
                assert (status, body) == (200, b'{"Version":"v1.0.%d"}' % i)
            status, body, r = await get(c, f"{srv.url}/m/@v/big.zip", {"Range": "bytes=1000-1999"})
            assert status == 206 and body == (bytes(range(256)) * 4096)[1000:2000]
            assert r.headers.get("Content-Range") == "bytes 1000-1999/1048576" and r.headers.get("etag")
            assert len(c._conns) == 1  # one connection carried all of them
            await c.aclose()

        trio.run(main)


class _Redirector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        hops = int(self.path.rsplit("/", 1)[-1]) if self.path.rsplit("/", 1)[-1].isdigit() else 0
        location = f"/hop/{hops - 1}" if hops > 0 else f"{type(self).target}/m/@v/v1.0.0.info"
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"moved")


def _serve(handler) -> ThreadingHTTPServer:  # noqa: ANN001
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_redirects_are_followed_to_another_origin_up_to_the_limit(files: Path) -> None:
    with FaultServer(files) as srv:
        _Redirector.target = srv.url
        server = _serve(_Redirector)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            async def main() -> None:
                c = client()
                status, body, r = await get(c, f"{base}/hop/3")
                assert (status, body) == (200, b'{"Version":"v1.0.0"}') and r.url.startswith(srv.url)
                with pytest.raises(hc.TooManyRedirects):
                    await get(c, f"{base}/hop/{MAX_REDIRECTS + 1}")
                await c.aclose()

            trio.run(main)
        finally:
            server.shutdown()
            server.server_close()


class _OneShot(BaseHTTPRequestHandler):
    """Answers one request per connection, then closes it without saying so (an idle timeout)."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def handle(self) -> None:
        type(self).connections += 1
        self.handle_one_request()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def test_a_kept_connection_the_server_closed_is_replaced_without_an_error() -> None:
    _OneShot.connections = 0
    server = _serve(_OneShot)
    url = f"http://127.0.0.1:{server.server_address[1]}/x"
    try:
        async def main() -> None:
            c = client()
            for _ in range(3):
                assert (await get(c, url))[:2] == (200, b"ok")
                await trio.sleep(0.05)  # let the close arrive
            await c.aclose()

        trio.run(main)
    finally:
        server.shutdown()
        server.server_close()
    assert _OneShot.connections == 3


@pytest.mark.parametrize("fault,error", [
    (Fault(reset_after=1000), hc.ReadError),
    (Fault(truncate_after=1000), hc.RemoteProtocolError),
    (Fault(stall_after=1000, stall_seconds=3.0), hc.ReadTimeout),
])
def test_faults_in_a_body_are_httpx_transport_errors(files: Path, fault: Fault, error: type) -> None:
    with FaultServer(files) as srv:
        srv.add_fault("m/@v/big.zip", fault)

        async def main() -> None:
            c = client(timeout=Timeouts(connect=5.0, read=0.5, write=5.0))
            with pytest.raises(error):
                await get(c, f"{srv.url}/m/@v/big.zip")
            assert isinstance(error("x"), hc.TransportError)
            # The connection is not used again; the next request gets a new one and its bytes.
            assert (await get(c, f"{srv.url}/m/@v/v1.0.1.info"))[:2] == (200, b'{"Version":"v1.0.1"}')
            await c.aclose()

        trio.run(main)


def test_status_faults_and_delays_pass_through(files: Path) -> None:
    with FaultServer(files) as srv:
        srv.add_fault("m/@v/v1.0.2.info", Fault(status=503, retry_after="1", times=FOREVER))
        srv.add_fault("m/@v/v1.0.3.info", Fault(delay=0.2))

        async def main() -> None:
            c = client()
            status, _body, r = await get(c, f"{srv.url}/m/@v/v1.0.2.info")
            assert status == 503 and r.headers.get("retry-after") == "1"
            assert (await get(c, f"{srv.url}/m/@v/v1.0.3.info"))[0] == 200
            status, _body, _r = await get(c, f"{srv.url}/m/@v/missing.info")
            assert status == 404
            await c.aclose()

        trio.run(main)


def test_a_refused_connection_is_a_connect_error() -> None:
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> None:
        with pytest.raises(hc.ConnectError, match=f"127.0.0.1:{port}"):
            await get(client(), f"http://127.0.0.1:{port}/x")

    trio.run(main)


def test_https_with_a_site_ca_and_refused_without_it(files: Path, tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with FaultServer(files, tls=tls.server_context()) as srv:
        assert srv.url.startswith("https://")

        async def main() -> None:
            trusted = ssl.create_default_context(cafile=str(tls.ca))
            c = client(trusted)
            assert (await get(c, f"{srv.url}/m/@v/v1.0.4.info"))[:2] == (200, b'{"Version":"v1.0.4"}')
            status, body, _ = await get(c, f"{srv.url}/m/@v/big.zip")
            assert status == 200 and len(body) == 1 << 20
            await c.aclose()
            with pytest.raises(hc.ConnectError, match="TLS|certificate"):
                await get(client(ssl.create_default_context()), f"{srv.url}/m/@v/v1.0.4.info")

        trio.run(main)


def test_credentials_are_added_by_the_callback_for_each_url(files: Path) -> None:
    with FaultServer(files, auth="Basic dTpw") as srv:
        seen: list[str] = []

        def authorize(url: str, headers: dict[str, str]) -> None:
            seen.append(url)
            headers["Authorization"] = "Basic dTpw"

        async def main() -> None:
            assert (await get(client(), f"{srv.url}/m/@v/v1.0.0.info"))[0] == 401
            assert (await get(client(authorize=authorize), f"{srv.url}/m/@v/v1.0.0.info"))[0] == 200

        trio.run(main)
        assert seen == [f"{srv.url}/m/@v/v1.0.0.info"]


def test_a_request_cancelled_mid_body_leaves_the_client_usable(files: Path) -> None:
    with FaultServer(files) as srv:
        srv.add_fault("m/@v/big.zip", Fault(stall_after=1000, stall_seconds=3.0))

        async def main() -> None:
            c = client()
            with trio.move_on_after(0.3) as scope:
                await get(c, f"{srv.url}/m/@v/big.zip")
            assert scope.cancelled_caught
            assert (await get(c, f"{srv.url}/m/@v/v1.0.1.info"))[:2] == (200, b'{"Version":"v1.0.1"}')
            await c.aclose()

        trio.run(main)


def test_a_mirror_job_over_plain_http_never_imports_httpx(files: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, trio\n"
        "from airsync.fetch.slots import ClientSlots\n"
        "async def main():\n"
        "    async with ClientSlots(2) as s:\n"
        "        async with s.slot(sys.argv[1]) as c:\n"
        "            async with c.stream('GET', sys.argv[1]) as r:\n"
        "                assert r.status_code == 200, r.status_code\n"
        "                [x async for x in r.aiter_raw()]\n"
        "trio.run(main)\n"
        "assert 'httpx' not in sys.modules and 'httpcore' not in sys.modules\n"
        "print('ok')\n"
    )
    with FaultServer(files) as srv:
        r = subprocess.run([sys.executable, "-c", code, f"{srv.url}/m/@v/v1.0.0.info"], capture_output=True,
                           text=True, timeout=60, env={k: v for k, v in __import__("os").environ.items()
                                                       if "proxy" not in k.lower()})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_a_large_body_is_read_past_h11_and_the_connection_still_serves(files: Path, tmp_path: Path) -> None:
    whole = (files / "m/@v/big.zip").read_bytes()

    async def pieces(c: H11Client, url: str, headers: dict[str, str] | None = None) -> tuple[bytes, set]:
        kinds, body = set(), bytearray()
        async with c.stream("GET", url, headers=headers) as r:
            async for x in r.aiter_raw():
                kinds.add(type(x))
                body += x
        return bytes(body), kinds

    with FaultServer(files) as srv:
        async def main() -> None:
            c = client()
            for _ in range(2):
                body, kinds = await pieces(c, f"{srv.url}/m/@v/big.zip")
                assert body == whole and memoryview in kinds  # straight from the socket
            body, _ = await pieces(c, f"{srv.url}/m/@v/big.zip", {"Range": "bytes=100-300099"})
            assert body == whole[100:300100]
            assert (await get(c, f"{srv.url}/m/@v/v1.0.2.info"))[:2] == (200, b'{"Version":"v1.0.2"}')
            assert len(c._conns) == 1 and c._conns[0].usable  # all on one kept-alive connection
            await c.aclose()

        trio.run(main)
        assert len(srv.requests) == 4

    tls = make_tls(tmp_path / "tls")
    with FaultServer(files, tls=tls.server_context()) as srv:
        async def over_tls() -> None:
            c = client(ssl.create_default_context(cafile=str(tls.ca)))
            body, kinds = await pieces(c, f"{srv.url}/m/@v/big.zip")
            assert body == whole and memoryview not in kinds  # TLS: through h11
            await c.aclose()

        trio.run(over_tls)
