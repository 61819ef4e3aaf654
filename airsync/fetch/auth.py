"""Credentials for private proxies, gathered once per job as the go command gathers them (GOAUTH).

``load`` runs ``GOAUTH``'s commands in reverse order, so that the first one named wins where two
give headers for one prefix: ``netrc`` reads the netrc file (``NETRC`` or ``~/.netrc``), a command
is run with no arguments and its answer parsed (``goenv.parse_auth_output``); ``off`` turns it
all off. ``git DIR`` (git's credential helpers) is not supported: a note says so, and the rest is
used. A command that fails is named in a note without its output, which may hold secrets; the
headers themselves never reach a log, a status or a manifest (``Credentials`` hides them).
"""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
from pathlib import Path

from airsync.goproxy import goenv
from airsync.goproxy.goenv import Credentials
from airsync.goproxy.upstream import Upstream

COMMAND_TIMEOUT = 60.0


def load(goauth: str, netrc: str | None) -> tuple[Credentials, list[str]]:
    """(credentials, notes) for this job; raises ValueError for a GOAUTH the go command refuses."""
    creds = Credentials()
    notes: list[str] = []
    for cmd in reversed(goenv.parse_goauth(goauth)):
        kind = cmd[0]
        if kind == "off":
            return Credentials(), notes
        if kind == "netrc":
            path = Path(netrc) if netrc else Path.home() / ".netrc"
            try:
                creds.add_netrc(goenv.parse_netrc(path.read_text("utf-8", errors="replace")))
            except FileNotFoundError:
                pass
            except OSError as e:
                notes.append(f"GOAUTH=netrc: cannot read {path}: {e.strerror}")
        elif kind == "git":
            notes.append(f"GOAUTH=git {cmd[1]}: git credential helpers are not supported by airsync; "
                         "use netrc or a GOAUTH command")
        else:
            argv = list(cmd[1:])
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as e:
                notes.append(f"GOAUTH command {argv[0]}: {getattr(e, 'strerror', None) or 'timed out'}")
                continue
            if r.returncode != 0:
                notes.append(f"GOAUTH command {argv[0]}: exit status {r.returncode}")
                continue
            try:
                creds.add(goenv.parse_auth_output(r.stdout))
            except ValueError as e:
                notes.append(f"GOAUTH command {argv[0]}: {e}")
    return creds, notes


def take_userinfo(up: Upstream, creds: Credentials) -> Upstream:
    """``up`` without the user:password in its URL, which go to ``creds`` for its prefix instead."""
    parts = urllib.parse.urlsplit(up.url)
    if parts.username is None:
        return up
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    host = parts.netloc.rpartition("@")[2]
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    creds.add({goenv.prefix_of(bare): [("Authorization", f"Basic {token}")]})
    return Upstream(bare, up.next_on_any_error)
