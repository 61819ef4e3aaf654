"""The package's layers and purity, as pyproject.toml's import-linter contracts state them.

``lint-imports`` (import-linter) builds the import graph of ``airsync`` from the sources and
checks every contract: capabilities layered, no cycles between siblings at any depth, pure
modules free of the event loop, sockets and databases. The second test breaks a copy of the
package on purpose, so the check is known to catch what it is there for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept():
    r = lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout, r.stdout


def test_each_contract_catches_what_it_is_for(tmp_path):
    shutil.copytree(REPO / "airsync", tmp_path / "airsync", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with open(tmp_path / "airsync/fetch/ratelimit.py", "a") as f:
        f.write("\nfrom airsync.carry import sync  # a lower layer importing a higher one\n")
    with open(tmp_path / "airsync/goproxy/semver.py", "a") as f:
        f.write("\nimport socket  # a pure module doing I/O\n")
    (tmp_path / "airsync/stray.py").write_text('"""A module no layer names."""\n')
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "0 kept, 3 broken" in r.stdout, r.stdout
    assert "airsync.fetch.ratelimit -> airsync.carry.sync" in r.stdout
    assert "airsync.goproxy.semver -> socket" in r.stdout
    assert "airsync.stray" in r.stdout
