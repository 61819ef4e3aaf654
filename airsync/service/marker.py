"""The marker that makes a directory (a USB stick's root) an airsync medium.

The service syncs the mirror only to a medium that carries ``.airsync-medium`` at its root,
written once by ``airsync usb-init``: a random stick plugged into the border host is never
written to. The marker is a small JSON object (format version, label, a random id, creation
time). Being a dot-file, it is never part of the synced tree (medium.tree_files skips dot-paths)
and never in the manifest. ``render``/``parse`` are pure; ``write``/``read`` do the file I/O,
durably (write beside, fsync, rename, fsync the directory), and never follow a symlink.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from airsync.errors import AirsyncError

MARKER = ".airsync-medium"
FORMAT = 1


class MarkerError(AirsyncError):
    """No marker, or a marker that is not ours: the medium is not written to."""


@dataclass(frozen=True)
class Marker:
    label: str
    id: str
    created: str


def render(m: Marker) -> bytes:
    return (json.dumps({"airsync-medium": FORMAT, "label": m.label, "id": m.id, "created": m.created},
                       indent=1) + "\n").encode()


def parse(data: bytes, where: str) -> Marker:
    try:
        d = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise MarkerError(f"{where}: not an airsync medium marker (not JSON)") from None
    if not isinstance(d, dict) or d.get("airsync-medium") != FORMAT:
        raise MarkerError(f"{where}: not an airsync medium marker (format {FORMAT} expected)")
    fields = {k: d.get(k) for k in ("label", "id", "created")}
    bad = [k for k, v in fields.items() if not isinstance(v, str)]
    if bad:
        raise MarkerError(f"{where}: marker lacks {', '.join(bad)}")
    return Marker(**fields)


def new(label: str) -> Marker:
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Marker(label=label, id=secrets.token_hex(8), created=created)


def read(root: Path) -> Marker:
    """The marker at ``root``; MarkerError names the path and what is missing."""
    path = root / MARKER
    try:
        # O_NONBLOCK: a FIFO planted as the marker must not hang whoever reads it (the daemon).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise MarkerError(
            f"{root}: no {MARKER} here, so this is not an airsync medium; refusing to write to it "
            f"(prepare a stick once with: airsync usb-init {root})"
        ) from None
    except OSError as e:
        raise MarkerError(f"{path}: cannot read: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MarkerError(f"{path}: not a regular file; this is not an airsync medium")
        data = os.read(fd, 1 << 16)
    except OSError as e:  # e.g. EIO from a stick pulled a moment ago
        raise MarkerError(f"{path}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    return parse(data, str(path))


def write(root: Path, label: str) -> Marker:
    """Make ``root`` a medium. Refuses when it already is one (its marker is kept)."""
    if not root.is_dir():
        raise MarkerError(f"{root}: no such directory (mount the medium first)")
    path = root / MARKER
    if os.path.lexists(path):
        raise MarkerError(f"{path} already exists: {root} already is a medium; left as it is")
    m = new(label)
    tmp = root / f"{MARKER}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as e:  # a read-only medium, not ours to write: say so, no traceback
        raise MarkerError(f"{root}: cannot write the marker: {e.strerror}") from None
    try:
        try:
            os.write(fd, render(m))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        try:
            os.unlink(tmp)  # no half-written marker left behind (gone already if the rename went)
        except OSError:
            pass
        raise MarkerError(f"{root}: cannot write the marker: {e.strerror}") from None
    return m
