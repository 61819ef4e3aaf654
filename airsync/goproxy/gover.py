"""Go toolchain versions (``1.21``, ``1.21rc1``, ``1.21.3``) compared as cmd/go/internal/gover does.

A language version (``1.21``) sorts before its release candidates, which sort before its first
release: ``1.21 < 1.21rc1 < 1.21.0 < 1.21.1``. Toolchain names are ``go`` + version, and the
``golang.org/toolchain`` module's versions are ``v0.0.1-go<version>.<goos>-<goarch>``: the go
command downloads one of those through GOPROXY when GOTOOLCHAIN or a go.mod asks for a newer Go,
picking, for a language version, what ``newest_toolchain`` picks (toolchain.newerToolchain).
"""

from __future__ import annotations

import functools
import re

__all__ = ["parse", "compare", "is_valid", "is_lang", "lang", "toolchain_module_version", "from_toolchain",
           "parse_toolchain_module_version", "newest_toolchain", "TOOLCHAIN_MODULE"]

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


TOOLCHAIN_MODULE = "golang.org/toolchain"
TOOLCHAIN_PREFIX = "v0.0.1-go"


def from_toolchain(name: str) -> str:
    """``go1.21.3`` -> ``1.21.3`` ('' when ``name`` is no toolchain name; suffixes like
    ``go1.21.3-custom`` keep only the version, as gover.FromToolchain does)."""
    if not name.startswith("go"):
        return ""
    v = name[2:].split("-", 1)[0].split("+", 1)[0]
    return v if is_valid(v) else ""


def parse_toolchain_module_version(version: str) -> tuple[str, str, str] | None:
    """(go version, goos, goarch) of a golang.org/toolchain module version, or None."""
    if not version.startswith(TOOLCHAIN_PREFIX):
        return None
    rest = version[len(TOOLCHAIN_PREFIX):]
    go, dot, platform = rest.rpartition(".")
    goos, dash, goarch = platform.partition("-")
    if not dot or not dash or not is_valid(go) or not goos or not goarch:
        return None
    return go, goos, goarch


def newest_toolchain(listing: str, need: str, goos: str, goarch: str) -> str | None:
    """The go version the go command would switch to for ``need`` from a golang.org/toolchain
    ``@v/list`` (toolchain.newerToolchain): among releases at or above ``need`` for the platform,
    the latest patch of the newest family, unless a later family has no release yet."""
    versions = []
    for line in listing.split("\n"):
        f = line.split()
        parsed = parse_toolchain_module_version(f[0]) if f else None
        if parsed and parsed[1] == goos and parsed[2] == goarch:
            versions.append(parsed[0])
    versions.sort(key=functools.cmp_to_key(compare))
    latest = ""
    for v in reversed(versions):
        if compare(v, need) < 0:
            break
        if lang(latest) == lang(v):
            continue
        newer, latest = latest, v
        if newer and not parse(newer)[3]:  # type: ignore[index]
            break
    return latest or None


_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386", "i686": "386",
           "armv6l": "arm", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> str:
    """This machine's GOOS/GOARCH (the default platform of mirrored toolchains)."""
    import platform

    machine = platform.machine().lower()
    return f"{platform.system().lower()}/{_GOARCH.get(machine, machine)}"


def parse_platforms(text: str) -> tuple[str, ...]:
    """``linux/amd64,darwin/arm64`` as a tuple; raises ValueError naming a malformed entry."""
    out = []
    for entry in (e.strip() for e in text.split(",")):
        goos, slash, goarch = entry.partition("/")
        if not (slash and goos.isalnum() and goarch.isalnum() and entry.isascii() and entry == entry.lower()):
            raise ValueError(f"{entry!r}: want GOOS/GOARCH, e.g. linux/amd64")
        out.append(entry)
    return tuple(dict.fromkeys(out))
