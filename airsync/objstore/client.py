"""The S3 client: obstore's sync API, one ``Bucket`` per store URL, called from worker threads.

obstore (the Rust ``object_store`` crate) was chosen by measurement (scripts/bench_store.py,
BENCHMARKS.md): its small-object puts and gets were several times faster than boto3's and faster
than httpx with a SigV4 auth class, and it gives the two conditional writes airsync's guarantees
rest on: a create-only put (``If-None-Match: *``) and a compare-and-swap put (``If-Match`` on
the ETag). Its async API needs asyncio, so airsync calls the sync API through
``trio.to_thread`` like any other blocking I/O.

Every failure becomes an ``ObjectStoreError`` whose message names the store URL and the key
and what went wrong, with the secret redacted; it is also an ``OSError`` (EIO: the store is
unreachable or refuses us, so nothing else can be published either; EEXIST: an object differs
from what airsync would write) so the callers that stop a job on a disk error stop it the same
way on a store error. Credentials are always passed explicitly, so the client never probes a
cloud metadata address.
"""

from __future__ import annotations

import errno
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from airsync.objstore.url import Settings, StoreURL, redact
from airsync.store import StoreError


# obstore raises its own classes, and also Python's own for some (FileNotFoundError for a 404).
_MISSING = (NotFoundError, FileNotFoundError)
_LOST = (AlreadyExistsError, PreconditionError, FileExistsError)
_FAILED = (BaseError, OSError)


_TRANSPORT_RETRIES = 3


def _transport(e: BaseException) -> bool:
    """Did the connection fail (rather than the store answer with an error)?"""
    return "status code:" not in str(e).split("Debug source:")[0]


class ObjectStoreError(StoreError, OSError):
    """The object store failed, refused us, or holds something airsync did not expect."""

    def __init__(self, code: int, message: str) -> None:
        OSError.__init__(self, code, message)

    def __str__(self) -> str:
        return self.strerror


class Conflict(Exception):
    """A conditional put lost: the object exists (create-only) or changed (compare-and-swap)."""


def _first_line(e: BaseException) -> str:
    """What went wrong, in a few words: the HTTP status and the store's error code, or the
    transport failure (object_store's messages nest the request, retries and a debug dump)."""
    text = str(e)
    head = text.split("Debug source:")[0].strip()
    status = re.search(r"status code: (\d{3}) ([^:<]+)", head)
    code = re.search(r"<Code>([^<]{1,80})</Code>", head)
    message = re.search(r"<Message>([^<]{1,200})</Message>", head)
    if status:
        out = f"{status.group(1)} {status.group(2).strip()}"
        if code:
            out += f" ({code.group(1)}" + (f": {message.group(1)}" if message else "") + ")"
        return out
    for needle, say in (("ConnectionRefused", "connection refused"), ("ConnectionReset", "connection reset"),
                        ("TimedOut", "timed out"), ("kind: Timeout", "timed out"),
                        ("IncompleteMessage", "connection closed before the answer was complete"),
                        ("kind: Body", "connection broke while reading the answer"),
                        ("kind: Decode", "connection broke while reading the answer")):
        if needle in text:
            return say
    last = head.rsplit(" - ", 1)[-1].strip()
    return (last.splitlines()[0] if last else type(e).__name__)[:300]


