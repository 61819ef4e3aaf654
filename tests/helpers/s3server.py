"""A throwaway S3-compatible object store on 127.0.0.1: versitygw over a directory (a helper).

``with S3Server(tmp) as s3:`` starts ``versitygw --port 127.0.0.1:PORT posix ROOT`` with a root key
pair in ``ROOT_ACCESS_KEY``/``ROOT_SECRET_KEY``, waits (bounded) until it answers HTTP at all
(an unauthenticated ``GET /`` is a 403: the gateway is up), and stops it at exit (SIGTERM, then
SIGKILL). A bucket is a top-level directory of ROOT, so ``s3.bucket("b")`` makes one by mkdir, and
the objects of ``s3://b/k`` are the plain files ``ROOT/b/k``: a test can compare them byte for byte
with a directory mirror, or change one behind airsync's back.

``s3.env(prefix)`` is the environment airsync reads its store settings from (endpoint, region,
keys); ``s3.url(bucket, prefix)`` the ``s3://`` URL. versitygw is built by ``scripts/setup --test``
into ``.cache/bin``: a missing binary fails the test (never a skip).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.nginx import free_port

__all__ = ["S3Server", "require_versitygw", "ACCESS_KEY", "SECRET_KEY"]

ACCESS_KEY = "airsync-test"
SECRET_KEY = "airsync-test-secret-0123456789"
_BIN = Path(__file__).resolve().parents[2] / ".cache" / "bin" / "versitygw"


def require_versitygw() -> Path:
    if not os.access(_BIN, os.X_OK):
        pytest.fail(f"versitygw not built at {_BIN}: run scripts/setup --test", pytrace=False)
    return _BIN


class S3Server:
    def __init__(self, tmp: Path, *, start_timeout: float = 20.0) -> None:
        self.tmp = Path(tmp)
        self.root = self.tmp / "s3root"
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.tmp / "versitygw.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bucket(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"

    def env(self, endpoint: str | None = None, **extra: str) -> dict[str, str]:
        """The environment for an airsync process using this store (on top of ``os.environ``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=endpoint or self.endpoint,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        env.update(extra)
        return env

    def start(self) -> None:
        binary = require_versitygw()
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = dict(os.environ, ROOT_ACCESS_KEY=ACCESS_KEY, ROOT_SECRET_KEY=SECRET_KEY)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), "--port", f"127.0.0.1:{self.port}", "posix", str(self.root)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"versitygw exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # 403 without credentials: it answers
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"versitygw did not answer on port {self.port} within {self.start_timeout}s")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
