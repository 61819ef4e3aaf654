"""Go's flavour of semantic versions (golang.org/x/mod/semver), plus pseudo-version detection.

A version is ``vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]``: the leading ``v`` is required, numbers have
no leading zeros, prerelease and build are non-empty dot-separated identifiers of ``[0-9A-Za-z-]`` and
numeric prerelease identifiers have no leading zeros. ``vMAJOR`` and ``vMAJOR.MINOR`` are valid
shorthands for ``vMAJOR.0.0`` and ``vMAJOR.MINOR.0`` (valid but not canonical). Everything here parses
the string with one small hand-written parser, exactly as Go does, so the answers agree with the go
command byte for byte; a regular expression would make it too easy to drift (``\\d`` matching Unicode
digits, ``$`` matching before a newline).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "is_valid",
    "canonical",
    "compare",
    "sort_key",
    "major",
    "major_minor",
    "prerelease",
    "build",
    "is_pseudo",
]


@dataclass(frozen=True)
class _Parsed:
    major: str
    minor: str
    patch: str
    short: str  # what canonical() must append for the vX / vX.Y shorthands
    prerelease: str  # with its leading '-', or ''
    build: str  # with its leading '+', or ''


def _is_digit(c: str) -> bool:
    # str.isdigit() accepts other scripts' digits; Go only means ASCII.
    return "0" <= c <= "9"


def _is_ident_char(c: str) -> bool:
    return "A" <= c <= "Z" or "a" <= c <= "z" or "0" <= c <= "9" or c == "-"


def _parse_int(s: str) -> tuple[str, str] | None:
    i = 0
    while i < len(s) and _is_digit(s[i]):
        i += 1
    if i == 0 or (s[0] == "0" and i != 1):
        return None
    return s[:i], s[i:]


def _is_bad_num(ident: str) -> bool:
    # An all-digit identifier with a leading zero ("01") is not allowed in a prerelease.
    return len(ident) > 1 and ident[0] == "0" and all(_is_digit(c) for c in ident)


def _split_idents(s: str, *, numeric_rule: bool) -> bool:
    """Whether s (without its leading '-' or '+') is a valid dot-separated identifier list."""
    for ident in s.split("."):
        if ident == "" or not all(_is_ident_char(c) for c in ident):
            return False
        if numeric_rule and _is_bad_num(ident):
            return False
    return True


# Mirrors hold the same few versions ("v1.0.0") thousands of times: parse each once.
@functools.lru_cache(maxsize=8192)
def _parse(v: str) -> _Parsed | None:
    if not v or v[0] != "v":
        return None
    r = _parse_int(v[1:])
    if r is None:
        return None
    maj, rest = r
    if rest == "":
        return _Parsed(maj, "0", "0", ".0.0", "", "")
    if rest[0] != ".":
        return None
    r = _parse_int(rest[1:])
    if r is None:
        return None
    minor, rest = r
    if rest == "":
        return _Parsed(maj, minor, "0", ".0", "", "")
    if rest[0] != ".":
        return None
    r = _parse_int(rest[1:])
    if r is None:
        return None
    patch, rest = r
    pre = ""
    if rest.startswith("-"):
        end = rest.find("+")
        if end < 0:
            end = len(rest)
        pre, rest = rest[:end], rest[end:]
        if not _split_idents(pre[1:], numeric_rule=True):
            return None
    bld = ""
    if rest.startswith("+"):
        bld, rest = rest, ""
        if not _split_idents(bld[1:], numeric_rule=False):
            return None
    if rest != "":
        return None
    return _Parsed(maj, minor, patch, "", pre, bld)


def is_valid(v: str) -> bool:
    """Whether v is a valid semantic version ('v1' and 'v1.2' count, as in Go)."""
    return _parse(v) is not None


def canonical(v: str) -> str:
    """vMAJOR.MINOR.PATCH[-PRERELEASE] of v, dropping build metadata (even '+incompatible'); '' if invalid.

    Module versions keep '+incompatible': see ``airsync.modpath.canonical_version``.
    """
    p = _parse(v)
    if p is None:
        return ""
    if p.build:
        return v[: len(v) - len(p.build)]
    return v + p.short


def major(v: str) -> str:
    """'v2' for 'v2.1.0'; '' if invalid."""
    p = _parse(v)
    return "" if p is None else "v" + p.major


def major_minor(v: str) -> str:
    """'v2.1' for 'v2.1.0'; '' if invalid."""
    p = _parse(v)
    return "" if p is None else f"v{p.major}.{p.minor}"


def prerelease(v: str) -> str:
    """'-pre' for 'v2.1.0-pre+meta'; '' if none or invalid."""
    p = _parse(v)
    return "" if p is None else p.prerelease


def build(v: str) -> str:
    """'+meta' for 'v2.1.0-pre+meta'; '' if none or invalid."""
    p = _parse(v)
    return "" if p is None else p.build


def _compare_int(x: str, y: str) -> int:
    # No leading zeros, so the longer number is the larger one.
    if x == y:
        return 0
    if (len(x), x) < (len(y), y):
        return -1
    return 1


def _compare_prerelease(x: str, y: str) -> int:
    if x == y:
        return 0
    # A release sorts after all of its prereleases.
    if x == "":
        return 1
    if y == "":
        return -1
    xs = x[1:].split(".")
    ys = y[1:].split(".")
    for dx, dy in zip(xs, ys):
        if dx == dy:
            continue
        nx = dx.isascii() and dx.isdigit()
        ny = dy.isascii() and dy.isdigit()
        if nx != ny:
            # Numeric identifiers sort before alphanumeric ones.
            return -1 if nx else 1
        if nx:
            return _compare_int(dx, dy)
        return -1 if dx < dy else 1
    # All shared identifiers equal: the longer list wins.
    return -1 if len(xs) < len(ys) else 1


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 by semver precedence; invalid versions sort lowest and equal each other.

    Build metadata is ignored, so compare('v1.0.0', 'v1.0.0+meta') == 0, as in Go.
    """
    pa = _parse(a)
    pb = _parse(b)
    if pa is None or pb is None:
        if pa is None and pb is None:
            return 0
        return -1 if pa is None else 1
    for x, y in ((pa.major, pb.major), (pa.minor, pb.minor), (pa.patch, pb.patch)):
        c = _compare_int(x, y)
        if c:
            return c
    return _compare_prerelease(pa.prerelease, pb.prerelease)


