"""Which manifests the inside mirror has accepted: the anti-rollback record, on disk.

One small JSON file in the mirror's private workspace, ``.airsync/accepted-manifests.json``
(never served: ``serve`` hides dot-paths, no medium carries them), maps each signing key
(``name+hash``) to the newest manifest accepted from it (``rollback.Accepted``). ``guard`` checks
a manifest before an import writes anything; its ``commit`` records it once the import is done,
written to a temporary file, fsynced and renamed, so a crash leaves the old record or the new.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from airsync.carry import rollback
from airsync.carry.manifest import Manifest, digest
from airsync.store import WORKDIR, makedirs_durable, replace_durably
from airsync.trust import note

__all__ = ["FILE", "StateError", "load", "Guard", "guard", "key_id"]

FILE = "accepted-manifests.json"


class StateError(rollback.RollbackError):
    """The record cannot be read or written."""


def key_id(verifier: note.Verifier) -> str:
    return f"{verifier.name}+{verifier.key_hash:08x}"


def _path(mirror: Path) -> Path:
    return Path(mirror) / WORKDIR / FILE


def load(mirror: Path) -> dict[str, rollback.Accepted]:
    path = _path(mirror)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise StateError(f"{path}: cannot read the record of accepted manifests: {e.strerror or e}") from None
    try:
        return rollback.decode_state(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise StateError(f"{path}: not a record of accepted manifests ({e}); refusing to guess") from None


@dataclass(frozen=True)
class Guard:
    mirror: Path
    key: str
    manifest: Manifest
    digest: str

    def commit(self) -> None:
        """Record the manifest as accepted (when it raises the record)."""
        state = load(self.mirror)
        m = self.manifest
        new = rollback.record(m.sequence, self.digest, m.created, state.get(self.key), _dt.datetime.now(_dt.timezone.utc))
        if new is None:
            return
        state[self.key] = new
        path = _path(self.mirror)
        try:
            makedirs_durable(path.parent)
            replace_durably(path, rollback.encode_state(state))
        except OSError as e:
            raise StateError(f"{path}: cannot record the accepted manifest: {e.strerror or e}") from None


def guard(mirror: Path, verifier: note.Verifier, m: Manifest, policy: rollback.Policy) -> Guard:
    """Check ``m`` (opened with ``verifier``) against the mirror's record; raises rollback's errors."""
    key = key_id(verifier)
    d = digest(m)
    have = load(mirror).get(key)
    rollback.check(key, m.sequence, d, m.created, have, policy, _dt.datetime.now(_dt.timezone.utc))
    return Guard(Path(mirror), key, m, d)
