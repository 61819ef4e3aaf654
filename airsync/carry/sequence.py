"""The signer's manifest counter: every manifest a key signs gets the next sequence number.

The inside refuses a manifest whose sequence is not above the highest it has accepted from that
key (``airsync.carry.rollback``), so the border must never hand out a number twice, whichever of
its commands signs (``sync``, ``bundle``, ``serve --signing-key``, the daemon). The counter lives
in one small file beside the signer key, ``PREFIX.seq`` next to ``PREFIX.key``: every signer that
uses the key takes the next number from it under an exclusive lock (``PREFIX.seq.lock``), and the
new value is written to a temporary file, fsynced and renamed over the old one before the number
is used, so a crash never hands out a number again. Where the key's directory is read-only (the
daemon's ``/etc/airsync`` under ``ProtectSystem=strict``), the counter is kept in the service's
state directory (``$STATE_DIRECTORY``) instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from airsync.errors import AirsyncError
from airsync.store import replace_durably

__all__ = ["SequenceError", "counter_path", "next_sequence", "peek"]


class SequenceError(AirsyncError):
    """The counter file cannot be read or written: no manifest may be signed without a number."""


def counter_path(key_file: Path) -> Path:
    """Where the counter of the signer key in ``key_file`` is kept."""
    key_file = Path(key_file)
    name = key_file.name.removesuffix(".key") + ".seq"
    beside = key_file.with_name(name)
    if os.access(key_file.parent, os.W_OK):  # the counter is replaced by a rename: its directory is written
        return beside
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state and os.access(state, os.W_OK):
        return Path(state) / name
    return beside  # next_sequence then names the directory it cannot write


def _read(path: Path) -> int:
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as e:
        raise SequenceError(f"{path}: cannot read the manifest counter: {getattr(e, 'strerror', None) or e}") from None
    if not text.isdigit():
        raise SequenceError(f"{path}: not a manifest counter (want one decimal number); fix or remove it")
    return int(text)


def peek(path: Path) -> int:
    """The last number handed out (0: none yet)."""
    return _read(Path(path))


def next_sequence(path: Path) -> int:
    """Take the next number from the counter at ``path`` (durably, before returning it)."""
    path = Path(path)
    try:
        lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise SequenceError(
            f"{path}: cannot keep the manifest counter here: {e.strerror or e} (the directory of the signer "
            "key, or $STATE_DIRECTORY, must be writable)"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = _read(path) + 1
        try:
            replace_durably(path, f"{value}\n".encode(), mode=0o600)
        except OSError as e:
            raise SequenceError(f"{path}: cannot write the manifest counter: {e.strerror or e}") from None
        return value
    finally:
        os.close(lock)  # releases the lock
