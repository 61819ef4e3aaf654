"""``airsync run``: the service. One trio process that keeps the mirror up to date and fills media.

Theory of operation. ``Daemon.serve`` opens the control socket (``control``), tells systemd
READY=1, and then runs, side by side:

- the **supervisor** loop: starts queued jobs as ``jobs.JobQueue.startable`` allows (a mirror
  job writes the mirror and runs alone; syncs to different media share it and run together),
  persists every transition (``jobdb``), and beats a heartbeat; the **watchdog** task pings systemd only while that
  heartbeat is fresh and the job database writable;
- the **requests watcher**: ``watchfiles.awatch`` on the requests directory; a file is read only
  once ``inbox.Settler`` saw it unchanged for the debounce time (``*.tmp`` and dot-files never);
- the **refresh** task: every ``refresh_interval`` the config's lists, and any request file not
  yet mirrored, are queued again (``airsync sync-now`` does the same at once);
- the **signal** task: SIGHUP reloads the config (a broken file is logged and the old config
  kept; running jobs keep the settings they started with), SIGTERM/SIGINT stop the service.

Jobs. A mirror job reads its inputs the way ``airsync mirror`` does (``mirror.inputs.read_inputs``) and runs
``mirror.MirrorJob`` in this process; cancelling it is resume-safe (spans are recorded only once
fsynced). A request file whose job finished is moved to ``.done/`` (or ``.failed/`` when its
lines are bad); one that failed for upstream reasons stays and is retried at the next refresh.
A USB job checks the medium's marker, then runs ``sync.sync`` in a worker thread; its progress
events count files and bytes, and it is stopped by raising from that callback, at most one
1 MiB read later (the medium is left visibly incomplete, and the next attach resumes: whole
files stay, the file in flight keeps its intact prefix).

Stopping (SIGTERM): STOPPING=1, no new jobs; mirror jobs are cancelled at once, syncs get
``stop_timeout`` seconds to reach their next progress event, then their thread is abandoned
(the process exits, the kernel drops its locks). Every job not finished becomes ``interrupted``; its source
queues it again at the next start (a sync: if the medium with the same marker id is still mounted
there), and the work resumes where it stopped.

One service per state: ``<state_db>.lock`` is held (flock) from before the job database is
opened until the service ends, so a second ``airsync run`` with the same config leaves the
first one's jobs alone. Request files are read off the event loop, only when regular files of
at most ``MAX_REQUEST`` bytes; any other entry (a FIFO, a symlink, a directory) is moved to
``.failed/`` unopened, with a warning; a name that is not UTF-8 is left alone (and logged once).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import trio

from airsync import __version__, config
from airsync.service import inbox, jobs, marker, sdnotify
from airsync.config import DaemonConfig
from airsync.errors import AirsyncError, ConfigError, first_of
from airsync.service.jobdb import JobDB
from airsync.carry.medium import overlap
from airsync.service.jobs import Job, JobQueue, Kind, RateMeter, State, json_safe

log = structlog.get_logger("airsync.daemon")

MAX_RUNNING = 4  # jobs at once; their claims decide which may overlap (syncs to different media)
TICK = 1.0  # the supervisor wakes at least this often (heartbeat, rates)
RESCAN = 2.0  # seconds between listings of the requests directory (besides its events)
DONE_DIR, FAILED_DIR = ".done", ".failed"
MAX_REQUEST = 16 << 20  # bytes: a request file larger than this is refused (it would be a mistake)
MAX_PROBLEMS = 20  # entries of a list kept in a job's record (problems, failures...); the rest counted
INTERRUPTED_USB = "the service stopped; the next start resumes it if the medium is still attached (else attach it again)"


class RequestFileError(AirsyncError):
    """A request file that cannot be read as one (not a regular file, too large, unreadable)."""


class _StopSync(Exception):
    """Raised inside a sync's progress callback to stop it between two files."""


