"""The manifest of a transfer medium: which files it carries, signed by the border host.

When a mirror is copied onto a USB medium, the medium also carries a manifest naming every file
with its size and hashes, and the go.sum lines the medium covers. The border host signs the
manifest with its private key (a Go signed note, see ``airsync.note``); inside the air gap, the
verifier key alone proves that the medium was written by the border host and that no file was
added, removed, truncated or altered since.

The manifest text (UTF-8, ``\\n`` line ends, every line ending in one, no blank lines)::

    airsync manifest v1
    created 2024-05-01T12:00:00Z
    sequence <n>                                          (optional: the signer's counter, see below)
    source <where it was made: free text, one line>
    base <sha256 hex>                                     (optional: a differential bundle's base)
    sbom <sha256 hex> <size> <name>                       (optional: the SBOM file beside it)
    part <sha256 hex> <size> <name>                       (zero or more, a bundle's parts in order)
    file <sha256 hex> <xxh3_128 hex> <size> <path>        (zero or more, sorted by path)
    held <sha256 hex> <xxh3_128 hex> <size> <path>        (zero or more, sorted by path)
    gosum <module> <version>[/go.mod] <h1:hash>            (zero or more, sorted)

``sequence`` (a positive integer) grows with every manifest a key signs (``airsync.carry.sequence``
keeps the counter beside the key); the inside refuses one older than it has accepted
(``airsync.carry.rollback``). Manifests of airsync before it have none. A bundle (``carry.bundle``)
lists its parts, each a tar file named, sized and hashed; its ``file`` lines are the files it
carries, and a differential bundle's ``held`` lines the files of the same snapshot that the inside
already holds from the manifest whose text hashes to ``base``. ``held`` paths never repeat a
``file`` path. Part and SBOM names are plain file names (no ``/``).

The format is canonical: one manifest has exactly one text, and ``decode`` accepts only that text
(``encode(decode(x)) == x``), reporting the first problem with its line number. Choices:

* The path is the *last* field of a ``file`` line and runs to the end of the line, so it may hold
  spaces (even leading or trailing ones). Module files never need that, but other files might.
  A path is relative and '/'-separated; it has no empty, '.' or '..' element, no backslash, no
  control character and no line or paragraph separator (U+2028, U+2029), and is valid UTF-8.
  A path that is a file cannot also be a directory of another path.
* Paths sort by code point, which is UTF-8 byte order. Hashes are lower-case hex, sizes decimal
  without leading zeros, ``created`` is RFC 3339 in UTC to the second (``YYYY-MM-DDTHH:MM:SSZ``).
* ``source`` is any non-empty line of text without control characters or surrounding white space.
* A ``gosum`` line must be a valid go.sum line (``airsync.gosum`` rules) with its three fields
  separated by single spaces.

``Manifest(...)`` sorts its entries and go.sum lines (dropping repeated go.sum lines) and refuses
two entries with one path; ``decode`` is stricter and also refuses text out of order.

The signed manifest is the manifest text followed by a Go note signature (``sign_manifest``);
``open_manifest`` checks it with the verifier key and fails with ``airsync.note``'s errors when the
signature does not verify (altered text) or is not by that key (replaced manifest).

Keys are kept as two files made by ``keygen``: ``PREFIX.key`` holds the signer key (mode 0600; it
never leaves the border host) and ``PREFIX.pub`` the verifier key. ``load_signer`` refuses a key
file that group or others may access, as ssh does.

``diff`` compares a manifest with the files found on a medium and names each problem by path.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from airsync.carry.sequence import counter_path, next_sequence
from airsync.errors import AirsyncError
from airsync.goproxy.gosum import parse_gosum
from airsync.goproxy.modpath import quote
from airsync.store import fsync_dir, write_all
from airsync.trust import note

__all__ = [
    "HEADER",
    "ManifestError",
    "KeyFileError",
    "Entry",
    "Part",
    "Manifest",
    "digest",
    "Diff",
    "utc_timestamp",
    "encode",
    "decode",
    "KeySigner",
    "sign_manifest",
    "number",
    "open_manifest",
    "keygen",
    "load_signer",
    "load_verifier",
    "diff",
]

HEADER = "airsync manifest v1"
_HEADER_PREFIX = "airsync manifest "

_SHA256 = re.compile(r"[0-9a-f]{64}")
_XXH3 = re.compile(r"[0-9a-f]{32}")
_SIZE = re.compile(r"0|[1-9][0-9]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CREATED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

_KEY_FILE_MAX = 4096  # an encoded key is about 100 bytes
_SIGNER_PREFIX = "PRIVATE+KEY+"


class ManifestError(AirsyncError):
    """A manifest, manifest entry or key file that cannot be used; ``lineno`` set for parse errors."""

    def __init__(self, message: str, *, source: str | None = None, lineno: int | None = None) -> None:
        self.message = message
        self.source = source
        self.lineno = lineno
        where = ":".join(str(p) for p in (source, lineno) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)


class KeyFileError(ManifestError):
    """A key file that is missing, unreadable, too open, of the wrong kind or not a key."""


# --- validation -----------------------------------------------------------------------------------


def _bad_char(s: str) -> str | None:
    """The first character of ``s`` that may not appear in a manifest line, if any."""
    if s.isascii() and s.isprintable():
        return None  # nearly every line: skip the per-character look-ups
    for c in s:
        if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs"):  # Cs: lone surrogates, not UTF-8
            return c
    return None


def _path_problem(path: object) -> str | None:
    if not isinstance(path, str):
        return f"path must be a string, not {type(path).__name__}"
    if not path:
        return "empty path"
    c = _bad_char(path)
    if c is not None:
        return f"path {quote(path)} has a forbidden character U+{ord(c):04X}"
    if "\\" in path:
        return f"path {quote(path)} has a backslash"
    if path.startswith("/"):
        return f"path {quote(path)} is absolute"
    for elem in path.split("/"):
        if elem == "":
            return f"path {quote(path)} has an empty element"
        if elem in (".", ".."):
            return f"path {quote(path)} has a {quote(elem)} element"
    return None


def _created_problem(created: object) -> str | None:
    if not isinstance(created, str) or _CREATED.fullmatch(created) is None:
        return f"created time {quote(str(created))} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)"
    try:
        _dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return f"created time {quote(created)} is not a valid date and time"
    return None


def _source_problem(source: object) -> str | None:
    if not isinstance(source, str) or not source:
        return "source must be a non-empty string"
    if _bad_char(source) is not None:
        return f"source {quote(source)} has a control character"
    if source != source.strip():
        return f"source {quote(source)} has surrounding white space"
    return None


def _gosum_problem(line: object) -> str | None:
    if not isinstance(line, str) or not line:
        return "go.sum line must be a non-empty string"
    return _gosum_text_problem(line)


@functools.lru_cache(maxsize=1 << 16)  # decode checks each line, then Manifest() again
def _gosum_text_problem(line: str) -> str | None:
    if _bad_char(line) is not None:
        return f"go.sum line {quote(line)} has a control character"
    fields = line.split(" ")
    if len(fields) != 3 or not all(fields):
        return f"go.sum line {quote(line)} is not three fields separated by single spaces"
    parsed, errors = parse_gosum(line.encode("utf-8"), "")
    if errors:
        return f"go.sum line {quote(line)}: {errors[0].message}"
    if len(parsed) != 1:
        return f"go.sum line {quote(line)} is not a go.sum line the go command keeps"
    return None


def _dir_conflict(paths: Iterable[str]) -> tuple[str, str] | None:
    """(file, path under it) when some path is also a directory of another, else None."""
    files = set(paths)
    for p in sorted(files):
        parts = p.split("/")
        for k in range(1, len(parts)):
            prefix = "/".join(parts[:k])
            if prefix in files:
                return prefix, p
    return None


# --- the data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file on the medium: its relative path, size, SHA-256 and XXH3-128 (lower-case hex)."""

    path: str
    size: int
    sha256: str
    xxh3: str

    def __post_init__(self) -> None:
        why = _path_problem(self.path)
        if why is not None:
            raise ManifestError(why)
        if type(self.size) is not int or self.size < 0:
            raise ManifestError(f"{quote(self.path)}: size must be a non-negative int, not {self.size!r}")
        if not isinstance(self.sha256, str) or _SHA256.fullmatch(self.sha256) is None:
            raise ManifestError(f"{quote(self.path)}: sha256 must be 64 lower-case hex digits")
        if not isinstance(self.xxh3, str) or _XXH3.fullmatch(self.xxh3) is None:
            raise ManifestError(f"{quote(self.path)}: xxh3 must be 32 lower-case hex digits (XXH3-128)")


