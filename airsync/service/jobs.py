"""Jobs of the service: records, states, allowed transitions, and the queue that decides what runs.

No I/O here (``runner`` runs jobs, ``ledger`` keeps them in ``jobdb``). A job is a frozen record;
it changes state only along ``TRANSITIONS``, each change making a new record::

    queued ──> running ──> done | failed | cancelled | interrupted
       └─────> cancelled | interrupted

``interrupted`` means the service stopped (SIGTERM, a crash) while the job was queued or
running; the work itself is resume-safe, and its source queues it again at the next start.

The queue deduplicates: submitting work whose key (its source, e.g. a request file or a
medium) is already queued returns the queued job instead of a second one; a medium being
synced right now is not queued twice either. ``startable`` picks, in submission order, the
queued jobs that may start: at most ``max_running`` at once, and never two whose claims
conflict. A claim names a resource; ``shared:`` before the name makes it a reader's claim,
which conflicts only with the writer's (a mirror job writes the mirror, syncs to different
media only read it, so they run side by side). A job that must wait keeps its claims
reserved, so later jobs cannot overtake it forever.

Rates and ETAs of running jobs come from ``RateMeter``, fed with byte counters the job keeps
in memory; only transitions are persisted.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airsync.errors import AirsyncError


class Kind(str, enum.Enum):
    MIRROR = "mirror"  # fetch module versions into the mirror
    USB = "usb"  # sync the mirror to a medium
    BUNDLE = "bundle"  # write a bundle of the mirror (carry.bundlewrite)


class State(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return not TRANSITIONS[self]


TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.INTERRUPTED}),
    State.RUNNING: frozenset({State.DONE, State.FAILED, State.CANCELLED, State.INTERRUPTED}),
    State.DONE: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.INTERRUPTED: frozenset(),
}


class JobError(AirsyncError):
    """A request about a job that cannot be honoured (unknown id, already finished)."""


@dataclass(frozen=True)
class Job:
    id: int
    kind: Kind
    target: str  # the mirror directory, or the medium's mount point
    source: str  # what asked for it: "config", "refresh", "request:go.sum", "usb-attach"
    key: str  # deduplication key: equal keys are the same work
    claims: frozenset[str]  # resources held while running; jobs sharing one never overlap
    created: float
    label: str = ""
    state: State = State.QUEUED
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)  # e.g. the mirror summary's counts and lists

    def to(self, state: State, now: float, error: str | None = None, result: Mapping[str, Any] | None = None) -> Job:
        """This job moved to ``state``; raises JobError for a move the table does not allow."""
        if state not in TRANSITIONS[self.state]:
            raise JobError(f"job {self.id} is {self.state.value}; it cannot become {state.value}")
        changes: dict[str, Any] = {"state": state}
        if state is State.RUNNING:
            changes["started"] = now
        elif state.terminal:
            changes["finished"] = now
        if error is not None:
            changes["error"] = error
        if result is not None:
            changes["result"] = dict(result)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(kind=self.kind.value, state=self.state.value, claims=sorted(self.claims), result=dict(self.result))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Job:
        return cls(**{**d, "kind": Kind(d["kind"]), "state": State(d["state"]), "claims": frozenset(d["claims"])})


MIRROR_CLAIM = "mirror"
SHARED = "shared:"


def mirror_claims() -> frozenset[str]:
    return frozenset({MIRROR_CLAIM})


def usb_claims(medium_id: str) -> frozenset[str]:
    # A sync reads the mirror (under its shared lock) and writes the medium: one sync per medium.
    # The medium is named by its marker's id, not a path: two paths (a symlink, a bind mount,
    # "/m/a/../a") can lead to the same stick.
    return frozenset({SHARED + MIRROR_CLAIM, f"medium:{medium_id}"})


def bundle_claims() -> frozenset[str]:
    # Reads the mirror like a sync; one bundle job at a time writes the bundle directory.
    return frozenset({SHARED + MIRROR_CLAIM, "bundle-dir"})


def conflicts(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> bool:
    """Do two sets of claims exclude each other (a writer's claim meets any claim of its name)?"""
    for claim in a:
        name = claim.removeprefix(SHARED)
        if claim == name and (name in b or SHARED + name in b):
            return True
        if claim != name and name in b:
            return True
    return False


class JobQueue:
    """Every job the service knows, by id; decides what may start and what a cancel means."""

    def __init__(self, jobs: Iterable[Job] = (), next_id: int = 1) -> None:
        self.jobs: dict[int, Job] = {j.id: j for j in jobs}
        self.next_id = max([next_id, *(j.id + 1 for j in self.jobs.values())])

    def submit(
        self, kind: Kind, target: str, source: str, key: str, claims: frozenset[str], now: float, label: str = ""
    ) -> tuple[Job, bool]:
        """Queue work; returns (job, True) for a new job, (existing job, False) for a duplicate."""
        for job in self.jobs.values():
            if job.key == key and (job.state is State.QUEUED or (job.state is State.RUNNING and kind is Kind.USB)):
                return job, False
        job = Job(self.next_id, kind, target, source, key, claims, now, label=label)
        self.next_id += 1
        self.jobs[job.id] = job
        return job, True

    def get(self, job_id: int) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobError(f"no job {job_id}") from None

    def move(self, job_id: int, state: State, now: float, error: str | None = None,
             result: Mapping[str, Any] | None = None) -> Job:
        job = self.get(job_id).to(state, now, error, result)
        self.jobs[job_id] = job
        return job

    def startable(self, max_running: int) -> list[Job]:
        """Queued jobs that may start now, oldest first (the caller moves them to running)."""
        running = [j for j in self.jobs.values() if j.state is State.RUNNING]
        held: set[str] = set().union(*(j.claims for j in running))
        free = max_running - len(running)
        picked: list[Job] = []
        for job in self.queued():
            if free <= 0:
                break
            if conflicts(job.claims, held):
                held |= job.claims  # reserved for this job: nothing younger overtakes it
                continue
            picked.append(job)
            held |= job.claims
            free -= 1
        return picked

    def cancel(self, job_id: int, now: float) -> Job:
        """Cancel a queued job at once; a running one is returned as is, for the caller to stop
        (it becomes cancelled when it has stopped). A finished job is a JobError."""
        job = self.get(job_id)
        if job.state is State.QUEUED:
            return self.move(job_id, State.CANCELLED, now, error="cancelled before it started")
        if job.state is State.RUNNING:
            return job
        raise JobError(f"job {job_id} already {job.state.value}")

    def queued(self) -> list[Job]:
        return sorted((j for j in self.jobs.values() if j.state is State.QUEUED), key=lambda j: j.id)

    def running(self) -> list[Job]:
        return sorted((j for j in self.jobs.values() if j.state is State.RUNNING), key=lambda j: j.id)

    def listing(self, history: int) -> list[Job]:
        """Active jobs, then the ``history`` most recently finished ones; newest first."""
        active = [j for j in self.jobs.values() if not j.state.terminal]
        done = sorted((j for j in self.jobs.values() if j.state.terminal), key=lambda j: (j.finished or 0, j.id))
        return sorted(active, key=lambda j: -j.id) + list(reversed(done[-history:]))

    def forget_old(self, history: int) -> None:
        """Keep memory bounded: drop finished jobs beyond the newest ``history``."""
        done = sorted((j for j in self.jobs.values() if j.state.terminal), key=lambda j: (j.finished or 0, j.id))
        for job in done[: max(0, len(done) - history)]:
            del self.jobs[job.id]


@dataclass
class RateMeter:
    """Bytes per second over a sliding window of samples, and the ETA it implies."""

    window: float = 10.0
    samples: list[tuple[float, int]] = field(default_factory=list)

    def add(self, now: float, total_bytes: int) -> None:
        self.samples.append((now, total_bytes))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.pop(0)

    @property
    def rate(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, remaining: int | None) -> float | None:
        """Seconds left for ``remaining`` bytes at the current rate (None when unknown)."""
        rate = self.rate
        if remaining is None or rate <= 0:
            return None
        return max(0, remaining) / rate


def json_safe(value: Any) -> Any:
    """``value`` (dicts, lists, strings, numbers) made fit for strict JSON in UTF-8.

    A file name that is not UTF-8 reaches Python as lone surrogates ("bad\\udcff.sum"), which
    cannot be encoded: they are shown as backslash escapes instead. A float that is not finite
    (JSON has no inf) becomes None.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return "".join(_escape_surrogate(c) for c in value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _escape_surrogate(c: str) -> str:
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:
        return f"\\x{o - 0xDC00:02x}"  # an undecodable byte, as os.fsdecode smuggled it in
    if 0xD800 <= o <= 0xDFFF:
        return f"\\u{o:04x}"
    return c
