"""Request slots per upstream host, each with a keep-alive connection of its own.

A job bounds the requests in flight to one host, in two lanes: ``per_host`` slots for whole
files and first requests (most module files fit in one), and half as many for the further
ranges of large files. With one shared lane, whichever group queued first took every slot,
and hundreds of small files waited for the large ones to finish (or the other way round).
The whole-file lane grows up to ``per_host_max`` while latency, not the host, is what its
requests wait on (``fetch.concurrency``): each answer's time to its headers is measured by
the client's hooks.

Each slot owns a client with one keep-alive connection, so a request reuses the connection of
its slot (one shared pool would do the same work with more bookkeeping). The client is the lean
HTTP/1.1 one on h11 (``fetch.h11client``, a quarter of httpx's cost per request on the event
loop), or httpx where the job asks for HTTP/2 or the environment names a proxy for the URL
(HTTPS_PROXY, HTTP_PROXY, ALL_PROXY; httpx also applies NO_PROXY). All clients share one SSL
context. Credentials (from GOAUTH: netrc, helper commands) are added to each request for its URL.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import trio

from airsync.fetch import h11client
from airsync.fetch.concurrency import LatencyLimit
from airsync.fetch.h11client import H11Client, Timeouts
from airsync.goproxy.goenv import Credentials, host_matches
from airsync.imports import hidden

if TYPE_CHECKING:
    import httpx

#: What a request through any client raises when it got no usable answer (``HTTP_ERRORS``), and
#: the part of those worth retrying (``TRANSPORT_ERRORS``). httpx's join them once an httpx client
#: exists: a job that needs none never imports httpx (about 20 ms of start-up).
HTTP_ERRORS: tuple[type[Exception], ...] = (h11client.HTTPError,)
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (h11client.TransportError,)

USER_AGENT = "airsync/0.1 (+Go module mirror)"
FILE_LANE = "file"
RANGE_LANE = "range"


def _httpx_client_class():  # noqa: ANN202
    """httpx's client without a cookie jar, imported and made on first use.

    The GOPROXY protocol has no sessions, and the go command's client keeps no cookies either;
    httpx's jar parsed every response through urllib's cookie machinery, a twentieth of the
    event loop's time on thousands of small files. httpx comes without its own command line
    (click, rich, pygments: ~30 ms, see airsync.imports)."""
    global HTTP_ERRORS, TRANSPORT_ERRORS, _HTTPX_CLIENT
    if _HTTPX_CLIENT is not None:
        return _HTTPX_CLIENT
    with hidden("click"):
        import httpx

    class NoCookies(httpx.Cookies):
        def extract_cookies(self, response: httpx.Response) -> None:
            pass

    no_cookies = NoCookies()

    class Client(httpx.AsyncClient):
        @property
        def cookies(self) -> httpx.Cookies:
            return no_cookies

        @cookies.setter
        def cookies(self, _value: object) -> None:
            pass

    HTTP_ERRORS = (*HTTP_ERRORS, httpx.HTTPError)
    TRANSPORT_ERRORS = (*TRANSPORT_ERRORS, httpx.TransportError)
    _HTTPX_CLIENT = Client
    return Client


_HTTPX_CLIENT = None


def _proxied(url: str) -> bool:
    """Does the environment name a proxy for ``url``'s scheme (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)?
    Such requests go through httpx, which also applies NO_PROXY."""
    if not any(name[-6:].lower() == "_proxy" for name in os.environ):
        return False  # the usual case, without importing urllib.request (~10 ms) to be told so
    import urllib.request

    proxies = urllib.request.getproxies()
    return bool(proxies.get(urlsplit(url).scheme) or proxies.get("all"))


class ClientSlots:
    def __init__(
        self,
        per_host: int,
        *,
        per_host_max: int | None = None,
        connect_timeout: float = 15.0,
        read_timeout: float = 30.0,
        http2: bool = False,
        credentials: Credentials | None = None,
        insecure: str = "",
    ) -> None:
        self.per_host = per_host
        self.per_host_max = per_host_max
        self._ssl: ssl.SSLContext | None = None  # made at the first HTTPS URL: loading costs ~17 ms
        self._unverified: ssl.SSLContext | None = None
        self._credentials = credentials or Credentials()
        self._insecure = insecure
        self._timeouts = Timeouts(connect=connect_timeout, read=read_timeout, write=30.0)
        self._http2 = http2
        self._limits: dict[tuple[str, str], trio.CapacityLimiter] = {}
        self._latency: dict[tuple[str, str], LatencyLimit] = {}  # the whole-file lanes'
        self._free: dict[tuple[str, str], list[httpx.AsyncClient | H11Client]] = {}
        self._all: list[httpx.AsyncClient | H11Client] = []

    def _new_client(self, url: str, key: tuple[str, str]) -> httpx.AsyncClient | H11Client:
        latency = self._latency.get(key)
        started = [0.0]  # one request at a time per client (its slot): one start time is enough

        def on_request() -> None:
            started[0] = trio.current_time()

        def on_response() -> None:
            limiter = self._limits[key]
            new = latency.observe(trio.current_time() - started[0], limiter.statistics().tasks_waiting > 0)
            if new is not None:
                limiter.total_tokens = new

        if not self._http2 and not _proxied(url):
            client: httpx.AsyncClient | H11Client = H11Client(
                ssl_for=self._ssl_for,
                timeout=self._timeouts,
                user_agent=USER_AGENT,
                authorize=self._add_credentials if self._credentials.by_prefix else None,
                on_request=on_request if latency is not None else None,
                on_response=on_response if latency is not None else None,
            )
            self._all.append(client)
            return client

        async def request_hook(request: httpx.Request) -> None:
            if self._credentials.by_prefix:
                self._add_credentials(str(request.url), request.headers)
            if latency is not None:
                on_request()

        async def response_hook(_response: httpx.Response) -> None:
            on_response()

        client_class = _httpx_client_class()
        import httpx  # imported by _httpx_client_class

        client = client_class(
            verify=self._ssl_for(url),
            http2=self._http2,
            timeout=httpx.Timeout(connect=self._timeouts.connect, read=self._timeouts.read,
                                  write=self._timeouts.write, pool=None),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
            # One connection, plus room for a redirect to another origin.
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            event_hooks={"request": [request_hook], "response": [response_hook] if latency is not None else []},
        )
        self._all.append(client)
        return client

    def _ssl_for(self, url: str) -> ssl.SSLContext:
        """GOINSECURE hosts: no certificate checks (a private proxy with its own certificate)."""
        if not host_matches(self._insecure, url):
            if self._ssl is None:
                # The system's certificate store (and SSL_CERT_FILE / SSL_CERT_DIR), as the go command
                # uses: a site's own CA, added where the operating system keeps them, is trusted too.
                self._ssl = ssl.create_default_context()
            return self._ssl
        if self._unverified is None:
            self._unverified = ssl.create_default_context()
            self._unverified.check_hostname = False
            self._unverified.verify_mode = ssl.CERT_NONE
        return self._unverified

    def _add_credentials(self, url: str, headers) -> None:  # noqa: ANN001 (a dict or httpx.Headers)
        """Credentials for this URL (also after a redirect): over HTTPS, as the go command sends
        them, or over plain HTTP to a host the user named in GOINSECURE."""
        if url.startswith("https:") or host_matches(self._insecure, url):
            present = {k.lower() for k in headers}
            for name, value in self._credentials.headers_for(url):
                if name.lower() not in present:
                    headers[name] = value

    @asynccontextmanager
    async def slot(self, url: str, lane: str = FILE_LANE) -> AsyncIterator[httpx.AsyncClient | H11Client]:
        """Wait for a free slot of ``url``'s host in ``lane`` and lend its client."""
        key = (urlsplit(url).netloc, lane)
        limiter = self._limits.get(key)
        if limiter is None:
            size = self.per_host if lane == FILE_LANE else max(1, self.per_host // 2)
            limiter = self._limits[key] = trio.CapacityLimiter(size)
            self._free[key] = []
            if lane == FILE_LANE and (self.per_host_max is None or self.per_host_max > size):
                self._latency[key] = LatencyLimit(size, self.per_host_max)
        async with limiter:
            free = self._free[key]
            client = free.pop() if free else self._new_client(url, key)
            try:
                yield client
            finally:
                free.append(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
        self._free.clear()

    async def __aenter__(self) -> ClientSlots:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()