@dataclass(frozen=True)
class Part:
    """A file beside the manifest: a bundle's part or its SBOM (a plain name, size, SHA-256)."""

    name: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _NAME.fullmatch(self.name) is None:
            raise ManifestError(f"part name {quote(str(self.name))} is not a plain file name ([A-Za-z0-9._-])")
        if type(self.size) is not int or self.size < 0:
            raise ManifestError(f"{quote(self.name)}: size must be a non-negative int, not {self.size!r}")
        if not isinstance(self.sha256, str) or _SHA256.fullmatch(self.sha256) is None:
            raise ManifestError(f"{quote(self.name)}: sha256 must be 64 lower-case hex digits")


@dataclass(frozen=True)
class Manifest:
    """What a medium carries. Entries are kept sorted by path, go.sum lines sorted and unique."""

    created: str
    source: str
    entries: tuple[Entry, ...] = ()
    gosum: tuple[str, ...] = ()
    sequence: int | None = None
    base: str | None = None  # sha256 of the base manifest's text (a differential bundle)
    sbom: Part | None = None
    parts: tuple[Part, ...] = ()
    held: tuple[Entry, ...] = ()  # a differential bundle: files the inside holds already

    def __post_init__(self) -> None:
        for why in (_created_problem(self.created), _source_problem(self.source)):
            if why is not None:
                raise ManifestError(why)
        if self.sequence is not None and (type(self.sequence) is not int or self.sequence < 1):
            raise ManifestError(f"sequence must be a positive int, not {self.sequence!r}")
        if self.base is not None and (not isinstance(self.base, str) or _SHA256.fullmatch(self.base) is None):
            raise ManifestError("base must be 64 lower-case hex digits (the base manifest's sha256)")
        if self.sbom is not None and not isinstance(self.sbom, Part):
            raise ManifestError("sbom must be a Part")
        parts = tuple(self.parts)
        if any(not isinstance(p, Part) for p in parts):
            raise ManifestError("parts must be Part objects")
        names = [p.name for p in parts] + ([self.sbom.name] if self.sbom else [])
        if len(set(names)) != len(names):
            raise ManifestError("two parts (or a part and the SBOM) with one name")
        held = tuple(sorted(self.held, key=lambda e: e.path))
        if any(not isinstance(e, Entry) for e in held):
            raise ManifestError("held must be Entry objects")
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "held", held)
        if isinstance(self.entries, (str, bytes)) or isinstance(self.gosum, (str, bytes)):
            raise ManifestError("entries and gosum must be sequences, not strings")
        entries = tuple(self.entries)
        for e in entries:
            if not isinstance(e, Entry):
                raise ManifestError(f"entries must be Entry objects, not {type(e).__name__}")
        entries = tuple(sorted(entries, key=lambda e: e.path))
        for a, b in zip(entries, entries[1:]):
            if a.path == b.path:
                raise ManifestError(f"two entries for path {quote(a.path)}")
        both = {e.path for e in entries} & {e.path for e in self.held}
        if both:
            raise ManifestError(f"{quote(min(both))} is both carried (file) and held")
        conflict = _dir_conflict([e.path for e in entries] + [e.path for e in self.held])
        if conflict is not None:
            raise ManifestError(f"{quote(conflict[0])} is a file but {quote(conflict[1])} is under it")
        gosum = tuple(self.gosum)
        for line in gosum:
            why = _gosum_problem(line)
            if why is not None:
                raise ManifestError(why)
        object.__setattr__(self, "entries", entries)
        object.__setattr__(self, "gosum", tuple(sorted(set(gosum))))


