"""Go toolchain versions (``1.21``, ``1.21rc1``, ``1.21.3``) compared as cmd/go/internal/gover does.

A language version (``1.21``) sorts before its release candidates, which sort before its first
release: ``1.21 < 1.21rc1 < 1.21.0 < 1.21.1``. Toolchain names are ``go`` + version, and the
``golang.org/toolchain`` module's versions are ``v0.0.1-go<version>.<goos>-<goarch>``.
"""

from __future__ import annotations

import re

__all__ = ["parse", "compare", "is_valid", "is_lang", "lang", "toolchain_module_version"]

_VERSION = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?(?:(alpha|beta|rc)([1-9][0-9]*))?")


def parse(v: str) -> tuple[int, int, int, str, int] | None:
    """(major, minor, patch, kind, pre) with -1 for an absent patch; None if ``v`` is no Go version."""
    m = _VERSION.fullmatch(v)
    if m is None:
        return None
    major, minor, patch, kind, pre = m.groups()
    if minor is None and (patch is not None or kind is not None):
        return None
    if patch is not None and kind is not None:
        return None  # 1.21.0rc1 does not exist
    return (int(major), int(minor or 0), int(patch) if patch is not None else -1, kind or "", int(pre or 0))


def compare(x: str, y: str) -> int:
    """-1, 0 or 1; an invalid version sorts below every valid one (as gover.Compare)."""
    px, py = parse(x), parse(y)
    if px is None or py is None:
        return (px is not None) - (py is not None)
    # An absent patch (-1) sorts first, so 1.21 < 1.21rc1 < 1.21.0; among equal patches the
    # kinds sort "" (a language version) < alpha < beta < rc, which is also their byte order.
    return (px > py) - (px < py)


def is_valid(v: str) -> bool:
    return parse(v) is not None


def is_lang(v: str) -> bool:
    """A language version: 1.21 (no patch, no prerelease)."""
    p = parse(v)
    return p is not None and p[2] < 0 and not p[3]


def lang(v: str) -> str:
    """The language version of ``v``: 1.21.3 -> 1.21."""
    p = parse(v)
    if p is None:
        return ""
    return f"{p[0]}.{p[1]}" if "." in v or p[3] else str(p[0])


def toolchain_module_version(version: str, goos: str, goarch: str) -> str:
    """The golang.org/toolchain module version that carries Go ``version`` for a platform."""
    return f"v0.0.1-go{version}.{goos}-{goarch}"
