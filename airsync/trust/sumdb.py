"""The checksum database as the go command sees it: settings, paths and lookup records (pure).

``GOSUMDB`` names a database and its verifier key: ``name+hash+key`` (reached through each
GOPROXY entry's ``/sumdb/<name>/``), ``name+hash+key URL`` (reached directly) or ``off``; the
bare names ``sum.golang.org`` and ``sum.golang.google.cn`` stand for the default key. Module
paths matching ``GONOSUMDB`` (or ``GOPRIVATE``) globs are never looked up, as in the go command.

A lookup (``/lookup/<escaped path>@<escaped version>``) answers with a record id line, the
record text (the module's two go.sum lines) and a blank line, followed by the signed note of a
tree that contains the record. The mirror stores these files under ``sumdb/<name>/`` exactly as
the go command asks for them, so a go command pointed at the mirror verifies offline.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from airsync.errors import AirsyncError, ConfigError
from airsync.goproxy import modpath
from airsync.goproxy.modpath import ModuleVersion

SUM_GOLANG_ORG = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
_KNOWN = {"sum.golang.org": SUM_GOLANG_ORG, "sum.golang.google.cn": SUM_GOLANG_ORG}
_KNOWN_URLS = {"sum.golang.google.cn": "https://sum.golang.google.cn"}


class RecordError(AirsyncError):
    """A lookup answer or record that does not say what it must."""


@dataclass(frozen=True)
class SumDB:
    name: str
    vkey: str  # the verifier key, "name+hash+base64"
    url: str | None  # None: reach it through the upstream proxy's /sumdb/<name>/

    def dir(self) -> str:
        """Where its files live in a mirror (and under a proxy)."""
        return f"sumdb/{self.name}"


def parse_gosumdb(value: str) -> SumDB | None:
    """A GOSUMDB value as the go command reads it; None for "off"."""
    text = value.strip()
    if text == "off":
        return None
    fields = text.split()
    if not fields or len(fields) > 2:
        raise ConfigError(f"bad checksum database {value!r}: want 'name+hash+key [URL]', a known name, or 'off'")
    key = _KNOWN.get(fields[0], fields[0])
    name = key.split("+", 1)[0]
    if "+" not in key:
        raise ConfigError(
            f"bad checksum database {value!r}: {name!r} is not a known database; give its key as name+hash+key"
        )
    from airsync.trust import note  # the key is checked the way the go command checks it

    try:
        note.parse_verifier(key)
    except AirsyncError as e:
        raise ConfigError(f"bad checksum database key {key!r}: {e}") from None
    url = fields[1] if len(fields) == 2 else _KNOWN_URLS.get(fields[0])
    if url is not None:
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"bad checksum database URL {url!r}: want http:// or https://")
        url = url.rstrip("/")
    return SumDB(name=name, vkey=key, url=url)


def matches_patterns(patterns: str, path: str) -> bool:
    """Go's module.MatchPrefixPatterns: does a glob in the comma list match a prefix of path?"""
    for glob in patterns.split(","):
        glob = glob.strip().removesuffix("/")
        if not glob:
            continue
        # A glob with N slashes is matched against the first N+1 elements of the path.
        elems = path.split("/")
        n = glob.count("/")
        if len(elems) <= n:
            continue
        prefix = "/".join(elems[: n + 1])
        if fnmatch.fnmatchcase(prefix, glob.replace("[^", "[!")):
            return True
    return False


def lookup_path(mv: ModuleVersion) -> str:
    """The lookup URL path under the database (and file path under ``SumDB.dir()``)."""
    return f"lookup/{modpath.escape_path(mv.path)}@{modpath.escape_version(mv.version)}"


@dataclass(frozen=True)
class RecordHashes:
    zip_h1: str
    mod_h1: str


def record_hashes(text: bytes, mv: ModuleVersion) -> RecordHashes:
    """The two go.sum lines a record must hold for ``mv``, and nothing else."""
    want_zip = f"{mv.path} {mv.version} "
    want_mod = f"{mv.path} {mv.version}/go.mod "
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise RecordError(f"{mv}: checksum database record is not UTF-8") from None
    zip_h1 = mod_h1 = None
    for line in lines:
        if line.startswith(want_mod) and mod_h1 is None:
            mod_h1 = line[len(want_mod) :]
        elif line.startswith(want_zip) and zip_h1 is None:
            zip_h1 = line[len(want_zip) :]
        else:
            raise RecordError(f"{mv}: unexpected line in checksum database record: {line!r}")
    if zip_h1 is None or mod_h1 is None or not zip_h1.startswith("h1:") or not mod_h1.startswith("h1:"):
        raise RecordError(f"{mv}: checksum database record lacks its go.sum lines: {text!r}")
    return RecordHashes(zip_h1=zip_h1, mod_h1=mod_h1)
