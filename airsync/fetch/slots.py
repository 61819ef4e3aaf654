"""Request slots per upstream host, each with a keep-alive connection of its own.

A job bounds the requests in flight to one host, in two lanes: ``per_host`` slots for whole
files and first requests (most module files fit in one), and half as many for the further
ranges of large files. With one shared lane, whichever group queued first took every slot,
and hundreds of small files waited for the large ones to finish (or the other way round).
The whole-file lane grows up to ``per_host_max`` while latency, not the host, is what its
requests wait on (``fetch.concurrency``): each answer's time to its headers is measured by
the client's event hooks.
Each slot owns an httpx client
whose pool holds one connection, so a request reuses the connection of its slot. One shared
pool would do the same work with more bookkeeping: httpcore walks every pooled connection, and
polls each idle one, at the start and end of every request, which for thousands of small files
costs more than the requests themselves. All clients share one SSL context. Credentials (from
GOAUTH: netrc, helper commands) are added to each request for its URL; proxies come from the
environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), which httpx reads.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio

from airsync.fetch.concurrency import LatencyLimit
from airsync.goproxy.goenv import Credentials, host_matches
from airsync.imports import hidden

# httpx imports its own command line (click, rich, pygments) whenever click is installed: ~30 ms of
# every start-up, for nothing airsync uses (see airsync.imports).
with hidden("click"):
    import httpx

USER_AGENT = "airsync/0.1 (+Go module mirror)"
FILE_LANE = "file"
RANGE_LANE = "range"


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: the GOPROXY protocol has no sessions, and the go
    command's client keeps no cookies either. httpx's jar parsed every response through
    urllib's cookie machinery, a twentieth of the event loop's time on thousands of small files."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.AsyncClient):
    """httpx's client, without a cookie jar (see ``_NoCookies``)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, _value: object) -> None:
        pass


_NO_COOKIES = _NoCookies()


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
        # The system's certificate store (and SSL_CERT_FILE / SSL_CERT_DIR), as the go command
        # uses: a site's own CA, added where the operating system keeps them, is trusted here too.
        self._ssl = ssl.create_default_context()
        self._credentials = credentials or Credentials()
        self._insecure = insecure
        self._timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=None)
        self._http2 = http2
        self._limits: dict[tuple[str, str], trio.CapacityLimiter] = {}
        self._latency: dict[tuple[str, str], LatencyLimit] = {}  # the whole-file lanes'
        self._free: dict[tuple[str, str], list[httpx.AsyncClient]] = {}
        self._all: list[httpx.AsyncClient] = []

    def _new_client(self, url: str, key: tuple[str, str]) -> httpx.AsyncClient:
        hooks: dict[str, list] = {"request": [], "response": []}
        if self._credentials.by_prefix:
            hooks["request"].append(self._authorize)
        latency = self._latency.get(key)
        if latency is not None:
            # One request at a time per client (its slot): one start time is enough.
            started = [0.0]

            async def on_request(_request: httpx.Request) -> None:
                started[0] = trio.current_time()

            async def on_response(_response: httpx.Response) -> None:
                limiter = self._limits[key]
                new = latency.observe(trio.current_time() - started[0], limiter.statistics().tasks_waiting > 0)
                if new is not None:
                    limiter.total_tokens = new

            hooks["request"].append(on_request)
            hooks["response"].append(on_response)
        client = _Client(
            # GOINSECURE hosts: no certificate checks (a private proxy with its own certificate).
            verify=False if host_matches(self._insecure, url) else self._ssl,
            http2=self._http2,
            timeout=self._timeout,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
            # One connection, plus room for a redirect to another origin.
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            event_hooks=hooks if hooks["request"] else None,
        )
        self._all.append(client)
        return client

    async def _authorize(self, request: httpx.Request) -> None:
        """Credentials for this URL (also after a redirect): over HTTPS, as the go command sends
        them, or over plain HTTP to a host the user named in GOINSECURE."""
        url = str(request.url)
        if request.url.scheme == "https" or host_matches(self._insecure, url):
            for name, value in self._credentials.headers_for(url):
                if name not in request.headers:
                    request.headers[name] = value

    @asynccontextmanager
    async def slot(self, url: str, lane: str = FILE_LANE) -> AsyncIterator[httpx.AsyncClient]:
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
