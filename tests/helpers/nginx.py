"""A throwaway nginx serving a directory on 127.0.0.1, for end-to-end tests (a helper, not a test file).

``with Nginx(root, tmp) as ngx:`` writes ``tmp/nginx.conf`` (foreground, one process, every path it
writes — pid, logs, temp dirs — under ``tmp``), starts ``nginx -p tmp -c tmp/nginx.conf -e tmp/error.log``
on a free 127.0.0.1 port and waits (bounded) until the port accepts connections. ``ngx.url`` is
``http://127.0.0.1:PORT``. The server is a real static file server: ``Range``/``If-Range``, a strong
ETag (``"<mtime hex>-<size hex>"``), Last-Modified, ``sendfile``; no gzip; 404 for missing files.

The access log has one line per request: ``<request_uri> <status> <body_bytes_sent> "<Range header>"``.
``ngx.requests()`` parses it into ``Request`` tuples (the log is written unbuffered, so it is current as
soon as a response is finished), ``ngx.served_bytes()`` sums the body bytes, ``ngx.request_count()``
counts lines.

``delay_ms`` adds latency before every response (WAN stand-in); it needs the nginx echo module
(Debian: libnginx-mod-http-echo, a dependency of nginx-light), which is loaded from the modules
directory when present. On exit nginx gets SIGQUIT (graceful), then SIGKILL if it has not ended in a
few seconds. When started as root a ``user root;`` line keeps file access as the caller's; as any other
user no ``user`` directive is written (nginx would only warn that it is ignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

__all__ = ["Nginx", "Request", "require_nginx", "free_port"]

_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules")
_ECHO_MODULE = "ngx_http_echo_module.so"


class Request(NamedTuple):
    uri: str
    status: int
    bytes: int
    range: str | None


def require_nginx() -> str:
    """The nginx binary, or fail the test (never skip: CI installs it)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        pytest.fail("nginx not installed: apt-get install nginx-light", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _echo_module() -> str | None:
    return next((os.path.join(d, _ECHO_MODULE) for d in _MODULE_DIRS if os.path.exists(os.path.join(d, _ECHO_MODULE))), None)


class Nginx:
    def __init__(self, root: Path, tmp: Path, delay_ms: int = 0, *, start_timeout: float = 15.0) -> None:
        self.root = Path(root).resolve()
        self.tmp = Path(tmp).resolve()
        self.delay_ms = delay_ms
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.tmp / "nginx.conf"
        self.access_log = self.tmp / "access.log"
        self.error_log = self.tmp / "error.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("nginx is not running")
        return f"http://127.0.0.1:{self.port}"

    # --- configuration ---------------------------------------------------------------------------

    def _config(self, port: int) -> str:
        t = self.tmp
        head = []
        if self.delay_ms > 0:
            mod = _echo_module()
            if mod is None:
                pytest.fail(
                    "Nginx(delay_ms=...) needs the nginx echo module: apt-get install libnginx-mod-http-echo",
                    pytrace=False,
                )
            head.append(f"load_module {mod};")
        if os.geteuid() == 0:
            head.append("user root;")
        if self.delay_ms > 0:
            location = (
                f"        location / {{ echo_sleep {self.delay_ms / 1000:.3f}; echo_exec @file; }}\n"
                "        location @file { }\n"
            )
        else:
            location = "        location / { }\n"
        return "\n".join(head) + f"""
daemon off;
master_process off;
worker_processes 1;
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 256; }}
http {{
    types {{ }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    etag on;
    gzip off;
    server_tokens off;
    log_not_found off;
    keepalive_requests 10000;
    log_format airsync '$request_uri $status $body_bytes_sent "$http_range"';
    access_log {t}/access.log airsync;
    client_body_temp_path {t}/client_body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {self.root};
{location}    }}
}}
"""

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Nginx:
        binary = require_nginx()
        self.tmp.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(5):  # the free port may be taken between probing and nginx's bind
            port = free_port()
            self.conf.write_text(self._config(port))
            self.access_log.write_bytes(b"")
            err_start = self.error_log.stat().st_size if self.error_log.exists() else 0
            proc = subprocess.Popen(
                [binary, "-p", f"{self.tmp}/", "-c", str(self.conf), "-e", str(self.error_log)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_listening(proc, port):
                self.proc, self.port = proc, port
                return self
            _stop(proc)
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            log = self.error_log.read_bytes()[err_start:].decode(errors="replace") if self.error_log.exists() else ""
            last_error = (stderr + log).strip()
            if "Address already in use" not in last_error:
                break
        raise RuntimeError(f"nginx did not start (config {self.conf}):\n{last_error}")

    def _wait_listening(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what was served -------------------------------------------------------------------------

    def requests(self) -> list[Request]:
        out = []
        try:
            text = self.access_log.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            uri, status, sent, rng = line.split(" ", 3)
            rng = rng.strip('"')
            out.append(Request(uri, int(status), int(sent), None if rng in ("", "-") else rng))
        return out

    def request_count(self) -> int:
        return len(self.requests())

    def served_bytes(self) -> int:
        return sum(r.bytes for r in self.requests())


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGQUIT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
        proc.kill()
        proc.wait(grace)
