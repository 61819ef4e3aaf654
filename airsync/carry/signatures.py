"""Per-file signatures of a mirror: computed once, kept in the mirror's state database.

A signature (``chunks.FileSignature``) is what every transfer decision needs about a file: its
size, SHA-256 and xxh3_128, its content-defined chunks, and for a module ``.zip`` or ``.mod`` the
go.sum ``h1:`` hash. ``sync`` compares and resumes with it, ``serve`` exports it as a sidecar
(``<file>.airsig``) and a signed manifest, ``pull`` builds its chunk index from it.

The mirror job records a file's signature when it publishes the file (the bytes are hot in the
page cache then); any file found without one (published by an older airsync, imported, or
changed since) is signed on first use. A row is valid while the file's size and mtime are those
it was made from; anything else and the file is read again. Trees without an ``.airsync/``
workspace (a medium served read-only) get a cache in memory. ``tree_signatures`` signs a whole
tree (or the subset of modules ``selected`` picks) and ``make_manifest`` turns that into the
manifest that sync writes on a medium and serve offers to a puller. The same database keeps the
last few SBOMs built (``SignatureCache.sbom``), for the next carry of the same module versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from airsync.carry import chunks, sbom
from airsync.carry.medium import SIDECAR_SUFFIX, TreeScan, tree_files
from airsync.errors import AirsyncError
from airsync.goproxy import dirhash, modpath, modzip
from airsync.trust import sumdb

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airsync.carry.manifest import Entry, Manifest

__all__ = ["SIDECAR_SUFFIX", "SIDECAR_MIN", "SignedFile", "SignatureCache", "SignatureCacheError", "module_file", "h1_of",
           "selected", "tree_signatures", "make_manifest"]


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
    encoded: bytes = field(repr=False)  # the signature as a sidecar (chunks.encode)

    @cached_property
    def sig(self) -> chunks.FileSignature:
        """The chunk list, decoded when a delta needs it: comparing files needs only the hashes,
        and decoding every chunk of every file was most of a no-op resync's time."""
        return chunks.decode(self.encoded)

    @classmethod
    def of(cls, rel: str, sig: chunks.FileSignature, h1: str | None, encoded: bytes | None = None) -> SignedFile:
        sf = cls(rel, sig.size, sig.sha256.hex(), sig.xxh3.hex(), h1, encoded or chunks.encode(sig))
        sf.__dict__["sig"] = sig  # already decoded (cached_property's own slot)
        return sf


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


#: ``SignatureCache.gather`` hands its rows over once this many have gathered, or this long after the last time.
SOON_ROWS = 512
SOON_SECONDS = 1.0


