"""The service's job history on disk: every job transition, in a SQLite file.

``jobs`` holds each job's latest record (as JSON of ``Job.as_dict``), ``transitions`` one row
per state change (job, state, time, error), so a restarted service knows what ran, what
failed and why, and which jobs it was cut off in the middle of. Byte counters and rates are
not here: they change many times a second and only matter while a job runs (the supervisor
keeps them in memory). WAL mode, one short transaction per change, like ``state``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from airsync.errors import AirsyncError
from airsync.service.jobs import Job, json_safe

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id     INTEGER PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    job   INTEGER NOT NULL,
    state TEXT NOT NULL,
    at    REAL NOT NULL,
    error TEXT
);
"""


class JobDBError(AirsyncError):
    """The job database cannot be used."""


class JobDB:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.DatabaseError) as e:
            raise JobDBError(f"{path}: the job database cannot be used ({e})") from None

    def close(self) -> None:
        self._db.close()

    def save(self, job: Job, at: float) -> None:
        """Record ``job`` as it is now, and its move into its current state."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?)", (job.id, json.dumps(job.as_dict())))
                # An error naming a file that is not UTF-8 is text SQLite cannot take as it is.
                self._db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?)",
                                 (job.id, job.state.value, at, json_safe(job.error)))
        except sqlite3.DatabaseError as e:
            raise JobDBError(f"{self.path}: cannot record job {job.id}: {e}") from None

    def load(self, limit: int) -> tuple[list[Job], int]:
        """The newest ``limit`` jobs, and the next free id (ids are never reused)."""
        rows = self._db.execute("SELECT record FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        top = self._db.execute("SELECT MAX(id) FROM jobs").fetchone()[0] or 0
        return [Job.from_dict(json.loads(r[0])) for r in rows], top + 1

    def transitions(self, job_id: int) -> list[tuple[str, float, str | None]]:
        return self._db.execute(
            "SELECT state, at, error FROM transitions WHERE job = ? ORDER BY rowid", (job_id,)
        ).fetchall()
