"""Signed notes, as golang.org/x/mod/sumdb/note defines them: how the Go checksum database signs.

A signed note is a UTF-8 text followed by signatures of it. sum.golang.org signs each tree head
(``go.sum database tree\\n<size>\\n<base64 root hash>\\n``) this way, and the go command refuses a
tree it cannot verify with the key in GOSUMDB. This module reads and writes that format exactly as
Go's package does, so airsync can check what it carries before handing it on.

The format::

    <text: any number of lines, the last one ending in "\\n">
    <a blank line>
    — <name> <base64(4-byte key hash ‖ signature)>\\n        (one or more; at most 100)

The signature line starts with an em dash (U+2014) and a space. The signed bytes are the text alone,
final newline included, blank line excluded. The whole message must be valid UTF-8 without ASCII
control characters other than newline; text and signatures are split at the *last* blank line.

Keys are named, and the name plus a 32-bit key hash (the first four bytes, big endian, of
``sha256(name + "\\n" + 0x01 ‖ public key)``) picks the key for a signature. A verifier key is the
text ``<name>+<8 hex digits of hash>+<base64(0x01 ‖ 32-byte Ed25519 public key)>``; a signer key is
``PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ 32-byte Ed25519 seed)>``. 0x01 is the only algorithm
(Ed25519). A name is non-empty UTF-8 without '+' or any Unicode white space.

``open_note`` follows Go's ``note.Open`` step by step: signatures by keys the caller does not know
are kept aside as unverified (identical lines once); the first signature by a known key is checked
and a bad one fails the whole note (``InvalidSignatureError``), later signatures by the same key are
ignored; a note no known key signed is an ``UnverifiedNoteError``, which still carries the parsed note.

Where this differs from Go, it is stricter or simpler, never looser:

* ``sign`` never returns bytes that ``open_note`` would call malformed: text that is not UTF-8 or has
  control characters, no signatures at all, or more than 100, are refused (Go writes them anyway).
* ``generate_key`` refuses a name that the key parsers would refuse (Go generates unusable keys).
* Verifiers are a plain iterable. As with Go's VerifierList, two verifiers with the same name and
  hash are ambiguous, even the same one given twice, and a signature naming them fails.
* Ed25519 comes from the ``cryptography`` package (OpenSSL). For honest signatures it agrees with Go's
  crypto/ed25519; the two may differ only on deliberately malformed ones (non-canonical encodings).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from airsync.errors import AirsyncError

__all__ = [
    "SUM_GOLANG_ORG",
    "MAX_SIGNATURES",
    "NoteError",
    "InvalidKeyError",
    "UnverifiedNoteError",
    "InvalidSignatureError",
    "MalformedNoteError",
    "Verifier",
    "Signer",
    "Signature",
    "Note",
    "parse_verifier",
    "parse_signer",
    "generate_key",
    "sign",
    "open_note",
    "key_hash",
    "is_valid_name",
]

#: The go command's built-in key for the Go checksum database.
SUM_GOLANG_ORG = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

#: Go's Open gives up on a note with more signature lines than this.
MAX_SIGNATURES = 100

ALG_ED25519 = 0x01

_SIG_PREFIX = "— ".encode()  # em dash U+2014, space
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")  # strconv.ParseUint(s, 16, 32) with len(s) == 8
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f]")

# Go's unicode.IsSpace (the Unicode White_Space property). Not str.isspace(), which also takes
# U+001C..U+001F and would turn names Go accepts into errors.
_WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)


class NoteError(AirsyncError):
    """A signed note or a note key that cannot be trusted."""


class InvalidKeyError(NoteError):
    """A verifier or signer key that is malformed, of an unknown algorithm or has the wrong hash."""


class MalformedNoteError(NoteError):
    """Bytes that are not a signed note (Go's "malformed note")."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed note: {reason}")


class InvalidSignatureError(NoteError):
    """A known key's signature on the note does not verify."""

    def __init__(self, name: str, key_hash: int) -> None:
        self.name = name
        self.key_hash = key_hash
        super().__init__(f"invalid signature for key {name}+{key_hash:08x}")


class UnverifiedNoteError(NoteError):
    """A well-formed note that no known key signed; ``note`` holds it, all signatures unverified."""

    def __init__(self, note: Note) -> None:
        self.note = note
        keys = ", ".join(f"{s.name}+{s.key_hash:08x}" for s in note.unverified)
        super().__init__(f"note has no verifiable signatures (signed only by unknown keys: {keys})")


def is_valid_name(name: str) -> bool:
    """Whether ``name`` may name a key: non-empty UTF-8 without '+' or Unicode white space."""
    if not name or "+" in name or any(c in _WHITE_SPACE for c in name):
        return False
    try:
        name.encode("utf-8")  # a str with lone surrogates is not UTF-8
    except UnicodeEncodeError:
        return False
    return True


def key_hash(name: str, key: bytes) -> int:
    """The 32-bit hash identifying ``key`` (algorithm byte included) under ``name``."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(s: str) -> bytes | None:
    """Go's base64.StdEncoding.DecodeString: padding required, CR and LF skipped; None on error."""
    s = s.replace("\r", "").replace("\n", "")
    if _BASE64.fullmatch(s) is None:
        return None
    return base64.b64decode(s)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Verifier:
    """One Ed25519 public key that checks signatures; construction checks name, size and hash."""

    name: str
    key_hash: int
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", bytes(self.public_key))
        if not is_valid_name(self.name):
            raise InvalidKeyError(f"invalid key name {self.name!r}")
        if len(self.public_key) != 32:
            raise InvalidKeyError(f"Ed25519 public key must be 32 bytes, not {len(self.public_key)}")
        if self.key_hash != key_hash(self.name, bytes([ALG_ED25519]) + self.public_key):
            raise InvalidKeyError(f"invalid verifier hash for key {self.name}+{self.key_hash:08x}")
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """The verifier for a raw 32-byte Ed25519 key (Go's NewEd25519VerifierKey + NewVerifier)."""
        if len(public_key) != 32:
            raise InvalidKeyError(f"Ed25519 public key must be 32 bytes, not {len(public_key)}")
        if not is_valid_name(name):
            raise InvalidKeyError(f"invalid key name {name!r}")
        return cls(name, key_hash(name, bytes([ALG_ED25519]) + public_key), public_key)

    @property
    def vkey(self) -> str:
        """The encoded verifier key, ``<name>+<hash>+<base64 key>``."""
        return f"{self.name}+{self.key_hash:08x}+{_b64encode(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (the 64 bytes after the key hash) is this key's signature of ``msg``."""
        if len(sig) != 64:
            return False
        try:
            self._key.verify(bytes(sig), bytes(msg))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """One Ed25519 private key (kept as its 32-byte seed) that signs notes. Keep it secret."""

    name: str
    key_hash: int
    seed: bytes = field(repr=False)
    _key: Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", bytes(self.seed))
        if not is_valid_name(self.name):
            raise InvalidKeyError(f"invalid key name {self.name!r}")
        if len(self.seed) != 32:
            raise InvalidKeyError("malformed signer key")
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        public = key.public_key().public_bytes_raw()
        if self.key_hash != key_hash(self.name, bytes([ALG_ED25519]) + public):
            raise InvalidKeyError(f"invalid signer hash for key {self.name}+{self.key_hash:08x}")
        object.__setattr__(self, "_key", key)

    @property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    @property
    def verifier(self) -> Verifier:
        """The matching verifier."""
        return Verifier(self.name, self.key_hash, self.public_key)

    @property
    def skey(self) -> str:
        """The encoded signer key, ``PRIVATE+KEY+<name>+<hash>+<base64 seed>``."""
        return f"PRIVATE+KEY+{self.name}+{self.key_hash:08x}+{_b64encode(bytes([ALG_ED25519]) + self.seed)}"

    def sign(self, msg: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``msg``."""
        return self._key.sign(bytes(msg))


def parse_verifier(vkey: str) -> Verifier:
    """Parse ``<name>+<hash>+<base64(0x01 ‖ key)>`` with the checks of Go's note.NewVerifier."""
    name, _, rest = vkey.partition("+")
    hash16, _, key64 = rest.partition("+")
    key = _b64decode(key64)
    if _HEX8.fullmatch(hash16) is None or key is None or not is_valid_name(name) or not key:
        raise InvalidKeyError(f"malformed verifier id {vkey!r}")
    khash = int(hash16, 16)
    if khash != key_hash(name, key):
        raise InvalidKeyError(f"invalid verifier hash in {vkey!r}")
    if key[0] != ALG_ED25519:
        raise InvalidKeyError(f"unknown verifier algorithm {key[0]} in {vkey!r}")
    if len(key) != 33:
        raise InvalidKeyError(f"malformed verifier id {vkey!r}")
    return Verifier(name, khash, key[1:])


def parse_signer(skey: str) -> Signer:
    """Parse ``PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)>`` as Go's note.NewSigner does.

    Error messages never quote the key: it is secret.
    """
    priv1, _, rest = skey.partition("+")
    priv2, _, rest = rest.partition("+")
    name, _, rest = rest.partition("+")
    hash16, _, key64 = rest.partition("+")
    key = _b64decode(key64)
    if (
        priv1 != "PRIVATE"
        or priv2 != "KEY"
        or _HEX8.fullmatch(hash16) is None
        or key is None
        or not is_valid_name(name)
        or not key
    ):
        raise InvalidKeyError("malformed signer key")
    if key[0] != ALG_ED25519:
        raise InvalidKeyError(f"unknown signer algorithm {key[0]}")
    if len(key) != 33:
        raise InvalidKeyError("malformed signer key")
    # The hash is over the public key, so it can only be checked once the key is derived (Signer does).
    return Signer(name, int(hash16, 16), key[1:])


def generate_key(name: str) -> tuple[str, str]:
    """A new random Ed25519 key pair for ``name``: (signer key, verifier key), both encoded."""
    if not is_valid_name(name):
        raise InvalidKeyError(f"invalid key name {name!r}")
    private = Ed25519PrivateKey.generate()
    public = bytes([ALG_ED25519]) + private.public_key().public_bytes_raw()
    signer = Signer(name, key_hash(name, public), private.private_bytes_raw())
    return signer.skey, signer.verifier.vkey


@dataclass(frozen=True)
class Signature:
    """One signature line of a note, verified or not: key name, key hash and the base64 as written."""

    name: str
    key_hash: int
    b64: str

    @property
    def line(self) -> str:
        return f"— {self.name} {self.b64}\n"


@dataclass(frozen=True)
class Note:
    """A note's text (ending in newline) with its verified and unverified signatures, in note order."""

    text: bytes
    sigs: tuple[Signature, ...] = ()
    unverified: tuple[Signature, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", bytes(self.text))
        object.__setattr__(self, "sigs", tuple(self.sigs))
        object.__setattr__(self, "unverified", tuple(self.unverified))


@dataclass(frozen=True)
class _Line:
    text: str  # the line after the "— " prefix, as Go keys unverified duplicates
    sig: Signature
    raw: bytes  # the signature proper, key hash removed


def _parse(msg: bytes) -> tuple[bytes, list[_Line]]:
    """Split and syntax-check a signed note; no key is consulted."""
    try:
        msg.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNoteError("not valid UTF-8") from None
    if _CONTROL.search(msg):
        raise MalformedNoteError("control character")
    split = msg.rfind(b"\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line before the signatures")
    text, block = msg[: split + 1], msg[split + 2 :]
    if not block.endswith(b"\n"):
        raise MalformedNoteError("no signature lines" if not block else "signatures do not end in a newline")
    lines: list[_Line] = []
    for line in block[:-1].split(b"\n"):
        if not line.startswith(_SIG_PREFIX):
            raise MalformedNoteError(f"not a signature line: {line.decode()!r}")
        rest = line[len(_SIG_PREFIX) :].decode()
        name, _, b64 = rest.partition(" ")
        raw = _b64decode(b64)
        if raw is None or not is_valid_name(name) or not b64 or len(raw) < 5:
            raise MalformedNoteError(f"bad signature line: {line.decode()!r}")
        if len(lines) == MAX_SIGNATURES:
            raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
        sig = Signature(name, int.from_bytes(raw[:4], "big"), b64)
        lines.append(_Line(rest, sig, raw[4:]))
    return text, lines


def open_note(msg: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse the signed note ``msg`` and verify its signatures against ``verifiers`` (Go's note.Open).

    Returns the note when at least one known key signed it. Raises ``MalformedNoteError`` for bad
    syntax, ``InvalidSignatureError`` when a known key's signature is wrong, ``UnverifiedNoteError``
    when no known key signed, and ``InvalidKeyError`` when a signature names two different known keys.
    """
    known: dict[tuple[str, int], Verifier] = {}
    ambiguous: set[tuple[str, int]] = set()
    for v in verifiers:
        if not isinstance(v, Verifier):
            raise TypeError(f"open_note wants Verifier objects, not {type(v).__name__}")
        k = (v.name, v.key_hash)
        if k in known:
            ambiguous.add(k)
        known.setdefault(k, v)

    text, lines = _parse(bytes(msg))
    sigs: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    seen_unverified: set[str] = set()
    for line in lines:
        k = (line.sig.name, line.sig.key_hash)
        if k in ambiguous:
            raise InvalidKeyError(f"ambiguous key {k[0]}+{k[1]:08x}")
        v = known.get(k)
        if v is None:
            if line.text not in seen_unverified:
                seen_unverified.add(line.text)
                unverified.append(line.sig)
            continue
        if k in seen:  # only a key's first signature counts, as in Go
            continue
        seen.add(k)
        if not v.verify(text, line.raw):
            raise InvalidSignatureError(*k)
        sigs.append(line.sig)

    note = Note(text, tuple(sigs), tuple(unverified))
    if not sigs:
        raise UnverifiedNoteError(note)
    return note


def sign(text: bytes | Note, *signers: Signer) -> bytes:
    """The signed note: ``text``, a blank line, and one signature line per signer (Go's note.Sign).

    ``text`` may be a ``Note`` to add signatures to one: its signatures (verified, then unverified)
    are kept, except those by the keys now signing, and the new ones follow them. The text must end
    in a newline. The result always opens with the signers' verifiers.
    """
    if isinstance(text, Note):
        body, existing = text.text, text.sigs + text.unverified
    else:
        body, existing = bytes(text), ()
    if not body.endswith(b"\n"):
        raise MalformedNoteError("text does not end in a newline")
    have = set()
    new_lines = []
    for s in signers:
        if not isinstance(s, Signer):
            raise TypeError(f"sign wants Signer objects, not {type(s).__name__}")
        have.add((s.name, s.key_hash))
        b64 = _b64encode(s.key_hash.to_bytes(4, "big") + s.sign(body))
        new_lines.append(Signature(s.name, s.key_hash, b64).line)
    old_lines = []
    for sig in existing:
        if not is_valid_name(sig.name):
            raise MalformedNoteError(f"invalid signature name {sig.name!r}")
        if (sig.name, sig.key_hash) in have:
            continue
        raw = _b64decode(sig.b64)
        if raw is None or len(raw) < 4 or int.from_bytes(raw[:4], "big") != sig.key_hash:
            raise MalformedNoteError(f"signature by {sig.name} does not match its key hash")
        old_lines.append(sig.line)
    msg = body + b"\n" + "".join(old_lines + new_lines).encode()
    _parse(msg)  # never hand out what open_note would call malformed
    return msg
