"""Request slots per upstream host, each with a keep-alive connection of its own.

A job bounds the requests in flight to one host (``per_host``). Each slot owns an httpx client
whose pool holds one connection, so a request reuses the connection of its slot. One shared
pool would do the same work with more bookkeeping: httpcore walks every pooled connection, and
polls each idle one, at the start and end of every request, which for thousands of small files
costs more than the requests themselves. All clients share one SSL context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import trio

USER_AGENT = "airsync/0.1 (+Go module mirror)"


class ClientSlots:
    def __init__(
        self,
        per_host: int,
        *,
        connect_timeout: float = 15.0,
        read_timeout: float = 30.0,
        http2: bool = False,
    ) -> None:
        self.per_host = per_host
        self._ssl = httpx.create_ssl_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
        self._timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=None)
        self._http2 = http2
        self._limits: dict[str, trio.CapacityLimiter] = {}
        self._free: dict[str, list[httpx.AsyncClient]] = {}
        self._all: list[httpx.AsyncClient] = []

    def _new_client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            verify=self._ssl,
            http2=self._http2,
            timeout=self._timeout,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
            # One connection, plus room for a redirect to another origin.
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
        )
        self._all.append(client)
        return client

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[httpx.AsyncClient]:
        """Wait for a free slot of ``url``'s host and lend its client."""
        host = urlsplit(url).netloc
        limiter = self._limits.get(host)
        if limiter is None:
            limiter = self._limits[host] = trio.CapacityLimiter(self.per_host)
            self._free[host] = []
        async with limiter:
            free = self._free[host]
            client = free.pop() if free else self._new_client()
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
