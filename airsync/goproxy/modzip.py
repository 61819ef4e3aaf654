"""Module zip rules (golang.org/x/mod/zip CheckZip) checked together with the zip's ``h1:`` hash.

``check_zip`` makes one pass over a downloaded ``.zip``: first over the central directory (names,
types and declared sizes; no content is read yet, so a zip that breaks a rule costs almost nothing),
then over every entry's data, streamed in 1 MiB pieces through ``dirhash.zip_entry_sha256``, which
also enforces that each entry's real size equals its declared size (zip bombs) and its CRC. The
per-entry digests feed ``dirhash.hash1_digests``, so the returned h1 is what dirhash.HashZip gives.

The rules follow Go's checkZip: every name starts with ``path@version/``; the rest is a clean path that
passes module.CheckFilePath; no two names are equal under case folding and no path is both a file
and a directory; go.mod only in the root and spelled ``go.mod``; at most 500 MiB declared in total,
16 MiB for the root go.mod and LICENSE. Directory entries are checked like names and for collisions,
then skipped, as Go does; they still count in the hash (as empty files), as in dirhash.HashZip.
Beyond checkZip, symlinks and other non-regular files are refused (the package's documented rule,
which Go applies when creating zips), and the file itself must be at most 500 MiB.
The module path and version themselves are not re-validated here (modpath does that).

The first problem found raises ``ZipRuleError`` naming the module and the entry (Go collects all).
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import unicodedata
import zipfile
from typing import TYPE_CHECKING

from airsync.errors import ZipRuleError
from airsync.goproxy import dirhash

if TYPE_CHECKING:
    from airsync.goproxy.modpath import ModuleVersion

__all__ = [
    "MAX_ZIP_FILE",
    "MAX_GO_MOD",
    "MAX_LICENSE",
    "check_zip",
    "file_path_error",
]

MAX_ZIP_FILE = 500 << 20
MAX_GO_MOD = 16 << 20
MAX_LICENSE = 16 << 20

# module.fileNameOK: ASCII letters, digits, space and these punctuation characters; beyond ASCII, letters.
_ALLOWED_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&()+,-.=@[]^_{}~ "
)
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(1, 10)] + [f"lpt{i}" for i in range(1, 10)]
)
# zip "version made by" hosts whose external attributes carry a Unix st_mode in the high 16 bits.
_UNIX_CREATORS = (3, 19)


def _file_name_ok(c: str) -> bool:
    if c < "\x80":
        return c in _ALLOWED_ASCII
    # unicode.IsLetter: general category L* (Lu, Ll, Lt, Lm, Lo). Python's Unicode version may differ
    # from Go's for newly assigned letters.
    return unicodedata.category(c).startswith("L")


def _fold_char(c: str) -> str:
    # Go's strToFold maps each rune to the smallest rune of its simple case-folding orbit. Python has
    # only full folding (ß -> "ss"), which would make "ß" and "ss" collide where Go sees no collision;
    # using full folding only when it yields one character, else a one-character lower case, else the
    # character itself approximates simple folding.
    folded = c.casefold()
    if len(folded) == 1:
        return folded
    lower = c.lower()
    return lower if len(lower) == 1 else c


def _fold(s: str) -> str:
    """Approximates Go's strToFold: equal results for names Go's strings.EqualFold calls equal."""
    if s.isascii():
        return s.lower()
    return "".join(_fold_char(c) for c in s)


def _elem_error(elem: str) -> str | None:
    if elem == "":
        return "empty path element"
    if elem.count(".") == len(elem):
        return f"invalid path element {elem!r}"
    if elem.endswith("."):
        return "trailing dot in path element"
    for c in elem:
        if not _file_name_ok(c):
            return f"invalid char {c!r}"
    short = elem.split(".", 1)[0]
    if _fold(short) in _WINDOWS_RESERVED:
        return f"{short!r} disallowed as path element component on Windows"
    return None


def file_path_error(path: str) -> str | None:
    """Why ``path`` fails module.CheckFilePath, or None if it is a valid file path.

    ``path`` is text as produced by dirhash.zip_entry_name (raw bytes that are not UTF-8 appear as
    surrogate escapes).
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        reason: str | None = "invalid UTF-8"
    else:
        if path == "":
            reason = "empty string"
        elif "//" in path:
            reason = "double slash"
        elif path.endswith("/"):
            reason = "trailing slash"
        else:
            reason = None
            for elem in path.split("/"):
                reason = _elem_error(elem)
                if reason:
                    break
    return None if reason is None else f"malformed file path {path!r}: {reason}"


def _is_clean(p: str) -> bool:
    # path.Clean(p) == p. normpath agrees with Go's Clean except that it keeps a leading "//".
    return p != "" and not p.startswith("//") and posixpath.normpath(p) == p