def utc_timestamp(when: _dt.datetime | None = None) -> str:
    """``when`` (default now; naive means UTC) as the manifest's ``created`` text."""
    if when is None:
        when = _dt.datetime.now(_dt.timezone.utc)
    elif when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- text -----------------------------------------------------------------------------------------


def encode(m: Manifest) -> bytes:
    """The canonical manifest text."""
    lines = [HEADER, f"created {m.created}"]
    if m.sequence is not None:
        lines.append(f"sequence {m.sequence}")
    lines.append(f"source {m.source}")
    if m.base is not None:
        lines.append(f"base {m.base}")
    if m.sbom is not None:
        lines.append(f"sbom {m.sbom.sha256} {m.sbom.size} {m.sbom.name}")
    lines += [f"part {p.sha256} {p.size} {p.name}" for p in m.parts]
    lines += [f"file {e.sha256} {e.xxh3} {e.size} {e.path}" for e in m.entries]
    lines += [f"held {e.sha256} {e.xxh3} {e.size} {e.path}" for e in m.held]
    lines += [f"gosum {g}" for g in m.gosum]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def decode(text: bytes, source: str = "manifest") -> Manifest:
    """Parse canonical manifest text; any deviation is a ``ManifestError`` naming the line.

    ``source`` names the text in messages (``<source>:<line>: <problem>``).
    """

    def fail(lineno: int, message: str) -> ManifestError:
        return ManifestError(message, source=source, lineno=lineno)

    text = bytes(text)
    if not text:
        raise fail(1, "empty file, not an airsync manifest")
    raw_lines = text.split(b"\n")
    if raw_lines[-1] != b"":
        raise fail(len(raw_lines), "no newline at the end of the last line")
    raw_lines.pop()

    lines: list[str] = []
    for n, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(n, "not valid UTF-8") from None
        if not line:
            hint = ""
            if n < len(raw_lines) and raw_lines[n].startswith("— ".encode()):
                hint = " (this looks like a signed manifest: open it with its verifier key)"
            raise fail(n, "blank line" + hint)
        c = _bad_char(line)
        if c is not None:
            raise fail(n, f"forbidden character U+{ord(c):04X}")
        lines.append(line)

    if lines[0] != HEADER:
        if lines[0].startswith(_HEADER_PREFIX):
            raise fail(1, f"unsupported manifest version {quote(lines[0][len(_HEADER_PREFIX):])} (want v1)")
        raise fail(1, f"not an airsync manifest (first line must be {quote(HEADER)})")
    header: dict[str, str] = {}
    keys = ["created", "source"]
    if len(lines) > 2 and lines[2].startswith("sequence "):
        keys.insert(1, "sequence")
    for n, key in enumerate(keys, 2):
        if len(lines) < n:
            raise fail(n, f"missing {quote(key)} line")
        word, sep, value = lines[n - 1].partition(" ")
        if word != key or not sep:
            raise fail(n, f"want a {quote(key)} line, found {quote(lines[n - 1])}")
        header[key] = value
    why = _created_problem(header["created"])
    if why is not None:
        raise fail(2, why)
    sequence = None
    if "sequence" in header:
        if _SIZE.fullmatch(header["sequence"]) is None or header["sequence"] == "0":
            raise fail(3, f"malformed sequence {quote(header['sequence'])} (want a positive integer)")
        sequence = int(header["sequence"])
    why = _source_problem(header["source"])
    if why is not None:
        raise fail(len(keys) + 1, why)

    # Line types come in this order, each at most once where it says so.
    order = {"base": 0, "sbom": 1, "part": 2, "file": 3, "held": 4, "gosum": 5}
    last = -1
    base: str | None = None
    sbom: Part | None = None
    parts: list[Part] = []
    entries: list[Entry] = []
    held: list[Entry] = []
    entry_line: dict[str, int] = {}
    gosum: list[str] = []
    for n, line in enumerate(lines[len(keys) + 1 :], len(keys) + 2):
        word, _, rest = line.partition(" ")
        if word in ("created", "source", "sequence"):
            raise fail(n, f"repeated {quote(word)} line" if word != "sequence" else "sequence line not after created")
        if word not in order:
            raise fail(n, f"unknown line type {quote(word)}")
        if order[word] < last:
            later = next(w for w, i in order.items() if i == last)
            raise fail(n, f"{word} line after the {later} lines")
        if order[word] == last and word in ("base", "sbom"):
            raise fail(n, f"repeated {quote(word)} line")
        last = order[word]
        if word == "base":
            if _SHA256.fullmatch(rest) is None:
                raise fail(n, "malformed base (want the base manifest's sha256, 64 lower-case hex digits)")
            base = rest
        elif word in ("sbom", "part"):
            fields = rest.split(" ")
            if len(fields) != 3 or _SIZE.fullmatch(fields[1]) is None:
                raise fail(n, f"malformed {word} line (want: {word} <sha256> <size> <name>)")
            try:
                item = Part(fields[2], int(fields[1]), fields[0])
            except ManifestError as e:
                raise fail(n, e.message) from None
            if word == "sbom":
                sbom = item
            else:
                parts.append(item)
        elif word in ("file", "held"):
            fields = rest.split(" ", 3)
            if len(fields) != 4:
                raise fail(n, f"malformed {word} line (want: {word} <sha256> <xxh3> <size> <path>)")
            sha, xxh, size, path = fields
            if _SIZE.fullmatch(size) is None:
                raise fail(n, f"malformed size {quote(size)}")
            try:
                entry = Entry(path, int(size), sha, xxh)
            except ManifestError as e:
                raise fail(n, e.message) from None
            same = entries if word == "file" else held
            if path in entry_line:
                raise fail(n, f"path {quote(path)} listed twice (also line {entry_line[path]})")
            if same and entry.path < same[-1].path:
                raise fail(n, f"{word} lines out of order: {quote(path)} after {quote(same[-1].path)}")
            same.append(entry)
            entry_line[entry.path] = n
        else:
            why = _gosum_problem(rest)
            if why is not None:
                raise fail(n, why)
            if gosum and rest <= gosum[-1]:
                raise fail(n, "gosum line repeated" if rest == gosum[-1] else "gosum lines out of order")
            gosum.append(rest)
    names = [p.name for p in parts] + ([sbom.name] if sbom else [])
    if len(set(names)) != len(names):
        raise fail(len(keys) + 2, "two parts (or a part and the SBOM) with one name")

    conflict = _dir_conflict(entry_line)
    if conflict is not None:
        file, under = conflict
        raise fail(
            entry_line[file], f"{quote(file)} is a file but line {entry_line[under]} lists {quote(under)} under it"
        )
    return Manifest(header["created"], header["source"], tuple(entries), tuple(gosum), sequence=sequence,
                    base=base, sbom=sbom, parts=tuple(parts), held=tuple(held))


