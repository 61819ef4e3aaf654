"""``airsync run``: the service. One trio process that keeps the mirror up to date and fills media.

Theory of operation. ``Daemon`` composes the service's parts and is what the control API
(``control``) talks to; each part is a module of its own:

- ``ledger``: the jobs, in memory and in the job database, and the lock that allows one service
  per state;
- ``runner``: the supervisor loop that starts queued jobs, runs them and stops them in bounded
  time; ``work``: what a mirror job and a sync to a medium do;
- ``intake``: request files dropped into the requests directory, read once they settle;
- ``media``: which media may be written, and syncs a stop cut off, queued again;
- ``lifecycle``: signals (SIGHUP reloads, SIGTERM stops), the watchdog, the status line for
  systemd, config warnings; ``views``: what status shows.

``Daemon.serve`` opens the control socket, tells systemd READY=1, and then runs, side by side:
the supervisor, the requests watcher, the **refresh** task (every ``refresh_interval`` the
config's lists, and any request file not yet mirrored, are queued again; ``airsync sync-now``
does the same at once), the **bundle** task (every ``bundle_interval`` a bundle job; ``airsync
bundle-now`` queues one at once), the signal, watchdog and status tasks. A reload restarts the watcher
and the refresh task when their settings changed, and queues the config's lists when those did.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import structlog
import trio

from airsync import __version__, config
from airsync.config import DaemonConfig
from airsync.errors import AirsyncError, ConfigError, first_of
from airsync.service import control, jobs, lifecycle, media, sdnotify, views, work
from airsync.service.intake import Intake
from airsync.service.jobs import Job, Kind
from airsync.service.ledger import Ledger
from airsync.service.runner import TICK, Live, Runner

log = structlog.get_logger("airsync.daemon")


class Daemon:
    def __init__(self, conf: DaemonConfig, notifier: sdnotify.Notifier | None = None) -> None:
        self.conf = conf
        self.notifier = notifier or sdnotify.Notifier()
        # Another service with this config must be noticed before the jobs in the shared
        # database are touched: the ledger marks jobs left running as interrupted.
        control.refuse_if_in_use(conf.control_socket)
        self.ledger = Ledger(conf.state_db, conf.history)
        self.queue = self.ledger.queue
        self.intake = Intake(lambda: self.conf, self._submit_request)
        self.runner = Runner(self.ledger, lambda: self.conf, self._work, self.intake.finished)
        self.started = time.time()
        self.reloads = 0
        self.reload_error: str | None = None
        self.next_refresh: float | None = None
        self._stopped = trio.Event()
        self._scopes: dict[str, trio.CancelScope] = {}

    @property
    def stopping(self) -> bool:
        return self.runner.stopping

    @property
    def live(self) -> dict[int, Live]:
        return self.runner.live

    # -- the service ---------------------------------------------------------------------

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.runner.heartbeat = trio.current_time()
        try:
            await self._serve(task_status)
        finally:
            self.ledger.close()  # the next service may start
        log.info("stopped")

    async def _serve(self, task_status) -> None:
        try:  # there before READY=1, so a request can be dropped as soon as systemd says started
            self.conf.requests_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{self.conf.requests_dir}: cannot create the requests directory: {e.strerror}") from None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(control.serve, self, self.conf.control_socket, self._stopped)
            log.info("listening", socket=str(self.conf.control_socket), mirror=str(self.conf.store or self.conf.mirror_dir),
                     requests=str(self.conf.requests_dir), pid=os.getpid())
            self._warn_config()
            self.notifier.notify(READY=1, STATUS=self.status_line(), MAINPID=os.getpid())
            task_status.started()
            nursery.start_soon(lifecycle.signals, self.reload, self.stop)
            nursery.start_soon(lifecycle.watchdog, self.notifier, self.healthy, lambda: self.ledger.problem)
            nursery.start_soon(lifecycle.status_updates, self.notifier, self.status_line)
            self._restart("watch", self.intake.watch, self.conf.requests_dir)
            self._restart("refresh", self._refresh_loop)
            self._restart("bundle", self._bundle_loop)
            if self.conf.has_sources:
                self.submit_mirror("config", "config")
            nursery.start_soon(media.resume, list(self.queue.jobs.values()), lambda: self.stopping,
                               lambda target, medium_id, label: self.submit_usb(target, medium_id, label, "resume"))
            await self.runner.run()
            self._stopped.set()  # the control server closes its socket
            nursery.cancel_scope.cancel()

    def stop(self) -> None:
        """Begin stopping: no new jobs; the runner stops the running ones."""
        if not self.stopping:
            self.notifier.notify(STOPPING=1, STATUS="stopping")
            log.info("stopping")
            self.intake.stop_watching()
            self.runner.stop()

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

    async def _bundle_loop(self) -> None:
        interval = self.conf.bundle_interval
        if interval <= 0 or self.conf.bundle_dir is None:
            return
        while True:
            await trio.sleep(interval)
            log.info("scheduled bundle")
            self.bundle_now("schedule")

    async def _work(self, job: Job, live: Live) -> tuple[str | None, dict]:
        if job.kind is Kind.MIRROR:
            return await work.mirror(self.conf, job, live, self.intake)
        if job.kind is Kind.BUNDLE:
            return await work.bundle(self.conf, job, live)
        return await work.sync_medium(self.conf, job, live)

    # -- sources of work -----------------------------------------------------------------

    def submit_mirror(self, source: str, key: str, label: str = "") -> tuple[Job, bool]:
        job, new = self.ledger.submit(Kind.MIRROR, str(self.conf.store or self.conf.mirror_dir), source, key,
                                      jobs.mirror_claims(), label=label)
        if new:
            log.info("job queued", job=job.id, kind="mirror", source=source)
            self.runner.kick()
        return job, new

    def _submit_request(self, name: str) -> None:
        self.submit_mirror(f"request:{name}", f"request:{name}", label=name)

    def sync_now(self, why: str = "sync-now") -> list[Job]:
        """Queue the config's lists and every request file not yet mirrored."""
        queued = []
        if self.conf.has_sources:
            queued.append(self.submit_mirror(why, "config")[0])
        active = {j.key.removeprefix("request:") for j in self.queue.running() if j.key.startswith("request:")}
        for name in self.intake.ready(active):  # one being mirrored now moves away when done
            queued.append(self.submit_mirror(f"request:{name}", f"request:{name}", label=name)[0])
        return queued

    def bundle_now(self, why: str = "bundle-now") -> tuple[Job, bool]:
        """Queue a bundle of the mirror into ``daemon.bundle_dir``."""
        if self.conf.bundle_dir is None:
            raise ConfigError("no daemon.bundle_dir in the config: bundles have nowhere to go")
        job, new = self.ledger.submit(Kind.BUNDLE, str(self.conf.bundle_dir), why, "bundle", jobs.bundle_claims())
        if new:
            log.info("job queued", job=job.id, kind="bundle", target=str(self.conf.bundle_dir), source=why)
            self.runner.kick()
        return job, new

    def usb_attach(self, path: str, label: str) -> tuple[Job, bool]:
        return self.submit_usb(*self.inspect_medium(path, label), "usb-attach")

    def inspect_medium(self, path: str, label: str) -> tuple[Path, str, str]:
        """(mount point, marker id, label shown) of a medium to attach; it touches the medium's
        file system, which may hang (a dying stick): the control API calls it off the loop."""
        return media.inspect(self.conf, path, label)

    def submit_usb(self, target: Path, medium_id: str, label: str, source: str) -> tuple[Job, bool]:
        # Keyed on the marker's id: the same stick reached by two paths (a bind mount) is one job.
        job, new = self.ledger.submit(Kind.USB, str(target), source, f"usb:{medium_id}",
                                      jobs.usb_claims(medium_id), label=label)
        if new:
            log.info("job queued", job=job.id, kind="usb", target=str(target), label=label, source=source)
            self.runner.kick()
        return job, new

    def cancel(self, job_id: int) -> Job:
        return self.runner.cancel(job_id)

    # -- lifecycle -----------------------------------------------------------------------

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
            self.intake.stop_watching()
            self._restart("watch", self.intake.watch, new.requests_dir)
        if new.refresh_interval != old.refresh_interval:
            self._restart("refresh", self._refresh_loop)
        if (new.bundle_interval, new.bundle_dir) != (old.bundle_interval, old.bundle_dir):
            self._restart("bundle", self._bundle_loop)
        sources = ("modules", "modules_files", "go_sum", "go_mod")
        if new.has_sources and any(getattr(old, k) != getattr(new, k) for k in sources):
            self.submit_mirror("config", "config")
        log.info("config reloaded", path=str(new.path))
        self._warn_config()

    def _warn_config(self) -> None:
        for warning in lifecycle.config_warnings(self.conf):
            log.warning("config problem; the service runs, but some jobs will fail", problem=warning)

    def healthy(self) -> bool:
        return self.ledger.problem is None and trio.current_time() - self.runner.heartbeat < 3 * TICK + 2

    # -- what the control API shows ------------------------------------------------------

    def status_line(self) -> str:
        return views.status_line(self.queue, self.live)

    def job_view(self, job: Job) -> dict[str, Any]:
        return views.job_view(job, self.live.get(job.id))

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
                "problem": self.ledger.problem,
                "notes": lifecycle.config_warnings(self.conf),  # looked at again: a key fixed since shows at once
                "stopping": self.stopping,
                "config": str(self.conf.path),
                "mirror": str(self.conf.store or self.conf.mirror_dir),
                "requests_dir": str(self.conf.requests_dir),
                "reloads": self.reloads,
                "reload_error": self.reload_error,
                "next_refresh": self.next_refresh,
                "vulndb_modified": vulndb_modified(self.conf.mirror_dir),
                "running": len(self.queue.running()),
                "queued": len(self.queue.queued()),
                "status": self.status_line(),
            },
            "jobs": self.jobs_view(),
        }


def vulndb_modified(mirror: Path) -> float | None:
    """The time (epoch seconds) of the mirror's vulnerability database, None when it has none."""
    from airsync.vulndb import ondisk

    meta = ondisk.read_db(mirror / ondisk.VULNDB)
    return None if meta is None else meta.modified / 1e9


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
