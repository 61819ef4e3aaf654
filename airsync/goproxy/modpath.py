"""Module paths and versions: validation, case escaping and the GOPROXY file names built from them.

This follows golang.org/x/mod/module. A module path is checked with CheckPath's rules (an ASCII,
lower-case domain-like first element containing a dot, a limited character set, no empty, dot-only,
dot-led or dot-ended elements, no Windows reserved names or short names, and a well-formed major
version suffix: ``/vN`` with N >= 2, or ``.vN`` for gopkg.in). A module version must be canonical and
agree with the path's major version suffix. Because proxies are served from case-insensitive file
systems, every upper-case letter is escaped as ``!`` + its lower case (``github.com/BurntSushi/toml``
is stored as ``github.com/!burnt!sushi/toml``).

The relative file names returned by ``proxy_file`` and ``list_file`` are what the mirror writes to
disk, so they are a security boundary: besides the validation, each one is checked once more just
before it is returned, and anything that could escape the mirror directory raises ModulePathError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from airsync.errors import ModulePathError
from airsync.goproxy import semver

__all__ = [
    "ModuleVersion",
    "quote",
    "check_path",
    "check_import_path",
    "check_file_path",
    "check_version",
    "split_path_version",
    "check_path_major",
    "canonical_version",
    "escape_path",
    "unescape_path",
    "escape_version",
    "unescape_version",
    "parse_module_version",
    "proxy_file",
    "list_file",
    "PROXY_EXTS",
    "parse_proxy_file",
]

PROXY_EXTS = frozenset({"info", "mod", "zip"})


@dataclass(frozen=True, order=True)
class ModuleVersion:
    path: str
    version: str

    def __str__(self) -> str:
        return f"{self.path}@{self.version}"


def quote(s: str) -> str:
    """s in double quotes with everything outside printable ASCII escaped.

    Messages quote untrusted text this way so that control characters cannot rewrite a terminal
    and undecodable bytes (kept as surrogates) cannot make printing the message fail.
    """
    return json.dumps(s, ensure_ascii=True)


# --- path checks (module.CheckPath, CheckImportPath, CheckFilePath) ---------------------------------

_MODULE, _IMPORT, _FILE = "module", "import", "file"

_BAD_WINDOWS_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)

_ASCII_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_MOD_PATH_CHARS = _ASCII_ALNUM | frozenset("-._~")
_IMPORT_PATH_CHARS = _MOD_PATH_CHARS | frozenset("+")
# File names may also hold these; the shell- and OS-special " ' * < > ? ` | / \ : stay out.
_FILE_NAME_PUNCT = frozenset("!#$%&()+,-.=@[]^_{}~ ")
_FIRST_ELEM_CHARS = frozenset("-.0123456789abcdefghijklmnopqrstuvwxyz")


def _is_utf8(s: str) -> bool:
    # Callers decode untrusted bytes with surrogateescape; the surrogates mark bytes that were not UTF-8.
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _char_ok(c: str, kind: str) -> bool:
    if kind == _MODULE:
        return c in _MOD_PATH_CHARS
    if kind == _IMPORT:
        return c in _IMPORT_PATH_CHARS
    if c.isascii():
        return c in _ASCII_ALNUM or c in _FILE_NAME_PUNCT
    # Go allows any Unicode letter in file names (unicode.IsLetter: categories L*).
    return c.isalpha()


def _check_elem(elem: str, kind: str) -> str | None:
    """Why elem is not a valid path element of this kind, or None."""
    if elem == "":
        return "empty path element"
    if elem.count(".") == len(elem):
        return f"invalid path element {quote(elem)}"
    if elem[0] == "." and kind == _MODULE:
        return "leading dot in path element"
    if elem[-1] == ".":
        return "trailing dot in path element"
    for c in elem:
        if not _char_ok(c, kind):
            return f"invalid char {quote(c)}"
    # Windows refuses these names whatever follows the first dot and whatever the case.
    short = elem.split(".", 1)[0]
    if short.upper() in _BAD_WINDOWS_NAMES:
        return f"{quote(short)} disallowed as path element component on Windows"
    if kind != _FILE:
        # Names like "abc~1" look like Windows 8.3 short names and could alias another directory.
        tilde = short.rfind("~")
        if 0 <= tilde < len(short) - 1 and all("0" <= c <= "9" for c in short[tilde + 1 :]):
            return "trailing tilde and digits in path element"
    return None


def _check_general(path: str, kind: str) -> str | None:
    if not _is_utf8(path):
        return "invalid UTF-8"
    if path == "":
        return "empty string"
    if path[0] == "-" and kind != _FILE:
        return "leading dash"
    if "//" in path:
        return "double slash"
    if path[-1] == "/":
        return "trailing slash"
    for elem in path.split("/"):
        why = _check_elem(elem, kind)
        if why is not None:
            return why
    return None


@lru_cache(maxsize=1 << 14)  # a go.sum or manifest names each path many times
def _module_path_problem(path: str) -> str | None:
    why = _check_general(path, _MODULE)
    if why is not None:
        return why
    first = path.split("/", 1)[0]
    if first == "":
        return "leading slash"
    if "." not in first:
        return "missing dot in first path element"
    if path[0] == "-":
        return "leading dash in first path element"
    for c in first:
        if c not in _FIRST_ELEM_CHARS:
            return f"invalid char {quote(c)} in first path element"
    _, _, ok = split_path_version(path)
    if not ok:
        if path.startswith("gopkg.in/"):
            return "gopkg.in path must end in .vN (N a number without leading zero, .v0 allowed)"
        return "invalid major version suffix: must be /vN with N >= 2 and no dots or leading zero"
    return None


def check_path(path: str) -> None:
    """Raise ModulePathError unless path is a valid module path (module.CheckPath)."""
    why = _module_path_problem(path)
    if why is not None:
        raise ModulePathError(f"malformed module path {quote(path)}: {why}")


def check_import_path(path: str) -> None:
    """Raise ModulePathError unless path is a valid package import path (module.CheckImportPath)."""
    why = _check_general(path, _IMPORT)
    if why is not None:
        raise ModulePathError(f"malformed import path {quote(path)}: {why}")


def check_file_path(path: str) -> None:
    """Raise ModulePathError unless path is a valid slash-separated file path (module.CheckFilePath)."""
    why = _check_general(path, _FILE)
    if why is not None:
        raise ModulePathError(f"malformed file path {quote(path)}: {why}")


def split_path_version(path: str) -> tuple[str, str, bool]:
    """(prefix, path_major, ok) with prefix + path_major == path (module.SplitPathVersion).

    path_major is '' or '/vN' (N >= 2); gopkg.in paths use '.vN' for every N, optionally
    followed by '-unstable'. ok is False for a malformed suffix such as '/v1', '/v0' or '/v2.0'.
    """
    if path.startswith("gopkg.in/"):
        return _split_gopkg_in(path)
    i = len(path)
    dot = False
    while i > 0 and (("0" <= path[i - 1] <= "9") or path[i - 1] == "."):
        if path[i - 1] == ".":
            dot = True
        i -= 1
    if i <= 1 or i == len(path) or path[i - 1] != "v" or path[i - 2] != "/":
        return path, "", True
    prefix, path_major = path[: i - 2], path[i - 2 :]
    if dot or len(path_major) <= 2 or path_major[2] == "0" or path_major == "/v1":
        return path, "", False
    return prefix, path_major, True


def _split_gopkg_in(path: str) -> tuple[str, str, bool]:
    i = len(path)
    if path.endswith("-unstable"):
        i -= len("-unstable")
    while i > 0 and "0" <= path[i - 1] <= "9":
        i -= 1
    if i <= 1 or path[i - 1] != "v" or path[i - 2] != ".":
        return path, "", False
    prefix, path_major = path[: i - 2], path[i - 2 :]
    if len(path_major) <= 2 or (path_major[2] == "0" and path_major != ".v0"):
        return path, "", False
    return prefix, path_major, True


def check_path_major(version: str, path_major: str) -> str | None:
    """Why version does not match path_major, or None (module.CheckPathMajor, message only)."""
    if path_major.startswith(".v") and path_major.endswith("-unstable"):
        path_major = path_major[: -len("-unstable")]
    if version.startswith("v0.0.0-") and path_major == ".v1":
        # Early vgo wrote v0 pseudo-versions for gopkg.in .v1 paths; real go.mod files still hold them
        # (gopkg.in/yaml.v2@v2.2.1 requires gopkg.in/check.v1 at one), so Go accepts them.
        return None
    m = semver.major(version)
    if path_major == "":
        if m in ("v0", "v1") or semver.build(version) == "+incompatible":
            return None
        want = "v0 or v1"
    else:
        if m == path_major[1:]:
            return None
        want = path_major[1:]
    return f"should be {want}, not {m or quote(version)}"


def canonical_version(v: str) -> str:
    """semver.canonical(v) but keeping a '+incompatible' suffix (module.CanonicalVersion)."""
    cv = semver.canonical(v)
    if cv and semver.build(v) == "+incompatible":
        cv += "+incompatible"
    return cv


@lru_cache(maxsize=1 << 14)
def _version_problem(path: str, version: str) -> str | None:
    if not semver.is_valid(version):
        return "not a semantic version"
    if version != canonical_version(version):
        cv = canonical_version(version)
        hint = f" (canonical form {quote(cv)})" if cv else ""
        return f"not a canonical module version{hint}"
    _, path_major, _ = split_path_version(path)
    if semver.build(version) == "+incompatible":
        # The go command only ever writes +incompatible for a v2+ tag of a repository without
        # go.mod whose path has no major version suffix (modfetch coderepo rejects the rest).
        if path.startswith("gopkg.in/"):
            return "+incompatible not allowed for gopkg.in paths"
        if path_major:
            return f"+incompatible not allowed: module path has major version suffix {path_major}"
        if semver.major(version) in ("v0", "v1"):
            return f"+incompatible not allowed: major version {semver.major(version)} is compatible"
    return check_path_major(version, path_major)


def check_version(path: str, version: str) -> None:
    """Raise ModulePathError unless path is a valid module path and version a canonical version of it.

    Canonical means vX.Y.Z[-pre] (pseudo-versions included) with no build metadata except
    '+incompatible', which needs a v2+ version and a path without a major version suffix. The
    major version must agree with the path's /vN (or gopkg.in .vN) suffix.
    """
    check_path(path)
    why = _version_problem(path, version)
    if why is not None:
        raise ModulePathError(f"{path}@{quote(version)}: invalid version: {why}")


# --- escaping --------------------------------------------------------------------------------------


def _escape(s: str) -> str:
    # Validation has already excluded '!' and non-ASCII; the escaping is only unambiguous without them.
    if "!" in s or not s.isascii():
        raise ModulePathError(f"internal error: cannot escape {quote(s)}")
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)


def _unescape(escaped: str) -> str | None:
    if "!" not in escaped and escaped.isascii():
        # Nothing escaped, the common case (a sync parses every file name of two trees): still
        # no upper case, and lower() changes only A-Z in ASCII.
        return escaped if escaped == escaped.lower() else None
    out = []
    bang = False
    for c in escaped:
        if not c.isascii():
            return None
        if bang:
            bang = False
            if not "a" <= c <= "z":
                return None
            out.append(c.upper())
        elif c == "!":
            bang = True
        elif "A" <= c <= "Z":
            # An escaped form never has upper case; accepting it would give one path two names.
            return None
        else:
            out.append(c)
    if bang:
        return None
    return "".join(out)


def escape_path(path: str) -> str:
    """The proxy/cache form of a module path; raises ModulePathError if the path is invalid."""
    check_path(path)
    return _escape(path)


def unescape_path(escaped: str) -> str:
    """The module path for an escaped form; raises ModulePathError for a bad escape or an invalid path."""
    path = _unescape(escaped)
    if path is None:
        raise ModulePathError(f"invalid escaped module path {quote(escaped)}")
    why = _module_path_problem(path)
    if why is not None:
        raise ModulePathError(f"invalid escaped module path {quote(escaped)}: {why}")
    return path


def escape_version(v: str) -> str:
    """The proxy/cache form of a version.

    As in Go, any string that is a valid file name element without '!' is accepted here (queries
    such as 'master' need escaping too); use check_version for module versions.
    """
    if _check_elem(v, _FILE) is not None or "!" in v or not _is_utf8(v):
        raise ModulePathError(f"version {quote(v)} invalid: disallowed version string")
    # File names may hold non-ASCII letters, but the escaping (and the proxy protocol) is ASCII-only.
    if not v.isascii():
        raise ModulePathError(f"version {quote(v)} invalid: non-ASCII version string")
    return _escape(v)


def unescape_version(escaped: str) -> str:
    """The version for an escaped form; raises ModulePathError for a bad escape or file name."""
    v = _unescape(escaped)
    if v is None:
        raise ModulePathError(f"invalid escaped version {quote(escaped)}")
    why = _check_elem(v, _FILE)
    if why is not None:
        raise ModulePathError(f"invalid escaped version {quote(escaped)}: {why}")
    return v


# --- module@version and proxy file names -----------------------------------------------------------


def parse_module_version(text: str) -> ModuleVersion:
    """'path@version' as a ModuleVersion, both parts validated with check_version."""
    path, at, version = text.partition("@")
    if not at:
        raise ModulePathError(f"{quote(text)}: want module@version (for example golang.org/x/text@v0.3.0)")
    if path == "":
        raise ModulePathError(f"{quote(text)}: missing module path before '@'")
    if version == "":
        raise ModulePathError(f"{quote(text)}: missing version after '@'")
    check_version(path, version)
    return ModuleVersion(path, version)


def _check_relative(rel: str) -> str:
    """rel, after making sure it can only name a file inside the mirror directory."""
    bad = (
        rel == ""
        or rel.startswith("/")
        or "\\" in rel
        or ":" in rel  # a drive letter or an NTFS stream on Windows
        or not rel.isascii()
        or not rel.isprintable()  # in ASCII: a control character, 0x00-0x1F or 0x7F
        or any(part in ("", ".", "..") for part in rel.split("/"))
    )
    if bad:
        raise ModulePathError(f"refusing unsafe mirror file name {quote(rel)}")
    return rel


# A job asks for the same few names of each version many times (planning, skipping, landing,
# signing): the character-by-character checks were a tenth of the event loop's time on a mix of
# small modules. Only valid names are cached (errors raise every time).
@lru_cache(maxsize=1 << 14)
def proxy_file(mv: ModuleVersion, ext: str) -> str:
    """'<escaped path>/@v/<escaped version>.<ext>' for ext in 'info', 'mod', 'zip'."""
    if ext not in PROXY_EXTS:
        raise ModulePathError(f"unknown proxy file type {quote(ext)} (want info, mod or zip)")
    check_version(mv.path, mv.version)
    return _check_relative(f"{escape_path(mv.path)}/@v/{escape_version(mv.version)}.{ext}")


def parse_proxy_file(rel: str) -> tuple[ModuleVersion, str] | None:
    """The inverse of ``proxy_file``: (module version, ext) for '<escaped path>/@v/<escaped
    version>.<info|mod|zip>', None for any other path (a list, a sumdb file, ...).

    Raises ModulePathError when the path has that shape but its module or version is invalid.
    """
    mod, sep, name = rel.partition("/@v/")
    if not sep or "/" in name:
        return None
    base, dot, ext = name.rpartition(".")
    if not dot or ext not in PROXY_EXTS:
        return None
    mv = ModuleVersion(unescape_path(mod), unescape_version(base))
    check_version(mv.path, mv.version)
    return mv, ext


def list_file(path: str) -> str:
    """'<escaped path>/@v/list'."""
    return _check_relative(f"{escape_path(path)}/@v/list")


def latest_file(path: str) -> str:
    """'<escaped path>/@latest'."""
    return _check_relative(f"{escape_path(path)}/@latest")