def digest(m: Manifest) -> str:
    """The sha256 (hex) of the manifest's canonical text: what names it (a bundle's ``base``)."""
    return hashlib.sha256(encode(m)).hexdigest()


# --- signatures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySigner(note.Signer):
    """A signer key loaded from its file, with the counter (``carry.sequence``) that numbers what it signs."""

    counter: Path | None = field(default=None, compare=False)


def sign_manifest(m: Manifest, signer: note.Signer) -> bytes:
    """The signed manifest: ``encode(m)`` as a Go signed note by ``signer``. A key loaded from its
    file (``load_signer``) numbers the manifest first, when it has no sequence yet."""
    return note.sign(encode(number(m, signer)), signer)


def number(m: Manifest, signer: note.Signer) -> Manifest:
    """``m`` with the next sequence number of ``signer``'s counter (as it is without a counter)."""
    counter = getattr(signer, "counter", None)
    if m.sequence is None and counter is not None:
        return replace(m, sequence=next_sequence(counter))
    return m


def open_manifest(data: bytes, verifier: note.Verifier, source: str = "manifest") -> Manifest:
    """The manifest in the signed manifest ``data``, once ``verifier``'s signature on it checks out.

    Raises ``note.MalformedNoteError`` when ``data`` is not a signed note, ``note.UnverifiedNoteError``
    when ``verifier``'s key did not sign it (a manifest replaced by someone else's),
    ``note.InvalidSignatureError`` when the signature does not match the text (altered since it was
    signed), and ``ManifestError`` when the signed text is not a valid manifest. Messages start
    with ``source``.
    """
    key = f"{verifier.name}+{verifier.key_hash:08x}"
    try:
        signed = note.open_note(bytes(data), [verifier])
    except note.UnverifiedNoteError as e:
        others = ", ".join(f"{s.name}+{s.key_hash:08x}" for s in e.note.unverified)
        e.args = (
            f"{source}: not signed by the trusted key {key} (signed only by: {others}); "
            "the manifest was replaced or the wrong verifier key was given",
        )
        raise
    except note.InvalidSignatureError as e:
        e.args = (f"{source}: bad signature by {key}: the manifest was altered after it was signed",)
        raise
    except note.NoteError as e:
        e.args = (f"{source}: not a signed airsync manifest: {e}",)
        raise
    return decode(signed.text, source)


