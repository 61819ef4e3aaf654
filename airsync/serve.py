"""``airsync serve``: a mirror over HTTP, as a GOPROXY the go command can use directly.

A mirror directory already is a GOPROXY tree (and carries ``sumdb/<name>/``), so serving it is
serving static files: Starlette's ``StaticFiles`` does that (GET and HEAD, Range and If-Range,
ETag and Last-Modified, no path outside the directory, no symlinks out of it), on Hypercorn's
trio worker. airsync adds only what is its own: ``.airsync/`` (resume state, rejected bytes)
and every other dot-path stay private, and it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from airsync.errors import ConfigError

log = structlog.get_logger("airsync.serve")

DEFAULT_LISTEN = "127.0.0.1:8080"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"bad listen address {value!r}: want HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "127.0.0.1", int(port)


class _HidePrivate:
    """404 for any path element starting with a dot: module paths never have one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(p.startswith(".") for p in scope["path"].split("/") if p):
            await PlainTextResponse("not found\n", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def app_for(root: Path) -> ASGIApp:
    if not root.is_dir():
        raise ConfigError(f"{root}: no such mirror directory")
    static = StaticFiles(directory=root, follow_symlink=False)
    return _HidePrivate(Starlette(routes=[Mount("/", app=static)]))


async def serve(root: Path, listen: str, shutdown: trio.Event | None = None) -> None:
    host, port = parse_listen(listen)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    log.info("serving", mirror=str(root), url=f"http://{host}:{port}/")
    trigger = shutdown.wait if shutdown is not None else None
    await hypercorn_serve(app_for(root), config, shutdown_trigger=trigger)
