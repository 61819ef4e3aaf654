"""The list of upstream module proxies, parsed from a GOPROXY-style setting.

``parse_goproxy`` follows the go command (cmd/go/internal/modfetch/proxy.go): entries are split
on ``,`` and ``|``, and the separator after an entry decides when the next entry is tried: after
``,`` only when this one answered 404/410, after ``|`` on any error. Unlike the go command it
refuses ``direct`` and ``off``: airsync fetches only from module proxies, because a mirror that
fell back to ``direct`` would reach out to VCS hosts (git, hg, ...), which an air-gapped
mirror's feeding side must never do. Schemes are http, https and file; like the go command, a
host-looking entry without a scheme (``proxy.example.com``) means https. Pure: nothing here
touches the network or the file system.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from airsync.errors import ConfigError

__all__ = ["DEFAULT_GOPROXY", "Upstream", "goproxy_entries", "parse_goproxy", "file_url"]

DEFAULT_GOPROXY = "https://proxy.golang.org"


@dataclass(frozen=True)
class Upstream:
    """One GOPROXY entry: its URL (no trailing slash) and what happens when it fails.

    ``next_on_any_error`` is True when the entry was followed by ``|`` (any failure moves on to
    the next entry), False when followed by ``,`` or last (only 404/410 moves on).
    """

    url: str
    next_on_any_error: bool

    def __repr__(self) -> str:
        # Proxy URLs may carry credentials (https://user:token@host); logs must not.
        return f"Upstream(url={_redact(self.url)!r}, next_on_any_error={self.next_on_any_error})"

    @property
    def redacted(self) -> str:
        """The URL with any password replaced, for messages and logs."""
        return _redact(self.url)

    @property
    def is_file(self) -> bool:
        return urllib.parse.urlsplit(self.url).scheme == "file"

    @property
    def file_root(self) -> Path:
        """The directory a file:// upstream reads from (percent-decoded)."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme != "file":
            raise ValueError(f"not a file:// upstream: {self.redacted}")
        # "file://" is the root: url has no trailing slash, so "/" itself became "".
        return Path(_decode_path(parts.path) or "/")

    def falls_through(self, not_found: bool) -> bool:
        """Whether a failure here moves on to the next entry (``not_found``: it was a 404/410)."""
        return not_found or self.next_on_any_error


_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_PORT_THEN_PATH = re.compile(r"[0-9]*(/.*)?", re.DOTALL)
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def _decode_path(path: str) -> str:
    # Bytes, then the file system encoding: the inverse of Path.as_uri(), also for non-UTF-8 names.
    return os.fsdecode(urllib.parse.unquote_to_bytes(path))


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    # "xxxxx" is what Go's url.Redacted writes.
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{name}:xxxxx@{host}"))


def _reject_keyword(entry: str) -> None:
    word = entry.lower()
    if word == "direct":
        raise ConfigError(
            "GOPROXY entry 'direct' is not supported: airsync fetches only from module proxies, "
            "and 'direct' would make the mirror contact VCS hosts (git, hg, ...) itself, which a "
            f"mirror must not do. Remove it, e.g. GOPROXY={DEFAULT_GOPROXY}"
        )
    if word == "off":
        raise ConfigError(
            "GOPROXY entry 'off' is not supported: airsync fetches only from module proxies and "
            "needs at least one (it never contacts VCS hosts, so there is nothing to turn off). "
            f"Remove it, e.g. GOPROXY={DEFAULT_GOPROXY}"
        )


def _has_scheme(entry: str) -> bool:
    m = _SCHEME.match(entry)
    if m is None:
        return False
    if m.group(1).lower() in ("http", "https", "file") or m.group(2).startswith("/"):
        return True
    # "localhost:3000/go" is a host and port, not a URL with scheme "localhost".
    return _PORT_THEN_PATH.fullmatch(m.group(2)) is None


def _looks_like_path(entry: str) -> bool:
    return entry.startswith(("/", ".", "~", "\\")) or _DRIVE.match(entry) is not None


