"""The control API of the service: HTTP + JSON over a unix socket, versioned under ``/v1``.

Server side, a small Starlette app on Hypercorn's trio worker, in the daemon's own event loop
(handlers call the ``daemon.Daemon`` directly; nothing blocks). The socket is created with
mode 0660 (umask 0117 while binding) and the process's group, so the file's permissions
decide who may ask; a socket that still answers means another daemon runs, and is not taken.

    GET  /v1/status              daemon health and every job (running, queued, recent)
    GET  /v1/jobs                the jobs alone
    GET  /v1/jobs/{id}           one job
    POST /v1/jobs/{id}/cancel    cancel a job (queued: at once; running: it stops, resume-safe)
    POST /v1/sync-now            queue the config's lists and pending request files now
    POST /v1/bundle-now          queue a bundle of the mirror into daemon.bundle_dir
    POST /v1/usb-attach          {"path": MOUNT, "label": L}: queue a sync of the mirror to a medium

Errors are ``{"error": message}`` with 400 (bad request), 404 (no such job or route), 405 (wrong
method), 409 (a job that already finished), 422 (a medium without the marker, or one that
overlaps the service's own directories), 500 (a bug). The CLI's side is ``controlclient``
(the standard library's ``http.client`` over the socket, without this module's imports).
``curl --unix-socket PATH http://airsync/v1/status`` works as well.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airsync.errors import ConfigError
from airsync.service.controlclient import API, INSPECT_TIMEOUT
from airsync.service.jobs import JobError, json_safe
from airsync.service.marker import MarkerError


class SafeJSON(JSONResponse):
    """Strict JSON that cannot fail: a job named after a file that is not UTF-8, or a float
    that is not finite, would otherwise turn every /v1/status into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(json_safe(content), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return SafeJSON({"error": message}, status_code=status)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    # Starlette's own answers (no such route 404, wrong method 405) are plain text: JSON here too.
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail)


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    return _error(500, f"internal error: {exc!r}")


def app_for(daemon) -> Starlette:
    def job_id(request: Request) -> int | None:
        try:
            return int(request.path_params["id"])
        except ValueError:
            return None

    async def status(_request: Request) -> JSONResponse:
        return SafeJSON(daemon.status_view())

    async def jobs(_request: Request) -> JSONResponse:
        return SafeJSON({"jobs": daemon.jobs_view()})

    async def job(request: Request) -> JSONResponse:
        jid = job_id(request)
        if jid is None or jid not in daemon.queue.jobs:
            return _error(404, f"no job {request.path_params['id']}")
        return SafeJSON({"job": daemon.job_view(daemon.queue.get(jid))})

    async def cancel(request: Request) -> JSONResponse:
        jid = job_id(request)
        if jid is None or jid not in daemon.queue.jobs:
            return _error(404, f"no job {request.path_params['id']}")
        try:
            j = daemon.cancel(jid)
        except JobError as e:
            return _error(409, str(e))
        return SafeJSON({"job": daemon.job_view(j)})

    async def sync_now(_request: Request) -> JSONResponse:
        if daemon.stopping:
            return _error(409, "the service is stopping")
        return SafeJSON({"jobs": [daemon.job_view(j) for j in daemon.sync_now()]})

    async def bundle_now(_request: Request) -> JSONResponse:
        if daemon.stopping:
            return _error(409, "the service is stopping")
        try:
            job, _ = daemon.bundle_now()
        except ConfigError as e:
            return _error(409, str(e))
        return SafeJSON({"job": daemon.job_view(job)})

    async def usb_attach(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body must be JSON: {\"path\": MOUNT_POINT, \"label\": LABEL}")
        if not isinstance(body, dict) or not isinstance(body.get("path"), str) \
                or not isinstance(body.get("label", ""), str):
            return _error(400, "want {\"path\": MOUNT_POINT, \"label\": LABEL} (strings)")
        if daemon.stopping:
            return _error(409, "the service is stopping; attach the medium again after it started")
        try:
            with trio.move_on_after(INSPECT_TIMEOUT) as scope:
                seen = await trio.to_thread.run_sync(
                    daemon.inspect_medium, body["path"], body.get("label", ""), abandon_on_cancel=True
                )
        except (MarkerError, ConfigError) as e:
            return _error(422, str(e))
        if scope.cancelled_caught:
            return _error(504, f"{body['path']}: the medium did not answer within {INSPECT_TIMEOUT:.0f} s")
        j, new = daemon.submit_usb(*seen, "usb-attach")
        return SafeJSON({"job": daemon.job_view(j), "new": new}, status_code=202)

    return Starlette(exception_handlers={HTTPException: _http_error, Exception: _internal_error}, routes=[
        Route(f"{API}/status", status),
        Route(f"{API}/jobs", jobs),
        Route(f"{API}/jobs/{{id}}", job),
        Route(f"{API}/jobs/{{id}}/cancel", cancel, methods=["POST"]),
        Route(f"{API}/sync-now", sync_now, methods=["POST"]),
        Route(f"{API}/bundle-now", bundle_now, methods=["POST"]),
        Route(f"{API}/usb-attach", usb_attach, methods=["POST"]),
    ])


def _in_use(path: Path) -> bool:
    """Does something answer on the socket at ``path``? (Then it is not ours to replace.)"""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def refuse_if_in_use(path: Path) -> None:
    if _in_use(path):
        raise ConfigError(f"{path}: another airsync daemon is listening there (see: systemctl status airsync)")


async def serve(daemon, path: Path, shutdown: trio.Event, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve the API on the unix socket ``path``; ``task_status.started()`` once it listens."""
    refuse_if_in_use(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{path.parent}: cannot create the control socket's directory: {e.strerror}") from None
    config = Config()
    config.bind = [f"unix:{path}"]
    config.umask = 0o117  # the socket is born 0660: owner and group only
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    try:
        await hypercorn_serve(app_for(daemon), config, shutdown_trigger=shutdown.wait, task_status=task_status)
    except OSError as e:
        raise ConfigError(f"{path}: cannot listen there: {e.strerror}") from None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
