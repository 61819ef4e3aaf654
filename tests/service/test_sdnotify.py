"""sd_notify: message format, $NOTIFY_SOCKET (path and abstract), $WATCHDOG_USEC, real datagrams."""

import os
import socket

import pytest

from airsync.service import sdnotify


def test_message_is_key_value_lines_each_one_line():
    assert sdnotify.message(READY=1, STATUS="2 jobs\nrunning") == b"READY=1\nSTATUS=2 jobs running"


def test_a_name_that_is_not_utf8_does_not_raise():
    # A request file named b"bad\xff.sum" is "bad\udcff.sum" in Python: STATUS shows it escaped.
    assert sdnotify.message(STATUS="job bad\udcff.sum \ud800") == b"STATUS=job bad\\udcff.sum \\ud800"


@pytest.mark.parametrize(
    "value,address",
    [("/run/systemd/notify", "/run/systemd/notify"), ("@abc", "\0abc"), ("", None), ("relative", None)],
)
def test_socket_address(value, address):
    assert sdnotify.socket_address({"NOTIFY_SOCKET": value}) == address
    assert sdnotify.socket_address({}) is None


def test_watchdog_interval_is_half_the_timeout():
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "x"}) is None
    assert sdnotify.watchdog_interval({}) is None


def _receiver(address: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(address)
    s.settimeout(5)
    return s


def test_sends_to_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    with _receiver(path) as rx:
        n = sdnotify.Notifier({"NOTIFY_SOCKET": path})
        assert n.notify(READY=1, STATUS="listening")
        assert rx.recv(4096) == b"READY=1\nSTATUS=listening"
        n.close()


def test_sends_to_an_abstract_socket():
    name = f"airsync-test-{os.getpid()}"
    with _receiver("\0" + name) as rx:
        n = sdnotify.Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.notify(WATCHDOG=1)
        assert rx.recv(4096) == b"WATCHDOG=1"
        n.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path):
    assert not sdnotify.Notifier({}).notify(READY=1)
    gone = sdnotify.Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert not gone.notify(READY=1)


def test_a_full_queue_drops_messages_instead_of_blocking(tmp_path):
    path = str(tmp_path / "notify")
    with _receiver(path):  # never read: its queue fills up
        n = sdnotify.Notifier({"NOTIFY_SOCKET": path})
        sent = [n.notify(WATCHDOG=1) for _ in range(1000)]
        assert sent[0] and not sent[-1]
        n.close()
