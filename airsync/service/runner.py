"""The supervisor: starts queued jobs, runs each one's work, and stops them in bounded time.

``Runner.run`` loops until the service stops: it starts the jobs ``jobs.JobQueue.startable``
allows (a mirror job writes the mirror and runs alone; syncs to different media share it and run
together), wakes at least every ``TICK`` to sample rates and beat the heartbeat that the watchdog
task reads, and forgets old finished jobs so memory stays bounded. Each job's work is a callable
given by the service (``work(job, live) -> (error, result)``); what only memory knows about a
running job (counters, rate, how to stop it) is its ``Live``.

Stopping (SIGTERM): no new jobs; mirror jobs are cancelled at once (resume-safe: spans are
recorded only once fsynced), syncs get ``stop_timeout`` seconds to reach their next progress
event, then their thread is abandoned (the process exits, the kernel drops its locks). Every job
not finished becomes ``interrupted``; its source queues it again at the next start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from airsync.config import DaemonConfig
from airsync.errors import AirsyncError, first_of
from airsync.service.jobs import Job, Kind, RateMeter, State
from airsync.service.ledger import Ledger

log = structlog.get_logger("airsync.daemon")

MAX_RUNNING = 4  # jobs at once; their claims decide which may overlap (syncs to different media)
TICK = 1.0  # the supervisor wakes at least this often (heartbeat, rates)
INTERRUPTED_USB = "the service stopped; the next start resumes it if the medium is still attached (else attach it again)"

Work = Callable[[Job, "Live"], Awaitable[tuple[str | None, dict]]]


class Stopped(Exception):
    """Raised by work running in a thread (from its progress callback) to stop between two steps."""


@dataclass
class Live:
    """What only memory knows about a running job: counters, rate, and how to stop it."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stop: threading.Event = field(default_factory=threading.Event)  # for work in a thread
    cancel_requested: bool = False
    stats: Any = None  # fetch.fetcher.Stats of a mirror job
    files_done: int = 0
    files_total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    meter: RateMeter = field(default_factory=RateMeter)

    def sample(self, now: float) -> None:
        s = self.stats
        if s is not None:
            self.files_done = s.files_done + s.files_skipped + s.files_failed
            self.files_total = s.files_total
            self.bytes_done = s.bytes_received
            self.bytes_total = s.bytes_expected - s.bytes_resumed if s.bytes_expected else None
        self.meter.add(now, self.bytes_done)

    def view(self) -> dict[str, Any]:
        remaining = None if self.bytes_total is None else self.bytes_total - self.bytes_done
        return {
            "files_done": self.files_done,
            "files_total": self.files_total,
            "bytes": self.bytes_done,
            "bytes_total": self.bytes_total,
            "rate": round(self.meter.rate, 1),
            "eta": self.meter.eta(remaining),
            "cancelling": self.cancel_requested,
        }


class Runner:
    """Runs the ledger's jobs with ``work``; ``finished(job, state, result)`` is told of each end."""

    def __init__(self, ledger: Ledger, config: Callable[[], DaemonConfig], work: Work,
                 finished: Callable[[Job, State, dict | None], None]) -> None:
        self.ledger = ledger
        self._config = config
        self._work = work
        self._finished = finished
        self.live: dict[int, Live] = {}
        self.heartbeat = 0.0
        self.stopping = False
        self._wake = trio.Event()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """No new jobs; ``run`` stops the running ones and returns."""
        self.stopping = True
        self.kick()

    async def run(self) -> None:
        self.heartbeat = trio.current_time()
        async with trio.open_nursery() as jobs:
            while not self.stopping:
                self.heartbeat = trio.current_time()
                for job in self.ledger.queue.startable(MAX_RUNNING):
                    self._start(jobs, job)
                with trio.move_on_after(TICK):
                    await self._wake.wait()
                self._wake = trio.Event()
                now = time.time()
                for live in self.live.values():
                    live.sample(now)
                self.ledger.queue.forget_old(self._config().history)  # bounded memory over months
            await self._stop_jobs()
        self.ledger.queue.forget_old(self._config().history)

    def _start(self, nursery: trio.Nursery, job: Job) -> None:
        live = Live()
        self.live[job.id] = live
        self.ledger.move(job.id, State.RUNNING, time.time())
        nursery.start_soon(self._run_job, job.id, live)

    async def _run_job(self, job_id: int, live: Live) -> None:
        job = self.ledger.queue.get(job_id)
        structlog.contextvars.bind_contextvars(job=job.id, kind=job.kind.value)
        log.info("job started", target=job.target, source=job.source)
        state, error, result = State.DONE, None, None
        with live.scope:
            try:
                error, result = await self._work(job, live)
                if error is not None:
                    state = State.FAILED
            except Stopped:
                pass
            except AirsyncError as e:
                state, error = State.FAILED, str(e)
            except Exception as e:  # noqa: BLE001 - one job's bug must not take the service down
                user = first_of(e, AirsyncError)
                if user is None:
                    log.exception("job crashed")
                state, error = State.FAILED, str(user) if user is not None else f"internal error: {e!r}"
        if live.cancel_requested or live.scope.cancelled_caught or live.stop.is_set():
            if self.stopping and not live.cancel_requested:
                state = State.INTERRUPTED
                error = INTERRUPTED_USB if job.kind is Kind.USB else "the service stopped; the next start resumes it"
            else:
                state, error = State.CANCELLED, "cancelled"
        if state is State.DONE:
            log.info("job done", **{k: v for k, v in (result or {}).items() if not isinstance(v, list)})
        elif state is State.FAILED:
            log.error("job failed", error=error)
        else:
            log.info(f"job {state.value}", error=error)
        self.ledger.move(job.id, state, time.time(), error=error, result=result)
        self._finished(job, state, result)
        del self.live[job.id]
        self.kick()

    async def _stop_jobs(self) -> None:
        """SIGTERM: stop running jobs in bounded time; queued ones become interrupted."""
        now = time.time()
        for job in self.ledger.queue.queued():
            self.ledger.move(job.id, State.INTERRUPTED, now, error="the service stopped before it started")
        for job_id, live in list(self.live.items()):
            live.stop.set()
            if self.ledger.queue.get(job_id).kind is Kind.MIRROR:
                live.scope.cancel()  # resume-safe: only fsynced spans were recorded
        with trio.move_on_after(self._config().stop_timeout):
            while self.live:
                await trio.sleep(0.05)
        for live in self.live.values():
            live.scope.cancel()  # a sync still inside one file: abandon its thread
        with trio.move_on_after(5):
            while self.live:
                await trio.sleep(0.05)

    def cancel(self, job_id: int) -> Job:
        """Cancel a job: a queued one at once, a running one at its next safe point."""
        job = self.ledger.cancel(job_id)
        if job.state is State.CANCELLED:
            log.info("job cancelled", job=job_id)
        else:
            live = self.live[job_id]
            live.cancel_requested = True
            live.stop.set()
            if job.kind is Kind.MIRROR:
                live.scope.cancel()
            log.info("job cancelling", job=job_id)
        return job
