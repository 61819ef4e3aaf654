"""The service's life with systemd: signals, the watchdog, the status line, config warnings.

SIGHUP reloads the config (a broken file is logged and the old config kept; running jobs keep
the settings they started with); SIGTERM and SIGINT stop the service. The watchdog is pinged
only while the service is healthy (the supervisor's heartbeat fresh, the job database writable),
so systemd restarts a service that hangs. ``STATUS=`` follows ``systemctl status`` as the jobs
change. A valid config can still make jobs fail (a missing signing key): ``config_warnings``
says so at start, at every reload, and in status.
"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Callable

import structlog
import trio

from airsync.config import DaemonConfig
from airsync.service import sdnotify

log = structlog.get_logger("airsync.daemon")


async def signals(reload: Callable[[], None], stop: Callable[[], None]) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as received:
        async for sig in received:
            if sig == signal.SIGHUP:
                reload()
            else:
                stop()


async def watchdog(notifier: sdnotify.Notifier, healthy: Callable[[], bool], problem: Callable[[], str | None]) -> None:
    interval = notifier.watchdog
    if interval is None:
        return
    while True:
        if healthy():
            notifier.notify(WATCHDOG=1)
        else:
            log.error("supervisor unhealthy: not pinging the watchdog", problem=problem())
        await trio.sleep(interval)


async def status_updates(notifier: sdnotify.Notifier, status_line: Callable[[], str]) -> None:
    last = ""
    while True:
        line = status_line()
        if line != last:
            notifier.notify(STATUS=line)
            last = line
        await trio.sleep(2)


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
