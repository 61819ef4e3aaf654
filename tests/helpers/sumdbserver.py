"""A real Go checksum database with a caching proxy in front, for tests (a helper, not a test file).

``build_sumdbserver(dest)`` compiles ``tests/helpers/sumdbserver/main.go`` (a golang.org/x/mod/sumdb
server: see its opening comment) with the machine's go command fully offline: the x/mod source
the go distribution vendors (``$GOROOT/src/cmd/vendor/golang.org/x/mod``) is copied beside it with
a go.mod of its own and wired in with a ``replace``; GOPROXY=off, GOSUMDB=off, GOTOOLCHAIN=local.
A missing go or a failed build fails the test (never a skip).

``with SumDBServer(binary, root, skey, ...) as db:`` starts it on a free 127.0.0.1 port (bounded
wait for its "listening" line) serving the GOPROXY tree ``root`` at ``db.url`` and the database at
``db.url/sumdb/<name>/``; ``db.grow(n)`` logs n unrelated records, ``db.stats()`` says the tree size
and every tree size a lookup was answered at. On exit the process (only ours, by its pid) gets
SIGTERM, then SIGKILL after a few seconds.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.gotool import require_go

__all__ = ["build_sumdbserver", "SumDBServer", "SOURCE"]

SOURCE = Path(__file__).parent / "sumdbserver" / "main.go"


def _goroot(go: str) -> Path:
    r = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GOTOOLCHAIN": "local", "GOENV": "off"})
    if r.returncode != 0:
        pytest.fail(f"go env GOROOT failed: {r.stderr}", pytrace=False)
    return Path(r.stdout.strip())


def build_sumdbserver(dest: Path) -> Path:
    """Compile the test database into ``dest`` (offline); the binary's path."""
    go = require_go()
    xmod = _goroot(go) / "src" / "cmd" / "vendor" / "golang.org" / "x" / "mod"
    if not (xmod / "sumdb" / "server.go").is_file():
        pytest.fail(f"{xmod}: the go distribution's vendored golang.org/x/mod/sumdb is missing", pytrace=False)
    dest = Path(dest)
    shutil.copytree(xmod, dest / "xmod")
    (dest / "xmod" / "go.mod").write_text("module golang.org/x/mod\n\ngo 1.24\n")
    src = dest / "src"
    src.mkdir()
    shutil.copy(SOURCE, src / "main.go")
    (src / "go.mod").write_text(
        "module airsync.test/sumdbserver\n\ngo 1.24\n\nrequire golang.org/x/mod v0.0.0\n\n"
        "replace golang.org/x/mod => ../xmod\n"
    )
    env = {
        "PATH": os.pathsep.join([os.path.dirname(os.path.realpath(go)), "/usr/bin", "/bin"]),
        "HOME": str(dest / "home"), "GOPATH": str(dest / "gopath"), "GOCACHE": str(dest / "gocache"),
        "GOPROXY": "off", "GOSUMDB": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
        "GOWORK": "off", "GOENV": "off", "CGO_ENABLED": "0",
    }
    out = dest / "sumdbserver"
    r = subprocess.run([go, "build", "-o", str(out), "."], cwd=src, env=env, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        pytest.fail(f"building the test checksum database failed:\n{r.stderr}", pytrace=False)
    return out


def _write_list(path: Path, modules) -> str:
    path.write_text("".join(f"{m.path}@{m.version}\n" for m in modules))
    return str(path)


class SumDBServer:
    def __init__(self, binary: Path, root: Path, skey: str, name: str, *, work: Path, pad: int = 1000,
                 grow: int = 3, prelog=(), seed: int = 1, cache_lag: int = 50, foreign=(),
                 foreign_skey: str = "") -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.args = [str(binary), "-root", str(root), "-name", name, "-skey", skey, "-listen", "127.0.0.1:0",
                     "-pad", str(pad), "-grow", str(grow), "-seed", str(seed), "-cache-lag", str(cache_lag)]
        if prelog:
            self.args += ["-prelog", _write_list(work / "prelog.txt", prelog)]
        if foreign:
            self.args += ["-foreign", _write_list(work / "foreign.txt", foreign), "-foreign-skey", foreign_skey]
        self.name = name
        self.work = work
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> SumDBServer:
        log = open(self.work / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log)
        log.close()
        deadline = time.monotonic() + 60  # a 1M-record log takes a few seconds to build
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.__exit__()
                pytest.fail(f"test checksum database did not start: {(self.work / 'server.log').read_text()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                line += ch
        self.url = line.decode().split()[-1]
        assert self.url.startswith("http://127.0.0.1:")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:  # 127.0.0.1 only (checked above)
            return r.read()

    def grow(self, n: int) -> int:
        return int(self._get(f"/control/grow?n={n}"))

    def stats(self) -> dict:
        return json.loads(self._get("/control/stats"))

    def latest(self) -> bytes:
        return self._get(f"/sumdb/{self.name}/latest")