class _Collisions:
    """Go's collisionChecker: folded path -> (original path, is_dir); parents are added as directories."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, bool]] = {}

    def check(self, p: str, is_dir: bool) -> str | None:
        while True:
            fold = _fold(p)
            other = self._seen.get(fold)
            if other is None:
                self._seen[fold] = (p, is_dir)
            elif other[0] != p:
                return f"case-insensitive file name collision: {other[0]!r} and {p!r}"
            elif other[1] != is_dir:
                return f"entry {p!r} is both a file and a directory"
            elif not is_dir:
                return f"multiple entries for file {p!r}"
            # A directory seen again is fine: every file re-adds its parents.
            parent = posixpath.dirname(p)
            if parent == "":
                return None
            p, is_dir = parent, True


def _irregular(info: zipfile.ZipInfo) -> str | None:
    if info.create_system not in _UNIX_CREATORS:
        return None
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "file is a symbolic link"
    # 0 means no type recorded (plain files from some writers); Go reads that as a regular file.
    if kind not in (0, stat.S_IFREG):
        return "not a regular file"
    return None


def declared_contents(data: bytes) -> tuple[int, int] | None:
    """(entries, total uncompressed bytes) that the zip in ``data`` declares in its central
    directory, without reading any entry; None when that cannot be read (``check_zip`` says why).
    What checking it will cost: every entry is inflated and hashed, up to its declared size."""
    try:
        with dirhash.open_zip(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except dirhash.ZipReadError:
        return None
    return len(infos), sum(info.file_size for info in infos)


def check_zip(path: str | os.PathLike[str], mv: ModuleVersion, data: bytes | None = None) -> str:
    """Check the module zip at ``path`` for ``mv`` and return its h1 hash; raises ZipRuleError.

    ``data``: the zip's bytes, already in memory (``path`` then only names it in messages).
    """
    module = str(mv)
    prefix = f"{mv.path}@{mv.version}/"

    def fail(entry: str, message: str) -> ZipRuleError:
        return ZipRuleError(module, f"{entry!r}: {message}")

    with open(path, "rb") if data is None else io.BytesIO(data) as fp:
        # The size of what we read (fstat of the open file, not of the path).
        size = len(data) if data is not None else os.fstat(fp.fileno()).st_size
        if size > MAX_ZIP_FILE:
            raise ZipRuleError(
                module,
                f"{os.fspath(path)}: module zip file is too large ({size} bytes; limit is {MAX_ZIP_FILE} bytes)",
            )
        try:
            zf = dirhash.open_zip(fp)
        except dirhash.ZipReadError as e:
            raise ZipRuleError(module, f"{os.fspath(path)}: {e.reason}") from e

        with zf:
            infos = zf.infolist()
            names = [dirhash.zip_entry_name(info) for info in infos]

            # Pass over the central directory: names, types and declared sizes.
            collisions = _Collisions()
            total = 0
            for entry, info in zip(names, infos):
                if not entry.startswith(prefix):
                    raise fail(entry, f"path does not have prefix {prefix!r}")
                name = entry[len(prefix) :]
                if name == "":
                    continue
                is_dir = name.endswith("/")
                if is_dir:
                    name = name[:-1]
                elif reason := _irregular(info):
                    raise fail(entry, reason)
                # Go reports an absolute name as a malformed path ("empty path element"); say it plainly.
                if name.startswith("/"):
                    raise fail(entry, "file path is not relative")
                if not _is_clean(name):
                    raise fail(entry, "file path is not clean")
                if reason := file_path_error(name):
                    raise fail(entry, reason)
                if reason := collisions.check(name, is_dir):
                    raise fail(entry, reason)
                if is_dir:
                    continue
                base = posixpath.basename(name)
                if _fold(base) == "go.mod":
                    if base != name:
                        raise fail(entry, "go.mod file not in module root directory")
                    if name != "go.mod":
                        raise fail(entry, "go.mod files must have lowercase names")
                declared = info.file_size
                total += declared
                if total > MAX_ZIP_FILE:
                    raise fail(
                        entry,
                        f"total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)",
                    )
                if name == "go.mod" and declared > MAX_GO_MOD:
                    raise fail(entry, f"go.mod file too large (max size is {MAX_GO_MOD} bytes)")
                if name == "LICENSE" and declared > MAX_LICENSE:
                    raise fail(entry, f"LICENSE file too large (max size is {MAX_LICENSE} bytes)")

            # Pass over the data: every entry, directories included, as dirhash.HashZip hashes them.
            # File names are unique by now; a repeated directory entry hashes as empty every time, as in Go.
            digests: list[tuple[str, str]] = []
            for entry, info in zip(names, infos):
                try:
                    digests.append((entry, dirhash.zip_entry_sha256(fp, info)))
                except dirhash.ZipReadError as e:
                    raise fail(entry, e.reason) from e
    try:
        return dirhash.hash1_digests(digests)
    except ValueError as e:  # a newline in a name; CheckFilePath refuses those already
        raise ZipRuleError(module, str(e)) from e
