"""``airsync serve`` as a subprocess on a free 127.0.0.1 port, for tests that use a mirror over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers.nginx import free_port


@contextmanager
def airsync_serve(mirror: Path, *extra: str) -> Iterator[str]:
    """Serve ``mirror`` until the block ends; yields its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "airsync", "serve", str(mirror), "--listen", f"127.0.0.1:{port}",
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "airsync serve did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
