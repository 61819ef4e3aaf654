"""Anti-rollback: the inside accepts no manifest older than one it has already accepted.

A signature proves who wrote a manifest, not that it is the newest: an older medium or bundle,
validly signed, could be handed over again (by mistake, or to bring back a withdrawn version).
As TUF's version numbers and apt's ``Valid-Until`` do, every manifest carries a ``sequence``
(the signer's counter, ``carry.sequence``) and a ``created`` time under the signature, and the
inside mirror remembers, per signing key, the highest sequence it accepted (``Accepted``; the
file is ``carry.accepted``'s). ``check`` decides over these values alone:

* a higher sequence is accepted and becomes the record;
* the same sequence is accepted only for the very same manifest (its text's sha256): importing a
  medium twice is harmless, two different manifests with one number are not;
* a lower one is refused with ``RollbackError`` unless the operator allows a rollback (a
  deliberate restore), which never lowers the record;
* a manifest without a sequence (made by an airsync before it had them) is accepted while the
  inside has no record for its key, and refused as older once a numbered one was accepted;
* ``max_age`` (seconds) refuses a manifest created longer ago than that (``ManifestTooOld``).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import asdict, dataclass

from airsync.errors import AirsyncError

__all__ = ["Accepted", "Policy", "RollbackError", "ManifestTooOld", "check", "record", "parse_age",
           "encode_state", "decode_state"]

_AGE = re.compile(r"([0-9]+)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class RollbackError(AirsyncError):
    """The manifest is older than (or a different one with the number of) one already accepted."""


class ManifestTooOld(AirsyncError):
    """The manifest was created longer ago than --max-age allows."""


@dataclass(frozen=True)
class Accepted:
    """The newest manifest accepted from one key: its sequence, text sha256, created time, and when."""

    sequence: int
    digest: str
    created: str
    accepted: str


@dataclass(frozen=True)
class Policy:
    allow_rollback: bool = False
    max_age: int | None = None  # seconds


def _when(ts: str) -> _dt.datetime:
    return _dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)


def _show_age(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:.1f} days" if days >= 1 else f"{seconds / 3600:.1f} hours"


def check(key: str, sequence: int | None, digest: str, created: str, have: Accepted | None,
          policy: Policy, now: _dt.datetime) -> None:
    """Raise when the manifest (``sequence``, text ``digest``, ``created``) signed by ``key`` may
    not be accepted by an inside that has accepted ``have`` from that key."""
    if policy.max_age is not None:
        age = (now - _when(created)).total_seconds()
        if age > policy.max_age:
            raise ManifestTooOld(
                f"manifest {sequence or '(unnumbered)'} by {key} was created {created}, {_show_age(age)} ago: "
                f"older than --max-age allows ({_show_age(policy.max_age)})"
            )
    if have is None or policy.allow_rollback:
        return
    hint = "; give --allow-rollback to accept it deliberately (a restore)"
    if sequence is None:
        raise RollbackError(
            f"manifest by {key} has no sequence number (made by an older airsync, created {created}), but "
            f"manifest {have.sequence} by this key was already accepted on {have.accepted}: refusing it as older{hint}"
        )
    if sequence < have.sequence:
        raise RollbackError(
            f"manifest {sequence} by {key} (created {created}) is older than {have.sequence}, already imported "
            f"on {have.accepted}{hint}"
        )
    if sequence == have.sequence and digest != have.digest:
        raise RollbackError(
            f"manifest {sequence} by {key} differs from the manifest {have.sequence} already imported on "
            f"{have.accepted}: one number, two manifests (a replay, or a border counter reused){hint}"
        )


def record(sequence: int | None, digest: str, created: str, have: Accepted | None, now: _dt.datetime) -> Accepted | None:
    """The new record once the manifest was accepted, or None when the record stays as it is."""
    if sequence is None or (have is not None and sequence <= have.sequence):
        return None
    return Accepted(sequence, digest, created, now.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def parse_age(text: str) -> int:
    """'90d', '12h', '2w', '30m', '45s' or plain seconds -> seconds; ValueError when malformed."""
    m = _AGE.fullmatch(text.strip())
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not an age (want e.g. 30d, 12h, 2w)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def encode_state(state: dict[str, Accepted]) -> bytes:
    return (json.dumps({k: asdict(v) for k, v in sorted(state.items())}, indent=1) + "\n").encode()


def decode_state(data: bytes) -> dict[str, Accepted]:
    """The records in the file's bytes; ValueError when they are not such a file."""
    raw = json.loads(data.decode("utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    out = {}
    for key, v in raw.items():
        if not isinstance(v, dict) or set(v) != {"sequence", "digest", "created", "accepted"}:
            raise ValueError(f"bad record for {key}")
        if type(v["sequence"]) is not int:
            raise ValueError(f"bad sequence for {key}")
        out[key] = Accepted(**v)
    return out