# --- key files ------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never overwriting) with ``data`` and fsync it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file") from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot create: {e.strerror or e}") from None
    try:
        if mode == 0o600:
            os.fchmod(fd, 0o600)  # exactly owner-only, whatever the umask
        write_all(fd, data)
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write: {e.strerror or e}") from None
    os.close(fd)


def keygen(prefix: Path, name: str = "airsync") -> tuple[Path, Path]:
    """Make a new key pair: ``PREFIX.key`` (signer, mode 0600) and ``PREFIX.pub`` (verifier).

    Neither file may exist already. Both are fsynced, and their directory after them.
    Returns (signer key path, verifier key path).
    """
    prefix = Path(prefix)
    key_path = prefix.with_name(prefix.name + ".key")
    pub_path = prefix.with_name(prefix.name + ".pub")
    try:
        skey, vkey = note.generate_key(name)
    except note.InvalidKeyError as e:
        raise KeyFileError(f"cannot make a key: {e}") from None
    for p in (key_path, pub_path):
        if os.path.lexists(p):
            raise KeyFileError(f"{p}: already exists; refusing to overwrite a key file")
    try:  # e.g. /etc/airsync on a fresh host
        key_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as e:
        raise KeyFileError(f"{key_path.parent}: cannot create the directory: {e.strerror or e}") from None
    _write_new(key_path, (skey + "\n").encode(), 0o600)
    try:
        _write_new(pub_path, (vkey + "\n").encode(), 0o644)
    except KeyFileError:
        key_path.unlink(missing_ok=True)
        raise
    try:
        fsync_dir(key_path.parent)
    except OSError as e:
        raise KeyFileError(f"{key_path.parent}: cannot sync directory: {e.strerror or e}") from None
    return key_path, pub_path


