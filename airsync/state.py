"""The mirror's state database: resume records and what has been published.

A SQLite file at ``MIRROR/.airsync/state.db`` (WAL mode) remembers, for every file being
downloaded, where it comes from (URL and the If-Range validator), its size once known, and
the byte spans already on disk with an xxh3-64 hash of each span. A span is recorded only
after the bytes it covers were fsynced, so after a kill -9 every recorded span is either
intact or detectably torn (its hash no longer matches) and a rerun fetches only the rest.
Between those checkpoints (an fsync can take long enough for megabytes to arrive) the
downloader also notes how far each span was *written* (table ``written``, same shape): a note
is never trusted, only a hint a rerun checks by its hash against the file. After a kill -9 the
bytes are in the page cache and the note holds, so a rerun refetches at most what arrived
since the last note; after a power cut the hash fails and the durable span is used instead.
It also records which published module versions are not pinned by any go.sum line, so a
later checksum-database pass (and ``status``) can say what nothing vouched for, and for each
checksum database the newest tree head seen (fork checks) and every head the mirror has carried
(a go command inside may remember any of them, so every later carry must prove them consistent
with its own head), plus heads reported from inside that wait to be proved (``--prove-heads``).

WAL with ``synchronous=NORMAL`` survives a killed process without losing committed rows;
a power cut may lose the newest commits, which only costs refetching those spans.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from airsync.errors import AirsyncError


class StateError(AirsyncError):
    """The state database cannot be used."""


@contextmanager
def _disk_errors(path: object) -> Iterator[None]:
    """SQLite's "disk full" and "disk I/O error" are the mirror disk failing: report them as
    the OSError they are, so the job stops as for any other write to that disk."""
    try:
        yield
    except sqlite3.OperationalError as e:
        code = getattr(e, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
        if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
            raise OSError(errno.EIO, "Input/output error", str(path)) from None
        raise StateError(f"{path}: {e}") from None

SCHEMA = """
CREATE TABLE IF NOT EXISTS downloads (
    relpath   TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    validator TEXT,
    size      INTEGER,
    started   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS spans (
    relpath TEXT NOT NULL,
    start   INTEGER NOT NULL,
    end     INTEGER NOT NULL,
    xxh3    TEXT NOT NULL,
    PRIMARY KEY (relpath, start)
);
CREATE TABLE IF NOT EXISTS written (
    relpath TEXT NOT NULL,
    start   INTEGER NOT NULL,
    end     INTEGER NOT NULL,
    xxh3    TEXT NOT NULL,
    PRIMARY KEY (relpath, start)
);
CREATE TABLE IF NOT EXISTS sumdb (
    name   TEXT PRIMARY KEY,
    latest BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sumdb_heads (
    name   TEXT NOT NULL,
    size   INTEGER NOT NULL,
    note   BLOB NOT NULL,
    status TEXT NOT NULL,  -- 'carried': in the mirror once; 'pending': to be proved by the next job
    since  REAL NOT NULL,
    PRIMARY KEY (name, size)
);
CREATE TABLE IF NOT EXISTS unpinned (
    module  TEXT NOT NULL,
    version TEXT NOT NULL,
    since   REAL NOT NULL,
    PRIMARY KEY (module, version)
);
"""


@dataclass(frozen=True)
class Download:
    """Resume record of one file in flight."""

    relpath: str
    url: str
    validator: str | None
    size: int | None


@dataclass(frozen=True)
class SpanRecord:
    """Bytes ``[start, end)`` of a file in flight, on disk and fsynced, and their xxh3-64 hash."""

    start: int
    end: int
    xxh3: str


class StateDB:
    """Thin synchronous wrapper; every write is one short transaction.

    The download records are also kept in memory (loaded once), because most files never get
    one (they arrive whole in one response) and asking SQLite about each of them is the
    costliest part of mirroring thousands of small files.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(SCHEMA)
            self._downloads = {
                row[0]: Download(*row)
                for row in self._db.execute("SELECT relpath, url, validator, size FROM downloads")
            }
        except sqlite3.DatabaseError as e:
            # Only resume records live here: the published tree does not depend on it.
            raise StateError(
                f"{path}: the resume state cannot be read ({e}); move it aside to start over "
                "(published files stay; downloads in progress start again)"
            ) from None

    def close(self) -> None:
        self._db.close()

    # downloads -------------------------------------------------------------------------

    def download(self, relpath: str) -> Download | None:
        return self._downloads.get(relpath)

    def start_download(self, relpath: str, url: str, validator: str | None, size: int | None) -> None:
        """(Re)start a download: any spans recorded for an older start are forgotten."""
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM spans WHERE relpath = ?", (relpath,))
            self._db.execute("DELETE FROM written WHERE relpath = ?", (relpath,))
            self._db.execute(
                "INSERT OR REPLACE INTO downloads (relpath, url, validator, size, started)"
                " VALUES (?, ?, ?, ?, ?)",
                (relpath, url, validator, size, time.time()),
            )
        self._downloads[relpath] = Download(relpath, url, validator, size)

    def resumable(self) -> set[str]:
        return set(self._downloads)

    def spans(self, relpath: str) -> list[SpanRecord]:
        rows = self._db.execute(
            "SELECT start, end, xxh3 FROM spans WHERE relpath = ? ORDER BY start", (relpath,)
        ).fetchall()
        return [SpanRecord(s, e, h) for s, e, h in rows]

    def record_spans(self, relpath: str, records: list[SpanRecord]) -> None:
        """Record spans whose bytes are already fsynced (a span keyed by its start grows)."""
        if not records:
            return
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO spans (relpath, start, end, xxh3) VALUES (?, ?, ?, ?)",
                [(relpath, r.start, r.end, r.xxh3) for r in records],
            )

    def written(self, relpath: str) -> list[SpanRecord]:
        """The write notes of ``relpath`` (hints, to be checked against the file)."""
        rows = self._db.execute(
            "SELECT start, end, xxh3 FROM written WHERE relpath = ? ORDER BY start", (relpath,)
        ).fetchall()
        return [SpanRecord(s, e, h) for s, e, h in rows]

    def note_written(self, relpath: str, records: list[SpanRecord]) -> None:
        """Note how far spans were written, not yet fsynced (see the module docstring)."""
        if not records:
            return
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO written (relpath, start, end, xxh3) VALUES (?, ?, ?, ?)",
                [(relpath, r.start, r.end, r.xxh3) for r in records],
            )

    def forget_spans(self, relpath: str, starts: list[int]) -> None:
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "DELETE FROM spans WHERE relpath = ? AND start = ?", [(relpath, s) for s in starts]
            )

    def forget_written(self, relpath: str) -> None:
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM written WHERE relpath = ?", (relpath,))

    def finish_download(self, relpath: str) -> None:
        if self._downloads.pop(relpath, None) is None:
            return  # never recorded, so there are no spans either
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM spans WHERE relpath = ?", (relpath,))
            self._db.execute("DELETE FROM written WHERE relpath = ?", (relpath,))
            self._db.execute("DELETE FROM downloads WHERE relpath = ?", (relpath,))

    # pinning ---------------------------------------------------------------------------

    def mark_unpinned(self, versions: list[tuple[str, str]]) -> None:
        """Record (module, version) pairs that no go.sum line pins, in one transaction."""
        now = time.time()
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO unpinned (module, version, since) VALUES (?, ?, ?)",
                [(m, v, now) for m, v in versions],
            )

    # checksum database ---------------------------------------------------------------------

    def sumdb_latest(self, name: str) -> bytes | None:
        """The signed note of the newest tree seen from database ``name`` (fork checks)."""
        row = self._db.execute("SELECT latest FROM sumdb WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_sumdb_latest(self, name: str, signed_note: bytes) -> None:
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR REPLACE INTO sumdb (name, latest) VALUES (?, ?)", (name, signed_note))

    def sumdb_heads(self, name: str, status: str = "carried") -> list[bytes]:
        """The signed notes of the heads of database ``name`` with ``status``, smallest tree first."""
        rows = self._db.execute(
            "SELECT note FROM sumdb_heads WHERE name = ? AND status = ? ORDER BY size", (name, status)
        ).fetchall()
        return [r[0] for r in rows]

    def add_sumdb_heads(self, name: str, heads: list[tuple[int, bytes]], status: str = "carried") -> None:
        """Record (tree size, signed note) heads; a carried head is never turned back to pending."""
        now = time.time()
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            if status == "carried":
                self._db.executemany(
                    "INSERT OR REPLACE INTO sumdb_heads (name, size, note, status, since) VALUES (?, ?, ?, ?, ?)",
                    [(name, n, msg, status, now) for n, msg in heads],
                )
            else:
                self._db.executemany(
                    "INSERT OR IGNORE INTO sumdb_heads (name, size, note, status, since) VALUES (?, ?, ?, ?, ?)",
                    [(name, n, msg, status, now) for n, msg in heads],
                )

    def forget_unpinned(self, versions: list[tuple[str, str]]) -> None:
        """Versions something now vouches for (the checksum database) are pinned after all."""
        with _disk_errors(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM unpinned WHERE module = ? AND version = ?", versions)

    def unpinned(self) -> list[tuple[str, str]]:
        return self._db.execute("SELECT module, version FROM unpinned ORDER BY 1, 2").fetchall()
