"""Fetch the Go vulnerability database from its URL into a mirror's ``vulndb/``, checked and whole.

1. ``index/db.json`` first (a few dozen bytes): a time older than the mirror's copy is a rollback
   and stops the update; the same time, with every entry of the copy's index present, means
   nothing changed and nothing else is requested (this is the conditional request: the database
   is static files whose one changing summary is this time).
2. ``index/modules.json`` and ``index/vulns.json``, parsed and checked against each other.
3. The entries that are new or whose ``modified`` time changed (``db.plan_update``), a few at a
   time, each checked (well-formed OSV, its own id, the index's time and modules) before it is
   kept in the mirror's staging area.
4. Only when everything checked: ``ondisk.publish`` (entries first, indexes last, each atomic and
   durable). Any failure leaves the mirror's previous database exactly as it was.

Each file is asked for as ``.json.gz`` (what the public database and ``airsync serve`` offer, a
fifth of the bytes) and, when the server has no such file, as ``.json`` from then on. Sizes are
bounded before and after decompression (``db.MAX_ENTRY``, ``db.MAX_INDEX``). Connection errors,
truncated bodies, 5xx and 429 are retried with the job's retry policy; anything else fails.
"""

from __future__ import annotations

import random
import ssl
import time
import zlib
from dataclasses import dataclass

import trio

from airsync.errors import UpstreamError, first_of
from airsync.fetch.fetcher import FetchSettings
from airsync.fetch.retry import Outcome, classify_status, parse_retry_after
from airsync.fetch.slots import USER_AGENT
from airsync.imports import hidden
from airsync.store import Flusher, MirrorStore
from airsync.vulndb import db, ondisk

# httpx imports its own command line (click, rich, pygments) whenever click is installed: ~30 ms of
# every start-up, for nothing airsync uses (see airsync.imports).
with hidden("click"):
    import httpx

__all__ = ["Result", "update"]

CONCURRENCY = 16


@dataclass
class Result:
    url: str
    modified: str = ""  # db.json's time after the update
    fetched: int = 0  # entries fetched
    unchanged: int = 0
    requests: int = 0
    bytes: int = 0  # on the wire
    up_to_date: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return f"vulnerability database from {self.modified}: up to date ({self.requests} request)"
        return (f"vulnerability database from {self.modified}: {self.fetched} entries fetched, "
                f"{self.unchanged} unchanged ({self.requests} requests, {self.bytes} bytes)")


class _Missing(Exception):
    pass


class _Client:
    def __init__(self, url: str, client: httpx.AsyncClient, settings: FetchSettings, result: Result) -> None:
        self.url = url
        self.client = client
        self.settings = settings
        self.result = result
        self.gz = True

    async def get(self, rel: str, limit: int) -> bytes:
        """The (decompressed) bytes of ``rel`` under the database URL."""
        if self.gz:
            try:
                return await self._get(rel + ".gz", limit, gz=True)
            except _Missing:
                if rel != db.DB_FILE:  # the first request decides which the server offers
                    raise UpstreamError(f"{self.url}/{rel}.gz: not found (404)") from None
                self.gz = False
        try:
            return await self._get(rel, limit, gz=False)
        except _Missing:
            raise UpstreamError(f"{self.url}/{rel}: not found (404)") from None

    async def _get(self, rel: str, limit: int, gz: bool) -> bytes:
        url = f"{self.url}/{rel}"
        policy = self.settings.retry
        attempt = 0
        while True:
            retry_after = None
            try:
                self.result.requests += 1
                async with self.client.stream("GET", url) as r:
                    outcome = classify_status(r.status_code)
                    if outcome is Outcome.OK:
                        data = await self._body(r, url, limit, gz)
                        self.result.bytes += r.num_bytes_downloaded
                        return data
                    self.result.bytes += r.num_bytes_downloaded
                    if r.status_code in (404, 410):
                        raise _Missing()
                    if outcome is not Outcome.RETRY:
                        raise UpstreamError(f"{url}: HTTP {r.status_code}")
                    retry_after = parse_retry_after(r.headers.get("retry-after"), time.time())  # a Unix time
                    why = f"HTTP {r.status_code}"
            except (httpx.TransportError, httpx.DecodingError) as e:
                why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            attempt += 1
            if policy.gives_up(attempt):
                raise UpstreamError(f"{url}: {why} (gave up after {attempt} attempts)")
            await trio.sleep(policy.delay(attempt, retry_after, random.random()))

    @staticmethod
    async def _body(r: httpx.Response, url: str, limit: int, gz: bool) -> bytes:
        chunks, size = [], 0
        async for chunk in r.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise db.VulnDBError(f"{url}: more than the {limit} bytes a file of the database may have")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not gz:
            return data
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(data, limit + 1)
        except zlib.error as e:
            raise db.VulnDBError(f"{url}: not valid gzip ({e}; truncated?)") from None
        if len(out) > limit:
            raise db.VulnDBError(f"{url}: more than the {limit} bytes a file of the database may have")
        if not d.eof:
            raise db.VulnDBError(f"{url}: gzip stream cut short (truncated)")
        return out


