"""Running the real go command in tests without any chance of reaching the internet (a helper).

``require_go()`` returns the newest go binary on the machine (``scripts/newest-go``: Go 1.26 where it is
installed, Debian's golang-go only where nothing newer exists) or fails the test (it never skips).
``go_env(tmp, goproxy)`` is a complete environment, built from nothing (like ``env -i``), in which the
go command can only read ``goproxy``: a ``file://`` URL or an ``http://127.0.0.1:PORT`` URL (anything else
is refused here). HOME, GOPATH, GOMODCACHE and GOCACHE all live under ``tmp``, the checksum database is
off, toolchain downloads are off (GOTOOLCHAIN=local), no go.env/GOENV file or workspace is read, and cgo
is off so no C compiler is needed. ``run_go`` runs it with a timeout and captured output.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

__all__ = ["require_go", "go_env", "run_go"]

_NEWEST_GO = Path(__file__).resolve().parents[2] / "scripts" / "newest-go"


@functools.cache
def require_go() -> str:
    """The newest go binary on the machine (scripts/newest-go), or fail the test (never skip)."""
    r = subprocess.run([str(_NEWEST_GO)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not r.stdout.strip():
        pytest.fail("go not installed: run scripts/setup (it installs golang-go where no go exists)", pytrace=False)
    return r.stdout.strip()


def _check_proxy(goproxy: str) -> None:
    for entry in goproxy.replace("|", ",").split(","):
        entry = entry.strip()
        if entry == "off":
            continue
        if not (entry.startswith("file:///") or entry.startswith("http://127.0.0.1:")):
            raise ValueError(f"go_env: GOPROXY entry {entry!r} could reach the network; use file:// or http://127.0.0.1")


def go_env(tmp: Path, goproxy: str, goflags: str = "-mod=mod", gosumdb: str = "off") -> dict[str, str]:
    """A minimal environment for the go command that only ever reads ``goproxy``."""
    _check_proxy(goproxy)
    tmp = Path(tmp).resolve()
    go = require_go()
    path_dirs = [os.path.dirname(os.path.realpath(go)), os.path.dirname(go), "/usr/bin", "/bin"]
    env = {
        "PATH": os.pathsep.join(dict.fromkeys(path_dirs)),
        "HOME": str(tmp / "home"),
        "GOPATH": str(tmp / "gopath"),
        "GOMODCACHE": str(tmp / "gomodcache"),
        "GOCACHE": str(tmp / "gocache"),
        "GOPROXY": goproxy,
        "GOSUMDB": gosumdb,  # a key of a test database served next to goproxy, or off
        "GOTOOLCHAIN": "local",
        "GOFLAGS": goflags,
        "GOENV": "off",
        "GOWORK": "off",
        "CGO_ENABLED": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "none",
    }
    for d in ("home", "gopath", "gomodcache", "gocache"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    return env


def run_go(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_go(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def build_demo_app(tmp: Path, goproxy: str, gosumdb: str) -> Path:
    """Write the sample app under ``tmp``, then ``go mod tidy`` and ``go build`` it against
    ``goproxy`` with no go.sum to start from (so GOSUMDB checks every module); its directory."""
    from airsync import sample

    app = Path(tmp) / "app"
    sample.write_main_module(app, sample.demo_app_requires())
    env = go_env(tmp, goproxy, gosumdb=gosumdb)
    r = run_go(["mod", "tidy"], app, env)
    assert r.returncode == 0, r.stderr
    r = run_go(["build", "-o", "app", "."], app, env)
    assert r.returncode == 0, r.stderr
    return app
