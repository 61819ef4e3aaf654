"""Removable media: which may be written, and syncs that a stop cut off.

A medium is written only when it carries the marker ``airsync usb-init`` wrote (``marker``) and
lies outside the service's own directories (a sync into the mirror would copy the mirror into
itself, again at every sync; into the requests or state directory it would feed the service its
own output). Jobs are keyed on the marker's id, so one stick reached by two paths is one job.
Everything here touches a medium's file system, which may hang (a dying stick): callers run it
off the event loop, with a timeout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
import trio

from airsync.carry.medium import overlap
from airsync.config import DaemonConfig
from airsync.errors import ConfigError
from airsync.service import marker
from airsync.service.jobs import Job, Kind, State

log = structlog.get_logger("airsync.daemon")


def check_target(conf: DaemonConfig, target: Path) -> None:
    """Refuse a medium that overlaps the service's own directories."""
    for what, mine in (("the mirror", conf.mirror_dir), ("the requests directory", conf.requests_dir),
                       ("the state directory", conf.state_db.parent),
                       ("the control socket's directory", conf.control_socket.parent)):
        if overlap(target, mine):
            raise ConfigError(f"{target}: overlaps {what} ({os.path.realpath(mine)}); "
                              "a medium must be a directory of its own")


def inspect(conf: DaemonConfig, path: str, label: str) -> tuple[Path, str, str]:
    """(mount point, marker id, label shown) of a medium to attach."""
    if "\0" in path:
        raise ConfigError("the medium's path contains a NUL character")
    if not os.path.isabs(path):
        raise ConfigError(f"{path}: give the medium's absolute mount point")
    target = Path(os.path.realpath(path))  # "/m/a/../a" and symlinks name one medium
    try:
        check_target(conf, target)
    except ConfigError as overlapping:
        try:
            marker.read(target)
        except (marker.MarkerError, OSError):  # both wrong: say both, not one at a time
            raise ConfigError(f"{overlapping}; nor is it an airsync medium (no {marker.MARKER}; "
                              "airsync usb-init marks one)") from None
        raise
    medium = marker.read(target)  # a stick without the marker is never written to
    # The name given at usb-init says which stick it is; the unit's (the kernel's sdb1) where.
    # Status shows it in parentheses after the mount point: "/run/airsync-media/sdb1 (blue, sdb1)".
    label = medium.label if not label or label == medium.label else f"{medium.label}, {label}"
    return target, medium.id, label


async def resume(jobs: Iterable[Job], stopping: Callable[[], bool],
                 submit: Callable[[Path, str, str], object]) -> None:
    """USB jobs the last stop cut off are queued again (``submit(target, medium id, label)``) if
    the same medium (by its marker's id) is still mounted where it was; otherwise the operator
    attaches it again."""
    newest: dict[str, Job] = {}
    for job in sorted(jobs, key=lambda j: j.id):
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
        if stopping():
            return
        if medium is not None and job.key == f"usb:{medium.id}":
            submit(Path(job.target), medium.id, job.label)
        else:
            log.info("interrupted sync not resumed: its medium is not attached; attach it again",
                     job=job.id, target=job.target, label=job.label)