async def update(store: MirrorStore, url: str, settings: FetchSettings | None = None,
                 concurrency: int = CONCURRENCY) -> Result:
    """Bring ``store``'s ``vulndb/`` up to the database at ``url``; see the module docstring.
    Raises VulnDBError (a bad or older database) or UpstreamError; the old copy then stays."""
    settings = settings or FetchSettings()
    result = Result(url)
    root = store.root / ondisk.VULNDB
    try:
        old = await trio.to_thread.run_sync(ondisk.read_index, root)
    except db.VulnDBError:
        old = None  # a damaged copy is replaced whole (its db.json alone still guards rollback)
    old_db = old.db if old else await trio.to_thread.run_sync(ondisk.read_db, root)
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout, write=30.0, pool=None)
    async with httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=True,
                                 verify=ssl.create_default_context(),
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        c = _Client(url, client, settings, result)
        db_bytes = await c.get(db.DB_FILE, db.MAX_INDEX)
        new_db = db.parse_db(db_bytes, f"{url}/{db.DB_FILE}")
        db.check_not_older(new_db, old_db, f"{url}/{db.DB_FILE}")
        result.modified = new_db.text
        present = await trio.to_thread.run_sync(ondisk.present_ids, root)
        if old is not None and new_db.modified == old.db.modified and {v.id for v in old.vulns} <= present:
            result.up_to_date, result.unchanged = True, len(old.vulns)
            return result
        index_bytes = {db.DB_FILE: db_bytes}

        async def index_file(rel: str) -> None:
            index_bytes[rel] = await c.get(rel, db.MAX_INDEX)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(index_file, db.MODULES_FILE)
            nursery.start_soon(index_file, db.VULNS_FILE)
        index = db.parse_index(index_bytes[db.DB_FILE], index_bytes[db.MODULES_FILE], index_bytes[db.VULNS_FILE],
                               prefix=url + "/")
        plan = db.plan_update(index, old, present)
        entries: dict[str, bytes] = {}
        limiter = trio.CapacityLimiter(concurrency)

        async def entry(vid: str) -> None:
            async with limiter:
                data = await c.get(db.entry_path(vid), db.MAX_ENTRY)
            where = f"{url}/{db.entry_path(vid)}"
            problem = db.check_entry(db.parse_entry(data, where), vid, index, where)
            if problem:
                raise db.VulnDBError(problem)
            entries[vid] = data

        try:
            async with trio.open_nursery() as nursery:
                for vid in plan.fetch:
                    nursery.start_soon(entry, vid)
        except BaseExceptionGroup as g:
            raise _first(g) from None
    await trio.to_thread.run_sync(ondisk.publish, store, entries, index_bytes, Flusher(store.root))
    result.fetched, result.unchanged = len(plan.fetch), plan.unchanged
    return result


def _first(g: BaseExceptionGroup) -> BaseException:
    """The error to report of several concurrent failures: a database fault before a network one."""
    found = first_of(g, db.VulnDBError) or first_of(g, UpstreamError)
    if found is not None:
        return found
    e: BaseException = g
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e