def _read_key_file(path: Path) -> tuple[str, os.stat_result]:
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read key file: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        data = os.read(fd, _KEY_FILE_MAX + 1)
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read key file: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > _KEY_FILE_MAX:
        raise KeyFileError(f"{path}: too large to be a key file")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not a key file (not UTF-8 text)") from None
    if not text:
        raise KeyFileError(f"{path}: empty key file")
    return text, st


def load_signer(path: Path) -> note.Signer:
    """The signer key in ``path`` (a ``.key`` file from ``keygen``), which only its owner may access."""
    text, st = _read_key_file(path)
    if not text.startswith(_SIGNER_PREFIX):
        try:
            note.parse_verifier(text)
        except note.InvalidKeyError:
            raise KeyFileError(f"{path}: not a signer key (want PRIVATE+KEY+<name>+...)") from None
        raise KeyFileError(f"{path}: this is a verifier (public) key; signing needs the signer key (the .key file)")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: permissions {mode:04o} are too open: a signer key must be accessible by its "
            f"owner only (chmod 600 {path})"
        )
    try:
        key = note.parse_signer(text)
    except note.InvalidKeyError as e:  # its messages never quote the key
        raise KeyFileError(f"{path}: not a valid signer key: {e}") from None
    return KeySigner(key.name, key.key_hash, key.seed, counter=counter_path(path))


def load_verifier(path: Path) -> note.Verifier:
    """The verifier key in ``path`` (a ``.pub`` file from ``keygen``)."""
    text, _ = _read_key_file(path)
    if text.startswith(_SIGNER_PREFIX):
        raise KeyFileError(
            f"{path}: this is a private signer key; verifying needs the verifier key (the .pub file). "
            "The signer key must stay on the border host"
        )
    try:
        return note.parse_verifier(text)
    except note.InvalidKeyError:
        raise KeyFileError(f"{path}: not a valid verifier key (want <name>+<hash>+<key>)") from None


# --- comparing with a medium ----------------------------------------------------------------------


@dataclass(frozen=True)
class Diff:
    """How the files found differ from a manifest; each field is a sorted tuple of paths.

    ``missing``: listed, not found. ``extra``: found, not listed. ``truncated``: smaller than
    listed. ``grown``: larger than listed. ``altered``: listed size, different SHA-256.
    """

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    altered: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()
    grown: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when the files found are exactly those listed, with their sizes and hashes."""
        return not (self.missing or self.extra or self.altered or self.truncated or self.grown)

    def problems(self) -> list[tuple[str, str]]:
        """Every problem as (path, kind), sorted by path; kind is a field name."""
        out = [(p, kind) for kind in ("missing", "extra", "altered", "truncated", "grown") for p in getattr(self, kind)]
        return sorted(out)


def diff(manifest: Manifest, actual: Mapping[str, tuple[int, str]]) -> Diff:
    """Compare ``manifest`` with ``actual``, which maps each path found to its (size, sha256 hex)."""
    listed = {e.path: e for e in manifest.entries}
    missing, altered, truncated, grown = [], [], [], []
    for path, entry in listed.items():
        if path not in actual:
            missing.append(path)
            continue
        size, sha = actual[path]
        if size < entry.size:
            truncated.append(path)
        elif size > entry.size:
            grown.append(path)
        elif sha.lower() != entry.sha256:
            altered.append(path)
    extra = [p for p in actual if p not in listed]
    return Diff(*(tuple(sorted(x)) for x in (missing, extra, altered, truncated, grown)))