class SignatureCache:
    """Signatures of a tree's files, keyed by relative path and valid for one (size, mtime)."""

    SCHEMA = """CREATE TABLE IF NOT EXISTS signatures (
        relpath TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, h1 TEXT, sig BLOB)"""
    SBOM_SCHEMA = "CREATE TABLE IF NOT EXISTS sbom_cache (key TEXT PRIMARY KEY, used INTEGER, sha256 TEXT, doc BLOB)"
    SBOMS_KEPT = 4  # media for a few --only subsets, or the same mirror before and after an update

    def __init__(self, path: Path | str) -> None:
        # Worker threads of the mirror job record signatures as they publish: one connection,
        # shared under a lock, is simpler than one per thread and the statements are tiny.
        self._lock = threading.Lock()
        self._pending: list[tuple[str, os.stat_result, chunks.FileSignature, str | None]] = []
        self._pending_lock = threading.Lock()
        self._flushed = time.monotonic()
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise SignatureCacheError(f"{path}: cannot open the signature cache: {e}") from None
        try:
            with self._sql(path):
                self._db.execute("PRAGMA busy_timeout=10000")
                if path != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                    # A cache: a row lost to a power cut costs one signing again, so commits
                    # need not wait for the disk (WAL still survives a killed process).
                    self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(self.SCHEMA)
                self._db.execute(self.SBOM_SCHEMA)
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
        try:
            self.flush()  # callers that want to hear of a failure flush first
        except SignatureCacheError:
            pass  # a cache: the files are signed again when a sync or pull needs them
        finally:
            with self._sql():
                self._db.close()

    def sbom(self, entries: Iterable[Entry], gosum: Iterable[str], serial: str, created: str) -> bytes:
        """The SBOM of a carry (``carry.sbom.make_sbom``): when one of the last few built from
        this mirror listed the same components (another medium of the same mirror), that one
        with this carry's serial number and time; else built, and kept for the next."""
        entries, gosum = list(entries), list(gosum)
        key = sbom.content_key(entries, gosum)
        try:
            with self._sql():
                row = self._db.execute("SELECT sha256, doc FROM sbom_cache WHERE key = ?", (key,)).fetchone()
        except SignatureCacheError:
            row = None
        hit = row is not None and hashlib.sha256(row[1]).hexdigest() == row[0]  # a damaged row is none
        doc = sbom.restamp(row[1], serial, created) if hit else sbom.make_sbom(entries, gosum, serial, created)
        try:
            with self._sql():
                if hit:
                    self._db.execute("UPDATE sbom_cache SET used = ? WHERE key = ?", (time.time_ns(), key))
                else:
                    self._db.execute("INSERT OR REPLACE INTO sbom_cache VALUES (?, ?, ?, ?)",
                                     (key, time.time_ns(), hashlib.sha256(doc).hexdigest(), doc))
                self._db.execute("DELETE FROM sbom_cache WHERE key NOT IN "
                                 "(SELECT key FROM sbom_cache ORDER BY used DESC LIMIT ?)", (self.SBOMS_KEPT,))
        except SignatureCacheError:
            pass  # a cache: the next carry builds it again
        return doc

    def put(self, rel: str, st: os.stat_result, sig: chunks.FileSignature, h1: str | None) -> SignedFile:
        sf = SignedFile.of(rel, sig, h1)
        self._insert([(rel, st.st_size, st.st_mtime_ns, h1, sf.encoded)])
        return sf

    def put_many(self, rows: list[tuple[str, os.stat_result, chunks.FileSignature, str | None]]) -> None:
        """Record several files' signatures in one transaction."""
        if not rows:
            return
        self._insert([(rel, st.st_size, st.st_mtime_ns, h1, chunks.encode(sig)) for rel, st, sig, h1 in rows])

    def _insert(self, rows: list[tuple[str, int, int, str | None, bytes]]) -> None:
        with self._sql(rows[0][0]), self._db:  # one transaction (committed, or rolled back on error)
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?)", rows)

    def gather(self, rows: list[tuple[str, os.stat_result, chunks.FileSignature, str | None]]
               ) -> list[tuple[str, os.stat_result, chunks.FileSignature, str | None]]:
        """Rows for ``put_many``, batched with other calls': the rows gathered so far once
        ``SOON_ROWS`` of them or ``SOON_SECONDS`` have gathered, for the caller to write where a
        transaction may block (not in an event loop), else [] (``flush`` and ``close`` write the
        rest). A transaction per module version was a tenth of a small mirror job's landing
        time; rows a kill -9 loses only cost signing those files again."""
        with self._pending_lock:
            self._pending.extend(rows)
            if len(self._pending) < SOON_ROWS and time.monotonic() - self._flushed < SOON_SECONDS:
                return []
            rows, self._pending = self._pending, []
            self._flushed = time.monotonic()
        return rows

    def flush(self) -> None:
        """Write the rows ``gather`` holds."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
            self._flushed = time.monotonic()
        self.put_many(rows)

    def get(self, root: Path, rel: str, st: os.stat_result | None = None) -> SignedFile:
        """The signature of ``root/rel`` (whose lstat is ``st``), computed if not known."""
        if st is None:
            st = os.lstat(root / rel)
        with self._sql(rel):
            row = self._db.execute(
                "SELECT size, mtime_ns, h1, sig FROM signatures WHERE relpath = ?", (rel,)
            ).fetchone()
        return self._signed(root, rel, st, row)

    def get_many(self, root: Path, files: dict[str, os.stat_result]) -> dict[str, SignedFile]:
        """``get`` for many files of ``root`` (relpath -> lstat), with one query for the known
        ones: a query per file was most of a no-op resync's time."""
        with self._sql(root):
            rows = {r[0]: r[1:] for r in self._db.execute("SELECT relpath, size, mtime_ns, h1, sig FROM signatures")}
        return {rel: self._signed(root, rel, st, rows.get(rel)) for rel, st in files.items()}

    def _signed(self, root: Path, rel: str, st: os.stat_result, row: tuple | None) -> SignedFile:
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            try:
                size, x, s = chunks.decode_summary(row[3])
                return SignedFile(rel, size, s.hex(), x.hex(), row[2], bytes(row[3]))
            except chunks.SignatureFormatError:
                pass  # made by an airsync with other chunk settings: sign the file again
        path = root / rel
        return self.put(rel, st, chunks.signature_of_file(path), h1_of(path, rel))


def selected(rel: str, only: str) -> bool:
    """Is a mirror file part of the subset ``only`` selects ('' selects everything)?

    Module files, lists and ``@latest`` go with their module path; the checksum database goes whole (its
    tiles are shared by every record, and the go command needs them to check any module), and so
    does the vulnerability database (one index for every module)."""
    if not only or rel.startswith(("sumdb/", "vulndb/")):
        return True
    mod, sep, _ = rel.partition("/@v/")
    if not sep:
        mod, sep = rel.removesuffix("/@latest"), rel.endswith("/@latest")
    if not sep:
        return False
    try:
        path = modpath.unescape_path(mod)
    except AirsyncError:
        return False
    return sumdb.matches_patterns(only, path)


def make_manifest(root: Path, sources: dict[str, SignedFile]) -> Manifest:
    """The manifest of ``sources`` (files of the tree at ``root``), with their go.sum lines."""
    # Imported here: the manifest brings ed25519 (cryptography), which a mirror job that only
    # records signatures need not load.
    from airsync.carry import manifest

    gosum_lines = []
    for sf in sources.values():
        mod = module_file(sf.rel)
        if mod is not None and sf.h1:
            mv, ext = mod
            gosum_lines.append(f"{mv.path} {mv.version}{'/go.mod' if ext == 'mod' else ''} {sf.h1}")
    return manifest.Manifest(
        created=manifest.utc_timestamp(),
        source=f"{socket.gethostname()}:{root.resolve()}",
        entries=tuple(manifest.Entry(sf.rel, sf.size, sf.sha256, sf.xxh3) for sf in sources.values()),
        gosum=tuple(gosum_lines),
    )


def tree_signatures(
    root: Path, cache: SignatureCache, only: str = "", scan: TreeScan | None = None
) -> dict[str, SignedFile]:
    """Signatures of every file of the tree at ``root`` that ``only`` selects, sorted by path
    (``scan``: the tree's ``tree_files``, if the caller has it already)."""
    if scan is None:
        scan = tree_files(root)
    return cache.get_many(root, {rel: st for rel, st in sorted(scan.files.items()) if selected(rel, only)})
