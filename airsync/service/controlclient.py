"""The CLI's side of the service's control API: HTTP/1.1 + JSON over the unix socket.

``airsync status``, ``jobs cancel``, ``sync-now``, ``bundle-now`` and ``usb-attach`` each send a
request or two to the running service and print the answer. The standard library's
``http.client`` does that over a unix socket (a connection whose ``connect`` opens the socket
instead of a TCP one); the server side (``control``: trio, Hypercorn, Starlette) and httpx stay
out of these commands, which started in 0.18 s with them (``airsync status``, the imports 0.11 s
of it). Nothing listening, or a socket this user may not open, is ``DaemonNotRunning`` with the
hint to look at systemd; an answer that is an error, not JSON or cut short is ``ControlError``.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from airsync.errors import AirsyncError

API = "/v1"
INSPECT_TIMEOUT = 30.0  # seconds a medium may take to show its marker before usb-attach gives up


class ControlError(AirsyncError):
    """The daemon answered with an error."""


class DaemonNotRunning(AirsyncError):
    """Nobody answers on the control socket."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("airsync", timeout=timeout)  # the Host header; the socket decides where
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class Client:
    """Requests to the service listening on the unix socket ``path``, a connection each: one kept
    between the redraws of ``status --watch`` could be closed by the server meanwhile, and a
    unix socket costs microseconds to open."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._conn = _UnixConnection(str(path), timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def request(self, method: str, url: str, body: bytes | None = None,
                timeout: float | None = None) -> tuple[int, bytes]:
        """One exchange: ``url`` is the path (``/v1/...``), ``body`` JSON bytes or None, ``timeout``
        this request's (default: the client's); the answer's status and body, whatever they are."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self._conn.timeout = self.timeout if timeout is None else timeout
        try:
            self._conn.request(method, url, body=body, headers=headers)
            answer = self._conn.getresponse()
            return answer.status, answer.read()
        except TimeoutError:
            raise ControlError(f"{self.path}: the daemon did not answer in time (see: systemctl status airsync)") from None
        except PermissionError:
            raise DaemonNotRunning(
                f"{self.path}: permission denied (the control socket is for root and group airsync)"
            ) from None
        except (ConnectionResetError, BrokenPipeError, http.client.HTTPException):
            # It answered, or at least accepted: running, but it broke off (stopping, or a bug).
            raise ControlError(f"{self.path}: the daemon closed the connection without a complete answer "
                               "(see: systemctl status airsync)") from None
        except OSError:
            raise DaemonNotRunning(
                f"the airsync daemon is not running (nothing answers on {self.path}); "
                "see: systemctl status airsync"
            ) from None
        finally:
            self._conn.close()  # never reused (see the class)

    def _call(self, method: str, url: str, body: Any = None, timeout: float | None = None) -> Any:
        status, raw = self.request(method, f"{API}{url}", None if body is None else json.dumps(body).encode(), timeout)
        try:
            data = json.loads(raw)
        except ValueError:
            raise ControlError(f"{self.path}: the daemon answered {status} without JSON") from None
        if status >= 400:
            raise ControlError((data.get("error") if isinstance(data, dict) else None) or f"HTTP {status}")
        return data

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def cancel(self, job_id: int | str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/cancel")["job"]

    def sync_now(self) -> list[dict[str, Any]]:
        return self._call("POST", "/sync-now")["jobs"]

    def bundle_now(self) -> dict[str, Any]:
        return self._call("POST", "/bundle-now")["job"]

    def usb_attach(self, path: str, label: str) -> dict[str, Any]:
        # The service waits up to INSPECT_TIMEOUT for the medium's marker, then answers (and may
        # queue the sync): giving up before it would report a failure for a job that starts.
        return self._call("POST", "/usb-attach", {"path": path, "label": label},
                          timeout=max(self.timeout, INSPECT_TIMEOUT + 10))
