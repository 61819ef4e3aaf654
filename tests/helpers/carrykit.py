"""A border mirror for carry tests: sample modules served by a local upstream with a checksum
database of their own, mirrored by the real ``airsync mirror`` (a helper module, not a test file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airsync import sample
from tests.helpers.faultserver import FaultServer


def mirror_modules(upstream: Path, mirror: Path, modules, vkey: str) -> None:
    """``airsync mirror`` of ``modules`` (each named PATH@VERSION) from the tree ``upstream`` into ``mirror``."""
    with FaultServer(upstream) as srv:
        r = subprocess.run([sys.executable, "-m", "airsync", "mirror", *[f"--module={m.path}@{m.version}" for m in modules],
                            "--to", str(mirror), "--upstream", srv.url, "--sumdb", vkey, "--no-progress"],
                           capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def mirror_with_sumdb(tmp: Path, modules, carried=None) -> tuple[Path, object]:
    """(mirror, database): an upstream of ``modules`` with its database, and a mirror of
    ``carried`` (default: all of them) under ``tmp/mirror``."""
    upstream = tmp / "upstream"
    sample.build_proxy_tree(upstream, modules)
    db = sample.build_sumdb(upstream, modules, padding=20)
    mirror = tmp / "mirror"
    mirror_modules(upstream, mirror, modules if carried is None else carried, db.vkey)
    return mirror, db
