"""The CLI's control client against small unix-socket servers that answer badly or not at all
(the real service's answers are in test_control.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from airsync.service.controlclient import Client, ControlError, DaemonNotRunning


@contextmanager
def unix_server(path: Path, answer: bytes | None, delay: float = 0.0) -> Iterator[list[bytes]]:
    """Accept connections on ``path``; read one request each and send ``answer`` after ``delay``
    seconds (None: say nothing until the client gives up). Yields the requests received."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)
    srv.settimeout(0.05)  # accept wakes often to see whether the test is over
    got: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    got.append(head + b"\r\n\r\n" + rest)
                    if answer is None:
                        done.wait(5)
                    else:
                        done.wait(delay)
                        conn.sendall(answer)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield got
    finally:
        done.set()
        srv.close()
        t.join(10)


def answer_of(body: bytes, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    """An HTTP/1.1 answer carrying ``body`` with its length (``headers``: more lines, each ending in CRLF)."""
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, headers, len(body), body)


def test_an_error_answer_is_a_control_error_with_its_message(tmp_path):
    body = b'{"error": "job 3 already done"}'
    answer = answer_of(body, b"409 Conflict", b"Content-Type: application/json\r\n")
    with unix_server(tmp_path / "s", answer) as got, Client(tmp_path / "s") as c:
        with pytest.raises(ControlError, match="^job 3 already done$"):
            c.cancel(3)
    assert got[0].startswith(b"POST /v1/jobs/3/cancel HTTP/1.1\r\n")


def test_a_json_body_is_sent_with_its_type(tmp_path):
    body = b'{"job": {"id": 1}, "new": true}'
    answer = answer_of(body)
    with unix_server(tmp_path / "s", answer) as got, Client(tmp_path / "s") as c:
        assert c.usb_attach("/media/stick", "sdb1") == {"job": {"id": 1}, "new": True}
    head, _, sent = got[0].partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head and sent == b'{"path": "/media/stick", "label": "sdb1"}'


def test_an_answer_that_is_not_json_is_a_control_error(tmp_path):
    answer = answer_of(b"oops\n", b"502 Bad Gateway")
    with unix_server(tmp_path / "s", answer), Client(tmp_path / "s") as c:
        with pytest.raises(ControlError, match="answered 502 without JSON"):
            c.status()


def test_no_answer_in_time_is_a_control_error(tmp_path):
    with unix_server(tmp_path / "s", None), Client(tmp_path / "s", timeout=0.3) as c:
        with pytest.raises(ControlError, match="did not answer in time"):
            c.status()


def test_an_answer_cut_short_is_a_control_error_not_a_stopped_daemon(tmp_path):
    with unix_server(tmp_path / "s", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"), Client(tmp_path / "s") as c:
        with pytest.raises(ControlError, match="closed the connection without a complete answer"):
            c.status()
    with unix_server(tmp_path / "t", b""), Client(tmp_path / "t") as c:  # accepted, then closed
        with pytest.raises(ControlError, match="closed the connection without a complete answer"):
            c.status()


def test_an_error_answer_without_a_message_names_its_status(tmp_path):
    body = b'{"detail": "Internal Server Error"}'
    answer = answer_of(body, b"500 Internal Server Error")
    with unix_server(tmp_path / "s", answer), Client(tmp_path / "s") as c:
        with pytest.raises(ControlError, match="^HTTP 500$"):
            c.status()


def test_usb_attach_waits_as_long_as_the_service_may_inspect_the_medium(tmp_path):
    # The service takes up to INSPECT_TIMEOUT to read a medium's marker: usb-attach must not give
    # up before it answers (the job would start after "did not answer in time").
    body = b'{"job": {"id": 2}, "new": true}'
    answer = answer_of(body)
    with unix_server(tmp_path / "s", answer, delay=0.5), Client(tmp_path / "s", timeout=0.2) as c:
        assert c.usb_attach("/media/stick", "sdb1")["job"] == {"id": 2}
        with pytest.raises(ControlError, match="did not answer in time"):
            c.status()  # the client's own timeout for everything else


def test_a_socket_this_user_may_not_open_says_so(tmp_path, monkeypatch):
    # (As root, as in CI, a real socket's mode never refuses: the refusal is made here.)
    from airsync.service import controlclient

    def refuse(self):  # noqa: ANN001
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(controlclient._UnixConnection, "connect", refuse)
    with Client(tmp_path / "s") as c, pytest.raises(DaemonNotRunning, match="permission denied .*group airsync"):
        c.status()


def test_nothing_listening_says_the_daemon_is_not_running(tmp_path):
    with Client(tmp_path / "nothing.sock") as c, pytest.raises(DaemonNotRunning, match="systemctl status airsync"):
        c.status()
    stale = tmp_path / "stale.sock"  # a socket file left behind by a daemon that died
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    with Client(stale) as c, pytest.raises(DaemonNotRunning, match="not running"):
        c.status()


def test_the_status_command_imports_neither_the_server_nor_httpx(tmp_path):
    # The point of this module: `airsync status --json` starts without trio, Hypercorn, Starlette,
    # httpx, rich or structlog (before: 0.18 s, most of it these imports); the table needs rich.
    body = b'{"daemon": {"pid": 1}, "jobs": []}'
    answer = answer_of(body)
    heavy = {"trio", "hypercorn", "starlette", "httpx", "rich", "structlog"}
    with unix_server(tmp_path / "s", answer):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "airsync", "status", "--json",
                            "--socket", str(tmp_path / "s")], capture_output=True, text=True)
    assert r.returncode == 0 and '"pid": 1' in r.stdout, r.stdout + r.stderr[-500:]
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "airsync.service.controlclient" in imported and not imported & heavy
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "airsync", "status",
                        "--socket", str(tmp_path / "nothing.sock")], capture_output=True, text=True)
    assert r.returncode == 1 and "daemon is not running" in r.stderr, r.stderr[-500:]


def test_each_request_has_a_connection_of_its_own(tmp_path):
    # A server that closes idle connections between two redraws of `status --watch` must not
    # make the second one fail: the client never reuses a connection.
    body = b'{"daemon": {}, "jobs": []}'
    answer = answer_of(body)
    with unix_server(tmp_path / "s", answer) as got, Client(tmp_path / "s") as c:
        assert c.status() == c.status() == {"daemon": {}, "jobs": []}
    assert len(got) == 2
