"""The service's book of jobs: the queue in memory and every transition on disk.

``Ledger`` owns the job database (``jobdb``) and the ``jobs.JobQueue`` loaded from it, and is the
one place jobs change: ``submit`` and ``move`` go through the queue's rules and save the new
record at once. A database that cannot be written is not fatal (the work itself is on disk),
but it is the service's ``problem``: status shows it and the watchdog is no longer pinged.

One service per state: ``<state_db>.lock`` is held (flock) from before the job database is
opened until the ledger is closed, so a second ``airsync run`` with the same config leaves the
first one's jobs alone. Jobs that a crash left queued or running are marked interrupted on open;
their sources queue them again.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import structlog

from airsync.errors import AirsyncError, ConfigError
from airsync.service.jobdb import JobDB
from airsync.service.jobs import Job, JobQueue, Kind, State

log = structlog.get_logger("airsync.daemon")


class Ledger:
    def __init__(self, state_db: Path, history: int) -> None:
        self._lock = _lock_state(state_db)
        try:
            self.db = JobDB(state_db)
        except BaseException:
            os.close(self._lock)
            raise
        loaded, next_id = self.db.load(history)
        self.queue = JobQueue(loaded, next_id)
        self.problem: str | None = None  # why the job database is unhealthy
        now = time.time()
        for job in list(self.queue.jobs.values()):
            if not job.state.terminal:  # cut off by a crash (kill -9, power): it did not finish
                self.move(job.id, State.INTERRUPTED, now, error="the service stopped before it finished")

    def close(self) -> None:
        """Close the job database, then let the next service start."""
        self.db.close()
        os.close(self._lock)

    def submit(self, kind: Kind, target: str, source: str, key: str, claims: frozenset[str],
               label: str = "") -> tuple[Job, bool]:
        job, new = self.queue.submit(kind, target, source, key, claims, time.time(), label=label)
        if new:
            self.save(job, job.created)
        return job, new

    def move(self, job_id: int, state: State, now: float, error: str | None = None,
             result: dict | None = None) -> Job:
        job = self.queue.move(job_id, state, now, error=error, result=result)
        self.save(job, now)
        return job

    def cancel(self, job_id: int) -> Job:
        """Cancel a queued job at once (saved); a running one is only marked for the runner."""
        job = self.queue.cancel(job_id, time.time())
        if job.state is State.CANCELLED:
            self.save(job, job.finished or time.time())
        return job

    def save(self, job: Job, at: float) -> None:
        try:
            self.db.save(job, at)
            if self.problem and self.problem.startswith("job database"):
                self.problem = None
        except AirsyncError as e:
            # The service goes on (the work is on disk), but systemd should hear about it.
            self.problem = f"job database: {e}"
            log.error("cannot persist job", error=str(e))


def _lock_state(db: Path) -> int:
    """An exclusive lock beside the job database: one service per state. The kernel drops it
    when the process ends, however it ends (a kill -9 leaves no stale lock)."""
    path = db.with_name(db.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the state lock: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(f"{db}: another airsync daemon uses this state database "
                          "(see: systemctl status airsync)") from None
    return fd
