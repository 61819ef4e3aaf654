"""The user's Go environment, read as the go command reads it: proxies, checksum database, auth.

``from_environ`` takes the process environment (a mapping, so it stays pure) and gives what a
mirror job would take from it when the command line and the config are silent: ``GOPROXY``
(its ``direct`` and ``off`` entries dropped with one note, since airsync only fetches from
proxies), ``GOSUMDB``, ``GONOSUMDB`` (else ``GOPRIVATE``), ``GOINSECURE``, ``GOAUTH`` and where
the netrc file is (``NETRC``, else ``~/.netrc``).

Credentials follow cmd/go/internal/auth: ``parse_netrc`` is its netrc reader (machine, login
and password tokens; ``default`` ends the file; ``macdef`` bodies skipped), ``parse_goauth``
splits ``GOAUTH`` (``off``, ``netrc``, ``git DIR``, or a command), ``parse_auth_output`` reads a
GOAUTH command's answer (URL lines, a blank line, header lines, a blank line), and
``Credentials`` finds the headers for a URL by its longest stored prefix (host, then path
segments), as loadCredential does. The go command sends them over HTTPS only; airsync also
sends them over plain HTTP to hosts the user lists in ``GOINSECURE``.
"""

from __future__ import annotations

import base64
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from airsync.goproxy.upstream import DEFAULT_GOPROXY, goproxy_entries

__all__ = ["GoEnv", "from_environ", "clean_goproxy", "parse_netrc", "parse_goauth", "parse_auth_output",
           "Credentials", "host_matches"]

@dataclass(frozen=True)
class GoEnv:
    goproxy: str | None  # the list without direct/off; None when GOPROXY is unset
    gosumdb: str | None
    private: str | None  # GONOSUMDB, else GOPRIVATE
    insecure: str  # GOINSECURE
    goauth: str  # GOAUTH (default "netrc")
    netrc: str | None  # the netrc file the go command would read
    notes: tuple[str, ...] = ()


def clean_goproxy(value: str) -> tuple[str | None, list[str]]:
    """GOPROXY without its ``direct`` and ``off`` entries (None if nothing is left), and a note."""
    kept: list[str] = []
    dropped: list[str] = []
    for entry, sep in goproxy_entries(value):
        if entry.lower() in ("direct", "off"):
            dropped.append(entry)
        elif entry:
            kept.append(entry + sep)
    text = "".join(kept).rstrip(",|") or None
    notes = []
    if dropped:
        notes.append(f"GOPROXY={value}: {' and '.join(sorted(set(dropped)))} skipped (airsync fetches "
                     "from module proxies only, never from VCS hosts)")
    return text, notes


def from_environ(env: Mapping[str, str], home: str | None = None) -> GoEnv:
    notes: list[str] = []
    goproxy = None
    if env.get("GOPROXY", "").strip():
        goproxy, notes = clean_goproxy(env["GOPROXY"])
        if goproxy is None:
            notes.append(f"GOPROXY={env['GOPROXY']} names no module proxy; using {DEFAULT_GOPROXY}")
    netrc = env.get("NETRC") or (f"{home}/.netrc" if home else None)
    return GoEnv(
        goproxy=goproxy,
        gosumdb=env.get("GOSUMDB") or None,
        private=env.get("GONOSUMDB") or env.get("GOPRIVATE") or None,
        insecure=env.get("GOINSECURE", ""),
        goauth=env.get("GOAUTH") or "netrc",
        netrc=netrc,
        notes=tuple(notes),
    )


def parse_netrc(data: str) -> list[tuple[str, str, str]]:
    """(machine, login, password) entries, as cmd/go/internal/auth's parseNetrc reads them."""
    out: list[tuple[str, str, str]] = []
    machine = login = password = ""
    in_macro = False
    for line in data.split("\n"):
        if in_macro:
            if line == "":
                in_macro = False
            continue
        f = line.split()
        i = 0
        while i < len(f) - 1:
            key, value = f[i], f[i + 1]
            if key == "machine":
                machine, login, password = value, "", ""
            elif key == "login":
                login = value
            elif key == "password":
                password = value
            elif key == "macdef":
                in_macro = True
            if machine and login and password:
                out.append((machine, login, password))
                machine = login = password = ""
            i += 2
        if i < len(f) and f[i] == "default":
            break  # "it must be after all machine tokens": nothing after it counts
    return out