class Bucket:
    def __init__(self, url: StoreURL, settings: Settings, *, retries: int = 4, timeout: float = 60.0) -> None:
        self.url = url
        self.settings = settings
        if not settings.access_key_id:
            raise ObjectStoreError(
                errno.EACCES,
                f"{url}: no store credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or access_key_id/secret_access_key in the [store] table",
            )
        config = dict(
            region=settings.region,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            virtual_hosted_style_request=settings.virtual_hosted,
            conditional_put="etag",
        )
        if settings.session_token:
            config["session_token"] = settings.session_token
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        self.store = S3Store(
            url.bucket,
            config=config,
            client_options={
                "allow_http": settings.allow_http,
                "connect_timeout": timedelta(seconds=10),
                "timeout": timedelta(seconds=timeout),
            },
            retry_config={
                "max_retries": retries,
                "retry_timeout": timedelta(seconds=max(30.0, timeout)),
                "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
            },
        )

    # -- errors ------------------------------------------------------------------------------

    def _error(self, e: BaseException, key: str, doing: str) -> ObjectStoreError:
        where = f"{self.url.bucket}/{key}" if key else str(self.url)
        why = _first_line(e)
        if isinstance(e, (PermissionDeniedError, UnauthenticatedError, PermissionError)) or re.search(r"\b403\b", why):
            who = f" (credentials from {self.settings.source})" if self.settings.source else ""
            msg = f"s3://{where}: access denied while {doing}{who}: {why}"
            return ObjectStoreError(errno.EACCES, redact(msg, self.settings))
        if re.search(r"NoSuchBucket|bucket does not exist|specified bucket", str(e), re.I):
            return ObjectStoreError(errno.ENOENT, f"s3://{self.url.bucket}: no such bucket (while {doing})")
        return ObjectStoreError(errno.EIO, redact(f"s3://{where}: store failed while {doing}: {why}", self.settings))

    # -- operations (blocking: call from a worker thread) --------------------------------------

    def check(self) -> None:
        """Raise ObjectStoreError unless the bucket exists and answers us (one small listing)."""
        try:
            stream = obstore.list(self.store, self.url.prefix or None, chunk_size=1)
            next(iter(stream), None)
        except _FAILED as e:
            raise self._error(e, self.url.prefix, "listing") from None

    def get(self, key: str) -> tuple[bytes, str | None] | None:
        """The object's bytes and ETag, or None when there is none."""
        try:
            r = obstore.get(self.store, key)
            data = bytes(r.bytes())
            return data, r.meta.get("e_tag")
        except _MISSING:
            return None
        except _FAILED as e:
            raise self._error(e, key, "reading") from None

    def get_to(self, key: str, dest: Path) -> bool:
        """Stream the object into ``dest``; False when there is none."""
        chunks = self.get_chunks(key)
        if chunks is None:
            return False
        with open(dest, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        return True

    def get_chunks(self, key: str) -> Iterator[bytes] | None:
        """The object's bytes as they arrive, a chunk at a time; None when there is none. A
        failure, also after the first chunk, is an ``ObjectStoreError``."""
        try:
            r = obstore.get(self.store, key)
        except _MISSING:
            return None
        except _FAILED as e:
            raise self._error(e, key, "reading") from None
        return self._chunks(r, key)

    def _chunks(self, r, key: str) -> Iterator[bytes]:  # noqa: ANN001 (obstore's GetResult)
        try:
            yield from r
        except _FAILED as e:
            raise self._error(e, key, "reading") from None

    def head(self, key: str) -> tuple[int, str | None] | None:
        try:
            m = obstore.head(self.store, key)
            return m["size"], m.get("e_tag")
        except _MISSING:
            return None
        except _FAILED as e:
            raise self._error(e, key, "looking up") from None

    def _put(self, key: str, data: bytes | Path, mode) -> str:
        """One put; a connection that broke mid-request is tried again (obstore retries only
        what it knows was not applied). That is safe for conditional puts: if the broken one
        was applied after all, the retry loses its condition, and the callers compare what
        is there (create-only) or read and merge again (compare-and-swap)."""
        for attempt in range(_TRANSPORT_RETRIES + 1):
            try:
                return obstore.put(self.store, key, data, mode=mode, use_multipart=False)["e_tag"]
            except _FAILED as e:
                if isinstance(e, _MISSING + _LOST) or attempt == _TRANSPORT_RETRIES or not _transport(e):
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def put_create(self, key: str, data: bytes | Path) -> str:
        """Create ``key`` only if absent (``If-None-Match: *``); Conflict when it exists."""
        try:
            return self._put(key, data, "create")
        except _LOST:
            raise Conflict(key) from None
        except _FAILED as e:
            raise self._error(e, key, "writing") from None

    def put_swap(self, key: str, data: bytes, etag: str | None) -> str:
        """Replace ``key`` if its ETag is still ``etag`` (None: create it if absent); Conflict otherwise."""
        try:
            return self._put(key, data, "create" if etag is None else {"e_tag": etag})
        except _LOST:
            raise Conflict(key) from None
        except _MISSING:
            raise Conflict(key) from None  # deleted meanwhile: the caller reads it again
        except _FAILED as e:
            raise self._error(e, key, "writing") from None

    def put(self, key: str, data: bytes | Path) -> str:
        """Unconditional put (files airsync owns alone, e.g. its lease)."""
        try:
            return self._put(key, data, "overwrite")
        except _FAILED as e:
            raise self._error(e, key, "writing") from None

    def delete(self, key: str) -> None:
        try:
            obstore.delete(self.store, key)
        except _MISSING:
            pass
        except _FAILED as e:
            raise self._error(e, key, "deleting") from None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix`` (a key prefix ending in '/' or '')."""
        for key, size, _ in self.list_meta(prefix):
            yield key, size

    def list_meta(self, prefix: str) -> Iterator[tuple[str, int, str | None]]:
        """(key, size, ETag) of every object under ``prefix``."""
        try:
            for chunk in obstore.list(self.store, prefix or None, chunk_size=1000):
                for meta in chunk:
                    yield meta["path"], meta["size"], meta.get("e_tag")
        except _FAILED as e:
            raise self._error(e, prefix, "listing") from None

    def presign_get(self, key: str, seconds: int) -> str:
        try:
            return obstore.sign(self.store, "GET", key, timedelta(seconds=seconds))
        except _FAILED as e:
            raise self._error(e, key, "signing a URL") from None