def _normalize(entry: str) -> str:
    """Check one non-empty, non-keyword entry and return its URL without trailing slash."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in entry):
        # urlsplit silently deletes tabs and newlines; a URL containing them is a typo.
        raise ConfigError(f"GOPROXY entry {entry!r} contains control characters")
    if _looks_like_path(entry):
        hint = file_url(Path(entry)) if entry.startswith("/") else "file:///absolute/path"
        raise ConfigError(
            f"GOPROXY entry {entry!r} is a path, not a URL: write a directory as a file URL, "
            f"e.g. {hint}"
        )
    if not _has_scheme(entry):
        host = entry.split("/", 1)[0]
        if "." in host or ":" in host:
            # The go command reads "proxy.example.com" or "localhost:3000" as https.
            entry = "https://" + entry
        else:
            raise ConfigError(
                f"GOPROXY entry {entry!r} is not a URL: use https://host/path, http://host/path "
                "or file:///absolute/path"
            )

    parts = urllib.parse.urlsplit(entry)
    scheme = parts.scheme.lower()
    shown = _redact(entry)
    if scheme not in ("http", "https", "file"):
        raise ConfigError(
            f"GOPROXY entry {shown!r} has unsupported scheme {parts.scheme!r} (use https, http or file)"
        )
    if "?" in entry or "#" in entry:
        # Paths are appended to the base URL; a query or fragment would end up in the middle.
        raise ConfigError(f"GOPROXY entry {shown!r} must not contain a query or fragment")
    if _PERCENT.search(parts.path):
        raise ConfigError(f"GOPROXY entry {shown!r} has an invalid percent escape")

    if scheme == "file":
        if parts.netloc:
            # cmd/go rejects file URLs with "non-path elements"; file://localhost/x included.
            raise ConfigError(
                f"GOPROXY entry {shown!r} names a host; a file URL must be file:///absolute/path "
                "(three slashes)"
            )
        if parts.path and not parts.path.startswith("/"):
            raise ConfigError(f"GOPROXY entry {shown!r} must hold an absolute path: file:///absolute/path")
        decoded = _decode_path(parts.path)
        if "\x00" in decoded:
            raise ConfigError(f"GOPROXY entry {shown!r} has a NUL byte in its path")
        return "file://" + parts.path.rstrip("/")

    try:
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ConfigError(f"GOPROXY entry {shown!r}: {exc}") from None
    if not hostname:
        raise ConfigError(f"GOPROXY entry {shown!r} has no host")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def goproxy_entries(value: str) -> list[tuple[str, str]]:
    """(entry, the separator after it: "," "|" or "" at the end) of a GOPROXY-style list, as the
    go command splits it; entries are stripped of spaces and tabs, and may be empty."""
    pieces = re.split(r"([,|])", value)  # entry, separator, entry, ...
    return [(pieces[i].strip(" \t"), pieces[i + 1] if i + 1 < len(pieces) else "") for i in range(0, len(pieces), 2)]


def parse_goproxy(value: str) -> list[Upstream]:
    """Parse a GOPROXY-style list into upstreams, in order; raise ConfigError on any bad entry.

    The separator immediately after an entry sets its ``next_on_any_error`` (as in the go
    command, where ``a|,b`` gives ``a`` the ``|``); the last entry gets False since nothing
    follows it.
    """
    result: list[Upstream] = []
    for entry, sep in goproxy_entries(value):
        if not entry:
            continue
        _reject_keyword(entry)
        result.append(Upstream(_normalize(entry), sep == "|"))
    if not result:
        raise ConfigError(
            f"GOPROXY is empty: name at least one module proxy, e.g. GOPROXY={DEFAULT_GOPROXY}"
        )
    last = result[-1]
    if last.next_on_any_error:
        result[-1] = Upstream(last.url, False)
    return result


def file_url(path: Path) -> str:
    """A ``file:///abs/path`` URL for ``path`` (percent-encoded; relative paths are made absolute).

    A relative path reads the current directory; pass an absolute path to stay pure.
    """
    path = Path(path)
    if not path.is_absolute():
        path = path.absolute()
    url = path.as_uri()
    # as_uri() keeps a trailing slash only for "/"; our URLs never end in one.
    return url.rstrip("/") if url != "file:///" else "file://"