def parse_goauth(value: str) -> list[tuple[str, ...]]:
    """GOAUTH's commands: ('off',), ('netrc',), ('git', DIR) or ('command', ARG, ...).
    Raises ValueError for what the go command refuses."""
    out: list[tuple[str, ...]] = []
    for part in value.split(";"):
        words = part.split()
        if not words:
            raise ValueError(f"GOAUTH={value}: an empty command")
        if words[0] == "off":
            if len(value.split(";")) != 1:
                raise ValueError(f"GOAUTH={value}: off cannot be combined with other commands")
            out.append(("off",))
        elif words[0] == "netrc":
            out.append(("netrc",))
        elif words[0] == "git":
            if len(words) != 2 or not words[1].startswith("/"):
                raise ValueError(f"GOAUTH={value}: git needs the absolute path of a git working directory")
            out.append(("git", words[1]))
        else:
            out.append(("command", *words))
    return out


def parse_auth_output(text: str) -> dict[str, list[tuple[str, str]]]:
    """A GOAUTH command's answer: URL prefix -> headers. Raises ValueError if malformed."""
    creds: dict[str, list[tuple[str, str]]] = {}
    blocks = text.replace("\r\n", "\n").split("\n\n")
    i = 0
    while i < len(blocks):
        urls = [u for u in blocks[i].split("\n") if u]
        if not urls:
            i += 1
            continue
        if i + 1 >= len(blocks):
            raise ValueError("a URL block without the header block after it")
        for u in urls:
            if not u.startswith("https://"):
                raise ValueError(f"URL line {u!r} does not start with https://")
        headers = []
        for line in (h for h in blocks[i + 1].split("\n") if h):
            name, sep, val = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"header line {line!r} is not 'Name: value'")
            headers.append((name.strip(), val.strip()))
        for u in urls:
            creds[_prefix(u)] = headers
        i += 2
    return creds


def prefix_of(url: str) -> str:
    """A URL as the key credentials are kept under: "host[:port]/path" without a trailing slash."""
    return _prefix(url)


def _prefix(url: str) -> str:
    for scheme in ("https://", "http://"):
        url = url.removeprefix(scheme)
    host, slash, path = url.partition("/")
    return (host.rpartition("@")[2] + slash + path).rstrip("/")  # never the user:password@ part


@dataclass
class Credentials:
    """Request headers by URL prefix (``host`` or ``host/path``), as the go command keeps them."""

    by_prefix: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add_netrc(self, entries: list[tuple[str, str, str]]) -> None:
        # Earlier entries win for the same machine, as in the go command.
        for machine, login, password in reversed(entries):
            token = base64.b64encode(f"{login}:{password}".encode()).decode()
            self.by_prefix[_prefix(machine)] = [("Authorization", f"Basic {token}")]

    def add(self, creds: Mapping[str, list[tuple[str, str]]]) -> None:
        self.by_prefix.update(creds)

    def headers_for(self, url: str) -> list[tuple[str, str]]:
        """The headers stored for the longest prefix of ``url`` ("host[:port]/path"), or none."""
        current = _prefix(url)
        while True:
            found = self.by_prefix.get(current)
            if found is not None:
                return list(found)
            if "/" not in current:
                return []
            current = current.rsplit("/", 1)[0]

    def __repr__(self) -> str:  # never the secrets themselves, in any log or traceback
        return f"Credentials({len(self.by_prefix)} prefixes)"


def host_matches(patterns: str, url: str) -> bool:
    """Whether ``url`` ("host[:port]/path") matches a GOINSECURE-style list of globs, each
    matching as many leading path elements as it has (module.MatchPrefixPatterns)."""
    target = _prefix(url)
    host, slash, path = target.partition("/")
    portless = host.rsplit(":", 1)[0] + slash + path if ":" in host else target  # a pattern may omit the port
    for pat in (p.strip() for p in patterns.split(",")):
        for t in (target, portless):
            if pat and fnmatch.fnmatchcase("/".join(t.split("/")[: pat.count("/") + 1]), pat):
                return True
    return False
