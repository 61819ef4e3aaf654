"""The connection loop of ``airsync serve``: HTTP/1.1 over trio sockets, for any app with
``respond(request) -> (status, headers, body)``.

A request head is read (bounded in size and time), parsed by ``http1``, answered by the app, and
the answer written with one ``send_all`` (head and body together) or, for a ``Stream`` body, the
head and then whatever the stream sends. Keep-alive and pipelining work as HTTP/1.1 wants; a
connection idle for 75 s, or one that takes more than 20 s to send a head, is closed; a bad head
is answered (400, 405, 413, 431, 505) and the connection closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
import trio

from airsync.carry import http1

log = structlog.get_logger("airsync.serve")


@dataclass(frozen=True)
class Stream:
    """A body too large to hold: ``size`` bytes that ``send(stream)`` writes."""

    size: int
    send: Callable[[trio.abc.Stream], Awaitable[None]]


TEXT = ((b"content-type", b"text/plain; charset=utf-8"),)
_IDLE_SECONDS = 75.0  # a keep-alive connection with no request for this long is closed
_HEAD_SECONDS = 20.0  # the time a client gets to send one request head


async def _connection(app, stream: trio.SocketStream) -> None:
    """One client connection: request heads in, answers out, until either side closes."""
    buf = bytearray()
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                timeout = _IDLE_SECONDS if not buf else _HEAD_SECONDS
                with trio.move_on_after(timeout):
                    while (end := buf.find(b"\r\n\r\n")) < 0 and len(buf) <= http1.MAX_HEAD:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        buf += data
                if end < 0:
                    if len(buf) > http1.MAX_HEAD:
                        await _send_error(stream, 431, "request head too large")
                    return
            if end > http1.MAX_HEAD:
                await _send_error(stream, 431, "request head too large")
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            try:
                req = http1.parse_head(head)
            except http1.BadRequest as e:
                await _send_error(stream, e.status, str(e))
                return
            status, headers, body = await app.respond(req)
            keep = req.keep_alive
            size = body.size if isinstance(body, Stream) else len(body)
            if not any(k == b"content-length" for k, _ in headers):
                headers.append((b"content-length", str(size).encode()))
            out = http1.response_head(status, headers, keep)
            if isinstance(body, Stream):
                await stream.send_all(out)
                if req.method != "HEAD":
                    await body.send(stream)
            else:
                await stream.send_all(out + body if req.method != "HEAD" and status != 304 else out)
            if not keep:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    except OSError as e:  # a file or the store failed mid-stream: the client sees a short body
        log.error("cannot serve", error=str(e))
    finally:
        with trio.move_on_after(1):
            await stream.aclose()


async def _send_error(stream, status: int, why: str) -> None:
    body = f"{why}\n".encode()
    head = http1.response_head(status, [*TEXT, (b"content-length", str(len(body)).encode())], False)
    with trio.move_on_after(5):
        await stream.send_all(head + body)



async def serve_http(app, host: str, port: int, shutdown: trio.Event | None = None, *,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``host:port`` and serve ``app`` until ``shutdown`` is set (or cancelled)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, lambda s: _connection(app, s), listeners)
        task_status.started()
        if shutdown is not None:
            await shutdown.wait()
            nursery.cancel_scope.cancel()
