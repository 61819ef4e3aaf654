"""Helpers for the service's tests (a helper module, not a test file).

``write_config`` makes a config whose every path is under the test's directory; ``Notify`` is a
fake ``$NOTIFY_SOCKET`` (a bound AF_UNIX datagram socket) that collects what the service tells
systemd; ``Service`` runs ``python -m airsync run`` as a subprocess with it; ``wait_for`` polls
a condition with a deadline, so no test waits forever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from airsync.service import controlclient


def write_config(tmp: Path, upstream: str, **daemon: object) -> Path:
    import tomli_w

    conf = {
        "mirror": {"to": str(tmp / "mirror"), "upstream": upstream, "sumdb": "off", "read_timeout": 120},
        "daemon": {
            "requests_dir": str(tmp / "requests"),
            "control_socket": str(tmp / "run" / "control.sock"),
            "state_db": str(tmp / "state" / "daemon.db"),
            "signing_key": str(tmp / "k.key"),
            "debounce": 0.2,
            "stop_timeout": 5,
            **daemon,
        },
    }
    path = tmp / "airsync.toml"
    path.write_text(tomli_w.dumps(conf))
    return path


def wait_for(cond, timeout: float = 30.0, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


class Notify:
    """A fake systemd notify socket, drained by a thread as systemd would (a full queue would
    make the service drop messages); ``messages`` are the datagrams received so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._closed.is_set():
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def has(self, prefix: str) -> bool:
        return any(line.startswith(prefix) for m in list(self.messages) for line in m.split("\n"))

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._thread.join(timeout=5)
            self.sock.close()


def drop_request(requests: Path, name: str, data: str) -> None:
    """Drop a request file the way a careful writer does: write beside, rename in."""
    requests.mkdir(parents=True, exist_ok=True)
    tmp = requests / f"{name}.tmp"
    tmp.write_text(data)
    os.replace(tmp, requests / name)


def job_states(sock: Path) -> dict[int, dict]:
    with controlclient.Client(sock) as c:
        return {j["id"]: j for j in c.status()["jobs"]}


class Service:
    """``airsync run --config`` as a subprocess, with a fake notify socket and a watchdog."""

    def __init__(self, tmp: Path, config: Path, watchdog_usec: int = 400_000) -> None:
        self.tmp = tmp
        self.config = config
        self.notify = Notify(tmp / f"notify-{time.monotonic_ns()}")
        self.log = tmp / "service.log"
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), "WATCHDOG_USEC": str(watchdog_usec)}
        env.pop("WATCHDOG_PID", None)
        self._log = open(self.log, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airsync", "--log-format", "json", "run", "--config", str(config)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        wait_for(lambda: self.notify.has("READY=1") or self.proc.poll() is not None, 30, "READY=1")
        assert self.proc.poll() is None, self.log.read_text()

    @property
    def socket(self) -> Path:
        return self.tmp / "run" / "control.sock"

    def airsync(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "airsync", *args], capture_output=True, text=True, timeout=timeout)
        assert "Traceback" not in r.stderr + r.stdout, r.stderr
        return r

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
        self.notify.close()


class Unserved:
    """A ``Daemon`` that never serves (nothing runs its jobs): for what submitting does. Closes
    its job database and state lock on the way out, so the next daemon of the test may start."""

    def __init__(self, conf) -> None:
        from airsync.service import sdnotify
        from airsync.service.daemon import Daemon

        self.daemon = Daemon(conf, sdnotify.Notifier({}))

    def __enter__(self):
        return self.daemon

    def __exit__(self, *exc: object) -> None:
        self.daemon.ledger.close()
