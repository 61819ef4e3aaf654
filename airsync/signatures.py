"""Per-file signatures of a mirror: computed once, kept in the mirror's state database.

A signature (``chunks.FileSignature``) is what every transfer decision needs about a file: its
size, SHA-256 and xxh3_128, its content-defined chunks, and for a module ``.zip`` or ``.mod`` the
go.sum ``h1:`` hash. ``sync`` compares and resumes with it, ``serve`` exports it as a sidecar
(``<file>.airsig``) and a signed manifest, ``pull`` builds its chunk index from it.

The mirror job records a file's signature when it publishes the file (the bytes are hot in the
page cache then); any file found without one (published by an older airsync, imported, or
changed since) is signed on first use. A row is valid while the file's size and mtime are those
it was made from; anything else and the file is read again. Trees without an ``.airsync/``
workspace (a medium served read-only) get a cache in memory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from airsync import chunks, dirhash, modpath, modzip
from airsync.errors import AirsyncError
from airsync.medium import SIDECAR_SUFFIX

__all__ = ["SIDECAR_SUFFIX", "SIDECAR_MIN", "SignedFile", "SignatureCache", "SignatureCacheError", "module_file", "h1_of"]


class SignatureCacheError(AirsyncError):
    """The cache's database cannot be used (full disk, locked too long, damaged)."""

#: Files smaller than this have a chunk or two: a delta cannot beat fetching them whole, so no
#: sidecar is written or served for them.
SIDECAR_MIN = 4 * chunks.CHUNK_MAX


@dataclass(frozen=True)
class SignedFile:
    rel: str
    size: int
    sha256: str
    xxh3: str
    h1: str | None  # for .zip and .mod: the go.sum hash
    sig: chunks.FileSignature


def module_file(rel: str) -> tuple[modpath.ModuleVersion, str] | None:
    """(module version, ext) for a mirror's .zip or .mod file: the files with a go.sum hash."""
    try:
        mod = modpath.parse_proxy_file(rel)
    except AirsyncError:
        return None
    return mod if mod is not None and mod[1] in ("zip", "mod") else None


def h1_of(path: Path, rel: str) -> str | None:
    """The go.sum hash of a mirror file at ``path`` (None for files go.sum does not cover)."""
    mod = module_file(rel)
    if mod is None:
        return None
    mv, ext = mod
    return modzip.check_zip(path, mv) if ext == "zip" else dirhash.hash_gomod(path.read_bytes())


class SignatureCache:
    """Signatures of a tree's files, keyed by relative path and valid for one (size, mtime)."""

    SCHEMA = """CREATE TABLE IF NOT EXISTS signatures (
        relpath TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, h1 TEXT, sig BLOB)"""

    def __init__(self, path: Path | str) -> None:
        # Worker threads of the mirror job record signatures as they publish: one connection,
        # shared under a lock, is simpler than one per thread and the statements are tiny.
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise SignatureCacheError(f"{path}: cannot open the signature cache: {e}") from None
        try:
            with self._sql(path):
                self._db.execute("PRAGMA busy_timeout=10000")
                if path != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(self.SCHEMA)
        except SignatureCacheError:
            self._db.close()
            raise

    @contextlib.contextmanager
    def _sql(self, where: object = "signature cache"):
        """Serialized use of the connection, its errors typed."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as e:
                raise SignatureCacheError(f"{where}: {e}") from None

    @classmethod
    def for_tree(cls, root: Path) -> SignatureCache:
        work = root / ".airsync"
        return cls(work / "state.db" if work.is_dir() and os.access(work, os.W_OK) else ":memory:")

    def close(self) -> None:
        with self._sql():
            self._db.close()

    def put(self, rel: str, st: os.stat_result, sig: chunks.FileSignature, h1: str | None) -> SignedFile:
        with self._sql(rel):
            self._db.execute(
                "INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?)",
                (rel, st.st_size, st.st_mtime_ns, h1, chunks.encode(sig)),
            )
        return SignedFile(rel, sig.size, sig.sha256.hex(), sig.xxh3.hex(), h1, sig)

    def get(self, root: Path, rel: str, st: os.stat_result | None = None) -> SignedFile:
        """The signature of ``root/rel`` (whose lstat is ``st``), computed if not known."""
        if st is None:
            st = os.lstat(root / rel)
        with self._sql(rel):
            row = self._db.execute(
                "SELECT size, mtime_ns, h1, sig FROM signatures WHERE relpath = ?", (rel,)
            ).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            try:
                sig = chunks.decode(row[3])
                return SignedFile(rel, sig.size, sig.sha256.hex(), sig.xxh3.hex(), row[2], sig)
            except chunks.SignatureFormatError:
                pass  # made by an airsync with other chunk settings: sign the file again
        path = root / rel
        return self.put(rel, st, chunks.signature_of_file(path), h1_of(path, rel))
