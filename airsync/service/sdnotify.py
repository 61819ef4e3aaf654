"""systemd's notify protocol (sd_notify(3)) without libsystemd.

A service with ``Type=notify`` tells systemd about itself by sending datagrams of newline-
separated ``KEY=value`` lines to the AF_UNIX socket named in ``$NOTIFY_SOCKET`` (a leading
``@`` names the abstract namespace: it is replaced by a NUL byte). ``READY=1`` ends start-up,
``STATUS=`` is the one line ``systemctl status`` shows, ``WATCHDOG=1`` must arrive at least
every ``$WATCHDOG_USEC`` microseconds (we ping at half that) or systemd restarts the service,
``STOPPING=1`` starts the stop. Formatting and the environment are pure; ``Notifier`` is the
few lines of socket I/O. Without ``$NOTIFY_SOCKET`` (not under systemd) every send is a no-op.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def message(**fields: str | int) -> bytes:
    """``message(READY=1, STATUS="idle")`` -> b"READY=1\\nSTATUS=idle"; values are one line."""
    lines = []
    for key, value in fields.items():
        text = " ".join(str(value).split())  # STATUS is one line: newlines would end the field
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode("utf-8", "backslashreplace")  # a file name that is not UTF-8 must not raise


def socket_address(env: Mapping[str, str]) -> str | None:
    """The address to send to, from ``$NOTIFY_SOCKET`` ("@name" -> abstract "\\0name")."""
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):
        return "\0" + path[1:]
    return path if path.startswith("/") else None


def watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC``; None when not asked for.

    ``$WATCHDOG_PID``, when set, names the process meant; another process must not ping.
    """
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


class Notifier:
    """Sends notify messages; quiet (and never raising) when there is nobody to tell."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = socket_address(env)
        self.watchdog = watchdog_interval(env)
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # A full receive queue (systemd busy) must never stall the event loop: drop instead.
            self._sock.setblocking(False)

    def notify(self, **fields: str | int) -> bool:
        """Send one message; True if it was sent. A datagram never blocks for long."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message(**fields), self.address)
        except OSError:
            return False  # systemd gone or socket full: the service itself carries on
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