@dataclass
class Live:
    """What only memory knows about a running job: counters, rate, and how to stop it."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stop: threading.Event = field(default_factory=threading.Event)  # for work in a thread
    cancel_requested: bool = False
    stats: Any = None  # fetch.Stats of a mirror job
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


class Daemon:
    def __init__(self, conf: DaemonConfig, notifier: sdnotify.Notifier | None = None) -> None:
        self.conf = conf
        self.notifier = notifier or sdnotify.Notifier()
        # Another service with this config must be noticed before the jobs in the shared
        # database are touched: below, jobs left running are marked interrupted.
        from airsync.service import control

        control.refuse_if_in_use(conf.control_socket)
        self._lock = _lock_state(conf.state_db)
        try:
            self.db = JobDB(conf.state_db)
        except BaseException:
            os.close(self._lock)
            raise
        loaded, next_id = self.db.load(conf.history)
        self.queue = JobQueue(loaded, next_id)
        now = time.time()
        self.live: dict[int, Live] = {}
        self.started = now
        self.heartbeat = 0.0
        self.problem: str | None = None  # why the supervisor is unhealthy (no watchdog pings)
        self.reloads = 0
        self.reload_error: str | None = None
        self.next_refresh: float | None = None
        self.stopping = False
        self._wake = trio.Event()
        self._stopped = trio.Event()
        self._scopes: dict[str, trio.CancelScope] = {}
        self._watch_stop: trio.Event | None = None
        self._request_stat: dict[int, tuple[str, tuple[int, int]]] = {}  # job -> file it read
        self._settler: inbox.Settler | None = None  # the requests watcher's, while it runs
        self._unreadable_names: set[str] = set()  # request file names already logged as not UTF-8
        for job in list(self.queue.jobs.values()):
            if not job.state.terminal:  # cut off by a crash (kill -9, power): it did not finish
                self._move(job.id, State.INTERRUPTED, now, error="the service stopped before it finished")

    # -- the service ---------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.heartbeat = trio.current_time()
        try:
            await self._serve(task_status)
        finally:
            self.db.close()
            os.close(self._lock)  # the next service may start
        log.info("stopped")

    async def _serve(self, task_status) -> None:
        from airsync.service import control

        try:  # there before READY=1, so a request can be dropped as soon as systemd says started
            self.conf.requests_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{self.conf.requests_dir}: cannot create the requests directory: {e.strerror}") from None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(control.serve, self, self.conf.control_socket, self._stopped)
            log.info("listening", socket=str(self.conf.control_socket), mirror=str(self.conf.mirror_dir),
                     requests=str(self.conf.requests_dir), pid=os.getpid())
            self._warn_config()
            self.notifier.notify(READY=1, STATUS=self.status_line(), MAINPID=os.getpid())
            task_status.started()
            nursery.start_soon(self._signals)
            nursery.start_soon(self._watchdog)
            nursery.start_soon(self._status_updates)
            self._restart("watch", self._watch_requests, self.conf.requests_dir)
            self._restart("refresh", self._refresh_loop)
            if self.conf.has_sources:
                self.submit_mirror("config", "config")
            nursery.start_soon(self._resume_media)
            async with trio.open_nursery() as jobs_nursery:
                self._jobs = jobs_nursery
                await self._supervise()
                await self._stop_jobs()
            self._finish()
            self._stopped.set()  # the control server closes its socket
            nursery.cancel_scope.cancel()

    def stop(self) -> None:
        """Begin stopping: no new jobs; running ones are stopped by ``_stop_jobs``."""
        if not self.stopping:
            self.stopping = True
            self.notifier.notify(STOPPING=1, STATUS="stopping")
            log.info("stopping")
            if self._watch_stop is not None:
                self._watch_stop.set()  # awatch's thread returns within one step
            self._kick()

    def _kick(self) -> None:
        self._wake.set()

    def _restart(self, name: str, fn, *args) -> None:
        """(Re)start a background task of the service under a cancel scope of its own."""
        old = self._scopes.pop(name, None)
        if old is not None:
            old.cancel()

        async def run() -> None:
            with trio.CancelScope() as scope:
                self._scopes[name] = scope
                await fn(*args)

        self._nursery.start_soon(run)

    async def _supervise(self) -> None:
        while not self.stopping:
            self.heartbeat = trio.current_time()
            for job in self.queue.startable(MAX_RUNNING):
                self._start(job)
            with trio.move_on_after(TICK):
                await self._wake.wait()
            self._wake = trio.Event()
            now = time.time()
            for live in self.live.values():
                live.sample(now)
            self.queue.forget_old(self.conf.history)  # memory stays bounded in a service that runs for months

    def _start(self, job: Job) -> None:
        live = Live()
        self.live[job.id] = live
        self._move(job.id, State.RUNNING, time.time())
        self._jobs.start_soon(self._run_job, job.id, live)

    async def _run_job(self, job_id: int, live: Live) -> None:
        job = self.queue.get(job_id)
        structlog.contextvars.bind_contextvars(job=job.id, kind=job.kind.value)
        log.info("job started", target=job.target, source=job.source)
        state, error, result = State.DONE, None, None
        with live.scope:
            try:
                if job.kind is Kind.MIRROR:
                    error, result = await self._mirror_job(job, live)
                else:
                    error, result = await self._usb_job(job, live)
                if error is not None:
                    state = State.FAILED
            except _StopSync:
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
        self._move(job.id, state, time.time(), error=error, result=result)
        self._after(job, state, result)
        del self.live[job.id]
        self._kick()

    async def _stop_jobs(self) -> None:
        """SIGTERM: stop running jobs in bounded time; queued ones become interrupted."""
        now = time.time()
        for job in self.queue.queued():
            self._move(job.id, State.INTERRUPTED, now, error="the service stopped before it started")
        for job_id, live in list(self.live.items()):
            live.stop.set()
            if self.queue.get(job_id).kind is Kind.MIRROR:
                live.scope.cancel()  # resume-safe: only fsynced spans were recorded
        with trio.move_on_after(self.conf.stop_timeout):
            while self.live:
                await trio.sleep(0.05)
        for live in self.live.values():
            live.scope.cancel()  # a sync still inside one file: abandon its thread
        with trio.move_on_after(5):
            while self.live:
                await trio.sleep(0.05)

    def _finish(self) -> None:
        self.queue.forget_old(self.conf.history)

    def _move(self, job_id: int, state: State, now: float, error: str | None = None,
              result: dict | None = None) -> Job:
        job = self.queue.move(job_id, state, now, error=error, result=result)
        self._save(job, now)
        return job

    def _save(self, job: Job, at: float) -> None:
        try:
            self.db.save(job, at)
            if self.problem and self.problem.startswith("job database"):
                self.problem = None
        except AirsyncError as e:
            # The service goes on (the work is on disk), but systemd should hear about it.
            self.problem = f"job database: {e}"
            log.error("cannot persist job", error=str(e))

    # -- sources of work -----------------------------------------------------------------

    def submit_mirror(self, source: str, key: str, label: str = "") -> tuple[Job, bool]:
        job, new = self.queue.submit(Kind.MIRROR, str(self.conf.mirror_dir), source, key,
                                     jobs.mirror_claims(), time.time(), label=label)
        if new:
            self._save(job, job.created)
            log.info("job queued", job=job.id, kind="mirror", source=source)
            self._kick()
        return job, new

    def sync_now(self, why: str = "sync-now") -> list[Job]:
        """Queue the config's lists and every request file not yet mirrored."""
        queued = []
        if self.conf.has_sources:
            queued.append(self.submit_mirror(why, "config")[0])
        active = {j.key for j in self.queue.running()}
        for name in self._pending_requests():
            if f"request:{name}" in active:
                continue  # being mirrored now: it moves away when done
            # Only a file the watcher already handed out (settled, unchanged since): one still
            # being written is left to the watcher, which reads it once it stops changing.
            try:
                st = os.stat(self.conf.requests_dir / name, follow_symlinks=False)
            except OSError:
                continue
            if self._settler is not None and self._settler.taken(name, (st.st_size, st.st_mtime_ns)):
                queued.append(self.submit_mirror(f"request:{name}", f"request:{name}", label=name)[0])
        return queued

    def usb_attach(self, path: str, label: str) -> tuple[Job, bool]:
        return self.submit_usb(*self.inspect_medium(path, label), "usb-attach")

    def inspect_medium(self, path: str, label: str) -> tuple[Path, str, str]:
        """(mount point, marker id, label shown) of a medium to attach; it touches the medium's
        file system, which may hang (a dying stick): the control API calls it off the loop."""
        if "\0" in path:
            raise ConfigError("the medium's path contains a NUL character")
        if not os.path.isabs(path):
            raise ConfigError(f"{path}: give the medium's absolute mount point")
        target = Path(os.path.realpath(path))  # "/m/a/../a" and symlinks name one medium
        try:
            self._check_target(target)
        except ConfigError as overlap:
            try:
                marker.read(target)
            except (marker.MarkerError, OSError):  # both wrong: say both, not one at a time
                raise ConfigError(f"{overlap}; nor is it an airsync medium (no {marker.MARKER}; "
                                  "airsync usb-init marks one)") from None
            raise
        medium = marker.read(target)  # a stick without the marker is never written to
        # The name given at usb-init says which stick it is; the unit's (the kernel's sdb1) where.
        # Status shows it in parentheses after the mount point: "/run/airsync-media/sdb1 (blue, sdb1)".
        label = medium.label if not label or label == medium.label else f"{medium.label}, {label}"
        return target, medium.id, label

    def submit_usb(self, target: Path, medium_id: str, label: str, source: str) -> tuple[Job, bool]:
        # Keyed on the marker's id: the same stick reached by two paths (a bind mount) is one job.
        job, new = self.queue.submit(Kind.USB, str(target), source, f"usb:{medium_id}", jobs.usb_claims(medium_id),
                                     time.time(), label=label)
        if new:
            self._save(job, job.created)
            log.info("job queued", job=job.id, kind="usb", target=str(target), label=label, source=source)
            self._kick()
        return job, new

    def _check_target(self, target: Path) -> None:
        """Refuse a medium that overlaps the service's own directories: a sync into the mirror
        would copy the mirror into itself, again at every sync; into the requests or state
        directory it would feed the service its own output."""
        c = self.conf
        for what, mine in (("the mirror", c.mirror_dir), ("the requests directory", c.requests_dir),
                           ("the state directory", c.state_db.parent),
                           ("the control socket's directory", c.control_socket.parent)):
            if overlap(target, mine):
                raise ConfigError(f"{target}: overlaps {what} ({os.path.realpath(mine)}); "
                                  "a medium must be a directory of its own")

    async def _resume_media(self) -> None:
        """USB jobs the last stop cut off are queued again if the same medium (by its marker's
        id) is still mounted where it was; otherwise the operator attaches it again."""
        newest: dict[str, Job] = {}
        for job in sorted(self.queue.jobs.values(), key=lambda j: j.id):
            if job.kind is Kind.USB:
                newest[job.key] = job
        for job in newest.values():
            if job.state is not State.INTERRUPTED:
                continue
            medium = None
            with trio.move_on_after(10):  # a stick pulled while the service was down may hang
                try:
                    medium = await trio.to_thread.run_sync(marker.read, Path(job.target), abandon_on_cancel=True)
                except (marker.MarkerError, OSError):
                    pass
            if self.stopping:
                return
            if medium is not None and job.key == f"usb:{medium.id}":
                self.submit_usb(Path(job.target), medium.id, job.label, "resume")
            else:
                log.info("interrupted sync not resumed: its medium is not attached; attach it again",
                         job=job.id, target=job.target, label=job.label)

    def cancel(self, job_id: int) -> Job:
        job = self.queue.cancel(job_id, time.time())
        if job.state is State.CANCELLED:
            self._save(job, job.finished or time.time())
            log.info("job cancelled", job=job_id)
        else:
            live = self.live[job_id]
            live.cancel_requested = True
            live.stop.set()
            if job.kind is Kind.MIRROR:
                live.scope.cancel()
            log.info("job cancelling", job=job_id)
        return job

    def _pending_requests(self) -> list[str]:
        """Names of the request files now in the directory (regular files, UTF-8 names). Any
        other entry that is not ignored (a FIFO, a symlink, a directory, a device) is never a
        request: it is set aside in ``.failed/`` untouched (never opened, so a FIFO cannot block)."""
        try:
            entries = sorted((e.name, e.is_file(follow_symlinks=False)) for e in os.scandir(self.conf.requests_dir))
        except OSError:
            return []
        pending = []
        for n, regular in entries:
            if inbox.kind_of(n) is None:
                continue
            if not _utf8(n):
                # Job labels, the JSON API and the log all want text: such a file is left alone.
                if n not in self._unreadable_names:
                    self._unreadable_names.add(n)
                    log.warning("request file name is not UTF-8; rename it to have it read",
                                file=json_safe(n))
                continue
            if not regular:
                self._set_aside(n)
                continue
            pending.append(n)
        return pending

    def _set_aside(self, name: str) -> None:
        """Move a directory entry that cannot be a request file to ``.failed/``, saying why."""
        src = self.conf.requests_dir / name
        try:
            mode = os.stat(src, follow_symlinks=False).st_mode
        except OSError:
            return  # gone meanwhile
        if stat.S_ISREG(mode):
            return  # replaced by a regular file meanwhile: a request after all
        what = _file_type(mode)
        try:
            dest = self.conf.requests_dir / FAILED_DIR
            dest.mkdir(exist_ok=True)
            os.replace(src, dest / name)
        except OSError as e:
            if name not in self._unreadable_names:
                self._unreadable_names.add(name)  # logged once, not at every listing
                log.error(f"request entry is {what}, not a regular file, and could not be moved to "
                          f"{FAILED_DIR}/; remove it", file=str(src), error=e.strerror)
            return
        log.warning(f"request entry is {what}, not a regular file: moved to {FAILED_DIR}/ unread; "
                    "drop request files as regular files", file=str(src))

    async def _watch_requests(self, directory: Path) -> None:
        from watchfiles import awatch

        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            log.error("requests directory unusable", path=str(directory), error=e.strerror)
            return
        settler = self._settler = inbox.Settler(self.conf.debounce)
        stop = self._watch_stop = trio.Event()

        def look(name: str) -> None:
            try:
                st = os.stat(directory / name, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and stat.S_ISREG(st.st_mode):
                settler.observe(name, (st.st_size, st.st_mtime_ns), trio.current_time())
            else:  # gone, or a FIFO, symlink or directory: never a request (as in the listing)
                settler.observe(name, None, trio.current_time())
                if st is not None and inbox.kind_of(name) is not None and _utf8(name):
                    self._set_aside(name)

        async def settle() -> None:
            last_scan = -RESCAN
            while True:
                await trio.sleep(max(0.05, self.conf.debounce / 4))
                if trio.current_time() - last_scan >= RESCAN:
                    # Events can be missed (a file renamed in while the watch starts, a full
                    # inotify queue): a listing now and then catches those.
                    last_scan = trio.current_time()
                    names = set(self._pending_requests())
                    settler.present(names)
                    for name in names:
                        look(name)
                for name in settler.pending:
                    look(name)
                for name in settler.settled(trio.current_time()):
                    self.submit_mirror(f"request:{name}", f"request:{name}", label=name)

        async with trio.open_nursery() as n:
            n.start_soon(settle)
            try:
                async for changes in awatch(
                    directory, stop_event=stop, recursive=False, debounce=200, rust_timeout=1000,
                    watch_filter=lambda _c, p: inbox.kind_of(os.path.basename(p)) is not None,
                ):
                    for _change, p in changes:
                        look(os.path.basename(p))
            except Exception as e:  # noqa: BLE001 - the listings below find every file without events
                # e.g. watchfiles cannot decode a file name that is not UTF-8, and fails for good.
                log.warning("file events of the requests directory unavailable; listing it every "
                            f"{RESCAN:g} s instead", error=repr(e))
                await stop.wait()
            finally:
                stop.set()
                n.cancel_scope.cancel()

    async def _refresh_loop(self) -> None:
        interval = self.conf.refresh_interval
        if interval <= 0:
            self.next_refresh = None
            return
        while True:
            self.next_refresh = time.time() + interval
            await trio.sleep(interval)
            log.info("refresh")
            self.sync_now("refresh")

    # -- jobs ----------------------------------------------------------------------------

    async def _mirror_job(self, job: Job, live: Live) -> tuple[str | None, dict]:
        from airsync.mirror import inputs as mirror_inputs
        from airsync.trust import sumdb
        from airsync.goproxy import wants
        from airsync.fetch.fetcher import Stats
        from airsync.mirror.job import MirrorJob
        from airsync.goproxy.upstream import DEFAULT_GOPROXY, parse_goproxy

        conf = self.conf
        # Reading and parsing run in a thread: a large file must not stall the event loop
        # (the control API, the watchdog pings).
        if job.key == "config":
            where = "the config's lists"
            inputs = await trio.to_thread.run_sync(
                mirror_inputs.read_inputs, list(conf.go_sum), list(conf.go_mod), list(conf.modules_files), list(conf.modules))
        else:
            name = job.key.removeprefix("request:")
            path = where = conf.requests_dir / name
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError as e:
                return f"{path}: {e.strerror}", {}
            self._request_stat[job.id] = (name, (st.st_size, st.st_mtime_ns))
            try:
                inputs = await trio.to_thread.run_sync(read_request, path, inbox.kind_of(name))
            except RequestFileError as e:  # bad input: the file goes to .failed
                return str(e), {"input_problems": [str(e)], "input_problem_count": 1}
        problems = [str(p) for p in inputs.problems]
        for p in problems[:MAX_PROBLEMS]:
            log.warning("input problem", problem=p)
        if len(problems) > MAX_PROBLEMS:
            log.warning("more input problems (not logged)", more=len(problems) - MAX_PROBLEMS)
        plan = await trio.to_thread.run_sync(wants.plan, inputs.sum_lines, inputs.requires, inputs.modules)
        if not plan and not problems:  # empty, or only comments: bad input, not worth a retry
            problems = [f"{where}: nothing to mirror in it (no go.sum, go.mod or PATH@VERSION lines)"]
        result: dict[str, Any] = {"input_problems": problems[:MAX_PROBLEMS], "input_problem_count": len(problems)}
        if not plan:
            return problems[0], result
        m = conf.mirror
        settings = config.fetch_settings(m)
        db = sumdb.parse_gosumdb(m.get("sumdb") or sumdb.SUM_GOLANG_ORG)
        private = m.get("private", os.environ.get("GONOSUMDB") or os.environ.get("GOPRIVATE") or "")
        live.stats = Stats()
        mirror_job = MirrorJob(conf.mirror_dir, parse_goproxy(m.get("upstream") or DEFAULT_GOPROXY), settings,
                               live.stats, sumdb=db, private=private)
        s = await mirror_job.run(plan)
        result.update(
            fetched=s.fetched, skipped=s.skipped, failed=len(s.failures), bytes=s.bytes,
            resumed_bytes=s.resumed_bytes, retries=s.retries, seconds=round(s.seconds, 3),
            sumdb_carried=s.sumdb_carried,
            # Records are kept, stored and sent with every status: lists keep their first
            # entries and a count (the structured log has each one).
            unpinned=s.unpinned[:MAX_PROBLEMS], unpinned_count=len(s.unpinned),
            not_carried=s.not_carried[:MAX_PROBLEMS], not_carried_count=len(s.not_carried),
            failures=[f"{f.module} {f.file}: {f.message}" for f in s.failures[:MAX_PROBLEMS]],
        )
        if s.fatal:
            return s.fatal, result
        if s.failures:
            f = s.failures[0]
            return f"{len(s.failures)} file(s) failed; first: {f.module} {f.file}: {f.message}", result
        if problems:
            return f"{len(problems)} input problem(s); first: {problems[0]}", result
        return None, result

    async def _usb_job(self, job: Job, live: Live) -> tuple[str | None, dict]:
        from airsync.carry import manifest
        from airsync.carry.sync import SyncEvent, sync

        target = Path(job.target)
        self._check_target(target)  # the config may have changed since the attach

        def prepare():  # touches the stick and the key file: off the loop, a dying stick may hang
            medium = marker.read(target)  # again: the stick may have been swapped since the attach
            if job.key != f"usb:{medium.id}":
                return f"{target}: another medium is mounted there now ({medium.label!r}); attach it again"
            try:
                return manifest.load_signer(self.conf.signing_key)
            except manifest.KeyFileError as e:
                return f"signing key: {e}"

        signer = await trio.to_thread.run_sync(prepare, abandon_on_cancel=True)
        if isinstance(signer, str):
            return signer, {}
        mirror = self.conf.mirror_dir

        def progress(event: SyncEvent) -> None:  # runs in the sync's threads, one at a time
            if live.stop.is_set():
                raise _StopSync  # between two reads: the file in flight resumes next time
            if event.kind == "plan":
                live.files_total, live.bytes_total = event.files, event.bytes
            elif event.kind == "bytes":
                live.bytes_done += event.bytes
            elif event.kind == "file":
                live.files_done += 1

        r = await trio.to_thread.run_sync(
            partial(sync, mirror, target, signer, verify=False, progress=progress), abandon_on_cancel=True
        )
        return None, {
            "written": len(r.written), "unchanged": r.unchanged, "removed": len(r.removed),
            "bytes": r.bytes_written, "resumed_bytes": r.resumed_bytes,
            "unknown": r.unknown[:MAX_PROBLEMS], "unknown_count": len(r.unknown),
        }

    def _after(self, job: Job, state: State, result: dict | None) -> None:
        """A request file whose job ended: out of the way if done or unreadable; else kept."""
        seen = self._request_stat.pop(job.id, None)
        if seen is None or state not in (State.DONE, State.FAILED):
            return
        name, size_mtime = seen
        bad_input = state is State.FAILED and result is not None and result.get("input_problems") \
            and not result.get("fetched") and not result.get("failed")
        if state is State.FAILED and not bad_input:
            return  # an upstream problem: the refresh schedule tries it again
        src = self.conf.requests_dir / name
        try:
            st = os.stat(src, follow_symlinks=False)
            if (st.st_size, st.st_mtime_ns) != size_mtime:
                return  # replaced while the job ran: the new file has a job of its own
            dest = self.conf.requests_dir / (DONE_DIR if state is State.DONE else FAILED_DIR)
            dest.mkdir(exist_ok=True)
            os.replace(src, dest / name)
        except OSError as e:
            log.warning("request file not moved", file=str(src), error=e.strerror)

    # -- lifecycle -----------------------------------------------------------------------

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for sig in signals:
                if sig == signal.SIGHUP:
                    self.reload()
                else:
                    self.stop()

    def reload(self) -> None:
        try:
            new = config.load_daemon(self.conf.path)
        except ConfigError as e:
            self.reload_error = str(e)
            log.error("config reload failed; keeping the running config", error=str(e))
            return
        except Exception as e:  # noqa: BLE001 - a bug in checking the file must not stop the service
            self.reload_error = f"internal error reading the config: {e!r}"
            log.exception("config reload failed; keeping the running config")
            return
        old, self.conf = self.conf, new
        self.reloads += 1
        self.reload_error = None
        for key in ("control_socket", "state_db"):
            if getattr(old, key) != getattr(new, key):
                log.warning("config change takes effect at the next restart", key=f"daemon.{key}")
        if new.requests_dir != old.requests_dir or new.debounce != old.debounce:
            if self._watch_stop is not None:
                self._watch_stop.set()
            self._restart("watch", self._watch_requests, new.requests_dir)
        if new.refresh_interval != old.refresh_interval:
            self._restart("refresh", self._refresh_loop)
        sources = ("modules", "modules_files", "go_sum", "go_mod")
        if new.has_sources and any(getattr(old, k) != getattr(new, k) for k in sources):
            self.submit_mirror("config", "config")
        log.info("config reloaded", path=str(new.path))
        self._warn_config()

    def _warn_config(self) -> None:
        for warning in config_warnings(self.conf):
            log.warning("config problem; the service runs, but some jobs will fail", problem=warning)

    def healthy(self) -> bool:
        return self.problem is None and trio.current_time() - self.heartbeat < 3 * TICK + 2

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog
        if interval is None:
            return
        while True:
            if self.healthy():
                self.notifier.notify(WATCHDOG=1)
            else:
                log.error("supervisor unhealthy: not pinging the watchdog", problem=self.problem)
            await trio.sleep(interval)

    async def _status_updates(self) -> None:
        last = ""
        while True:
            line = self.status_line()
            if line != last:
                self.notifier.notify(STATUS=line)
                last = line
            await trio.sleep(2)

    def status_line(self) -> str:
        running, queued = self.queue.running(), self.queue.queued()
        if not running and not queued:
            return "idle; waiting for requests and media"
        line = f"{len(running)} running, {len(queued)} queued"
        for job in running[:1]:
            live = self.live.get(job.id)
            p = live.view() if live else {}
            files = f"{p.get('files_done', 0)}/{p.get('files_total') or '?'} files"
            line += f"; job {job.id} {job.kind.value} {job.label or job.target}: {files}, {p.get('rate', 0) / 2**20:.1f} MiB/s"
        return line

    # -- what the control API shows ------------------------------------------------------

    def job_view(self, job: Job) -> dict[str, Any]:
        d = job.as_dict()
        del d["claims"], d["key"]
        live = self.live.get(job.id)
        d["progress"] = live.view() if live is not None else None
        return d

    def jobs_view(self) -> list[dict[str, Any]]:
        return [self.job_view(j) for j in self.queue.listing(self.conf.history)]

    def status_view(self) -> dict[str, Any]:
        return {
            "daemon": {
                "version": __version__,
                "pid": os.getpid(),
                "started": self.started,
                "uptime": round(time.time() - self.started, 1),
                "healthy": self.healthy() and not self.stopping,
                "problem": self.problem,
                "notes": config_warnings(self.conf),  # looked at again: a key fixed since shows at once
                "stopping": self.stopping,
                "config": str(self.conf.path),
                "mirror": str(self.conf.mirror_dir),
                "requests_dir": str(self.conf.requests_dir),
                "reloads": self.reloads,
                "reload_error": self.reload_error,
                "next_refresh": self.next_refresh,
                "running": len(self.queue.running()),
                "queued": len(self.queue.queued()),
                "status": self.status_line(),
            },
            "jobs": self.jobs_view(),
        }


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes of the file name, as surrogates
        return False


def signing_key_problem(conf: DaemonConfig) -> str | None:
    """Why ``daemon.signing_key`` cannot sign a medium's manifest, or None. The service runs
    without it (mirror jobs need no key), but every USB job would fail: say so early."""
    from airsync.carry import manifest

    path = conf.signing_key
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"signing key {path} missing: USB jobs will fail (make one with: airsync keygen)"
    except OSError as e:
        return f"signing key {path} unreadable ({e.strerror}): USB jobs will fail"
    if not stat.S_ISREG(st.st_mode):  # never opened: a FIFO would block the service
        return f"signing key {path} is not a regular file: USB jobs will fail"
    try:
        manifest.load_signer(path)
    except manifest.KeyFileError as e:
        return f"signing key unusable: {e}: USB jobs will fail"
    return None


def config_warnings(conf: DaemonConfig) -> list[str]:
    """What in a valid config will make jobs fail (logged at start and reload, shown in status)."""
    problem = signing_key_problem(conf)
    return [problem] if problem else []


def _file_type(mode: int) -> str:
    for test, what in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "of an unknown type"


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


def read_request(path: Path, kind: str | None):
    """Read and parse one request file (in a worker thread): ``mirror.inputs.Inputs``.

    Only a regular file is read, opened without following a symlink and without blocking (a
    FIFO renamed in would block a plain read forever), and only up to ``MAX_REQUEST`` bytes.
    """
    from airsync.mirror import inputs as mirror_inputs

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RequestFileError(f"{path}: a symlink; request files must be regular files") from None
        raise RequestFileError(f"{path}: cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RequestFileError(f"{path}: not a regular file; request files must be regular files")
        if st.st_size > MAX_REQUEST:
            raise RequestFileError(f"{path}: {st.st_size} bytes; request files may have at most {MAX_REQUEST}")
        chunks, size = [], 0
        while size <= MAX_REQUEST:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_REQUEST:
            raise RequestFileError(f"{path}: grew past {MAX_REQUEST} bytes while read")
    except OSError as e:
        raise RequestFileError(f"{path}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    inputs = mirror_inputs.Inputs()
    mirror_inputs.parse_input(inputs, kind or "modules", b"".join(chunks), str(path))
    return inputs


def run(conf: DaemonConfig) -> int:
    """``airsync run``: serve until SIGTERM; 0 after an orderly stop."""
    daemon = Daemon(conf)
    try:
        trio.run(daemon.serve)
    except BaseExceptionGroup as eg:
        user = first_of(eg, AirsyncError)  # e.g. the control socket is taken: a message, not a traceback
        if user is None:
            raise
        raise user from None
    return 0
