"""Reading go.sum files: which module versions a build needs, and the h1: hash each must have.

As the go command does (cmd/go/internal/modfetch readGoSum), the data is split at '\\n' and each
line into fields at Unicode white space, so CRLF line ends and extra blanks are harmless and blank
lines are skipped. A line is ``<module> <version> <hash>`` or ``<module> <version>/go.mod <hash>``;
the latter pins only the module's go.mod. Unlike the go command, which stops at the first malformed
line and does not validate paths, versions or hashes, every line is checked here and each problem is
reported with its line number while the good lines are still returned: the paths and versions become
file names in the mirror, and a user fixing a go.sum wants to see every problem at once.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from airsync.errors import InputError, ModulePathError
from airsync.goproxy.modpath import ModuleVersion, check_version, quote

__all__ = ["SumLine", "parse_gosum", "EMPTY_GOMOD_HASH"]

# The hash of an empty go.mod. An old go command bug wrote it into go.sum files for modules without
# a go.mod; the go command silently drops such lines, so they are dropped here too.
EMPTY_GOMOD_HASH = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="

# Go's unicode.IsSpace. Python's str.split() also splits at \x1c-\x1f, which Go keeps inside fields.
_GO_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")

_GOMOD_SUFFIX = "/go.mod"
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*:")


@dataclass(frozen=True)
class SumLine:
    module: ModuleVersion
    gomod: bool  # True for a '<version>/go.mod' line: the hash covers only the go.mod file
    h1: str  # the whole 'h1:<base64>' field
    source: str
    lineno: int


def _fields(line: str) -> list[str]:
    return [f for f in _GO_SPACE.split(line) if f]


def _hash_problem(h: str) -> str | None:
    if not h.startswith("h1:"):
        m = _ALGORITHM.match(h)
        if m:
            return f"unsupported hash algorithm {quote(m.group()[:-1])} in {quote(h)} (only h1: is known)"
        return f"malformed hash {quote(h)}: want h1:<base64 of 32 bytes>"
    b64 = h[3:]
    try:
        raw = base64.b64decode(b64.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return f"malformed hash {quote(h)}: not valid base64"
    # Re-encoding catches non-zero padding bits and missing padding, which would make two
    # spellings of one hash.
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != b64:
        return f"malformed hash {quote(h)}: want h1: and the standard base64 of a 32-byte SHA-256"
    return None


def parse_gosum(data: bytes, source: str) -> tuple[list[SumLine], list[InputError]]:
    """The valid lines of a go.sum and an InputError for each invalid one, in file order."""
    lines: list[SumLine] = []
    errors: list[InputError] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        # surrogateescape keeps undecodable bytes visible to the path check ("invalid UTF-8").
        text = raw.decode("utf-8", errors="surrogateescape")
        f = _fields(text)
        if not f:
            continue
        if len(f) != 3:
            errors.append(
                InputError(
                    source,
                    lineno,
                    f"malformed go.sum line: wrong number of fields {len(f)} (want: module version hash)",
                )
            )
            continue
        path, version, h = f
        if h == EMPTY_GOMOD_HASH:
            continue
        gomod = version.endswith(_GOMOD_SUFFIX)
        if gomod:
            version = version[: -len(_GOMOD_SUFFIX)]
        try:
            check_version(path, version)
        except ModulePathError as e:
            errors.append(InputError(source, lineno, str(e)))
            continue
        mv = ModuleVersion(path, version)
        why = _hash_problem(h)
        if why is not None:
            errors.append(InputError(source, lineno, f"{mv}: {why}"))
            continue
        lines.append(SumLine(mv, gomod, h, source, lineno))
    return lines, errors