def sort_key(v: str) -> tuple:
    """A key for sorted() that orders like compare(), ties broken by the plain string (Go's semver.Sort).

    The tie-break makes the order total and deterministic (v1.0.0 before v1.0.0+meta, invalid
    versions in string order before every valid one).
    """
    p = _parse(v)
    if p is None:
        return (0, v)
    if p.prerelease:
        idents = []
        for ident in p.prerelease[1:].split("."):
            if ident.isascii() and ident.isdigit():
                idents.append((0, int(ident), ""))
            else:
                idents.append((1, 0, ident))
        pre_key: tuple = (0, tuple(idents))
    else:
        pre_key = (1, ())
    return (1, int(p.major), int(p.minor), int(p.patch), pre_key, v)


# module.IsPseudoVersion's pattern: vX.0.0-yyyymmddhhmmss-rev, vX.Y.(Z+1)-0.yyyymmddhhmmss-rev and
# vX.Y.Z-pre.0.yyyymmddhhmmss-rev, each optionally with build metadata such as +incompatible.
_PSEUDO_RE = re.compile(
    r"v[0-9]+\.(?:0\.0-|[0-9]+\.[0-9]+-(?:[^+]*\.)?0\.)[0-9]{14}-[A-Za-z0-9]+"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def is_pseudo(v: str) -> bool:
    """Whether v is a pseudo-version such as v0.0.0-20191109021931-daa7c04131f5."""
    return v.count("-") >= 2 and is_valid(v) and _PSEUDO_RE.fullmatch(v) is not None
