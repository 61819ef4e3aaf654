"""service.ledger: the jobs in memory and on disk, one service per state database."""

from __future__ import annotations

import os

import pytest

from airsync.errors import ConfigError
from airsync.service.jobdb import JobDB
from airsync.service.jobs import Job, Kind, State, mirror_claims
from airsync.service.ledger import Ledger


def test_every_change_is_saved_and_a_crash_leaves_jobs_interrupted(tmp_path):
    db = tmp_path / "daemon.db"
    ledger = Ledger(db, history=10)
    job, new = ledger.submit(Kind.MIRROR, "/m", "config", "config", mirror_claims())
    again, new_again = ledger.submit(Kind.MIRROR, "/m", "refresh", "config", mirror_claims())
    assert new and not new_again and again.id == job.id
    ledger.move(job.id, State.RUNNING, 2.0)
    ledger.db.close()  # as a kill -9 would leave it: running, the lock released by the kernel
    os.close(ledger._lock)

    reopened = Ledger(db, history=10)
    (back,) = reopened.queue.jobs.values()
    assert back.state is State.INTERRUPTED and "stopped before it finished" in back.error
    reopened.close()
    stored = JobDB(db)
    assert stored.load(10)[0][0].state is State.INTERRUPTED
    stored.close()


def test_a_second_ledger_on_the_same_state_is_refused_until_the_first_closes(tmp_path):
    first = Ledger(tmp_path / "daemon.db", history=10)
    with pytest.raises(ConfigError, match="another airsync daemon uses this state database"):
        Ledger(tmp_path / "daemon.db", history=10)
    first.close()
    Ledger(tmp_path / "daemon.db", history=10).close()


def test_cancel_saves_a_queued_job_and_leaves_a_running_one_to_the_runner(tmp_path):
    ledger = Ledger(tmp_path / "daemon.db", history=10)
    queued, _ = ledger.submit(Kind.USB, "/media/a", "usb-attach", "usb:a", frozenset({"usb:a"}))
    running, _ = ledger.submit(Kind.MIRROR, "/m", "config", "config", mirror_claims())
    ledger.move(running.id, State.RUNNING, 1.0)
    assert ledger.cancel(queued.id).state is State.CANCELLED
    assert ledger.cancel(running.id).state is State.RUNNING
    ledger.close()
    stored = JobDB(tmp_path / "daemon.db")
    states = {j.id: j.state for j in stored.load(10)[0]}
    stored.close()
    assert states == {queued.id: State.CANCELLED, running.id: State.RUNNING}


def test_a_database_that_cannot_be_written_is_the_services_problem_not_a_crash(tmp_path, monkeypatch):
    from airsync.service.jobdb import JobDBError

    ledger = Ledger(tmp_path / "daemon.db", history=10)

    def broken(job: Job, at: float) -> None:
        raise JobDBError("disk full")

    monkeypatch.setattr(ledger.db, "save", broken)
    job, new = ledger.submit(Kind.MIRROR, "/m", "config", "config", mirror_claims())
    assert new and ledger.problem == "job database: disk full"
    monkeypatch.undo()
    ledger.move(job.id, State.RUNNING, 1.0)
    assert ledger.problem is None  # healthy again once a save succeeds
    ledger.close()
