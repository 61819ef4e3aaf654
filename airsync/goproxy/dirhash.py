"""The ``h1:`` hash of go.sum, computed exactly as golang.org/x/mod/sumdb/dirhash computes it.

Hash1 over a set of files: sort the names bytewise, write one line ``<hex sha256 of content>  <name>\\n``
per file, sha256 that summary and return ``h1:`` + standard padded base64. The go.sum ``/go.mod`` line
is Hash1 over one file named ``go.mod``; the module line is Hash1 over a module zip's entries, named as
they are in the zip (with their ``path@version/`` prefix) and holding their decompressed bytes.

Zip entries are read here with a small streaming reader of our own (``zip_entry_sha256``) instead of
``ZipFile.open``: it reads 1 MiB at a time, and it reproduces what Go's archive/zip reader accepts and
rejects (real size must equal the declared size, CRC checks, directory entries), which zipfile does
not: zipfile silently cuts an entry off at its declared size, so a zip bomb would go unnoticed.
``zipfile`` is still used to parse the central directory.

Names are text, but Go hashes a zip name's raw bytes. zipfile decodes names without the UTF-8 flag as
CP437; ``zip_entry_name`` turns them back into the raw bytes and decodes those as UTF-8 with
``surrogateescape``, so a name that is not UTF-8 at all still round-trips to its exact bytes, and
``hash1_digests`` encodes names the same way.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from typing import BinaryIO

__all__ = [
    "hash1_digests",
    "hash1",
    "hash_gomod",
    "hash_zip",
    "zip_entry_name",
    "zip_entry_sha256",
    "open_zip",
    "ZipReadError",
    "CHUNK",
]

CHUNK = 1 << 20  # read and decompress in pieces of this size, so memory stays flat

_HEX64 = re.compile(r"[0-9a-f]{64}")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Local file header: signature, version needed, flags, method, time, date, crc, sizes, name/extra lengths.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIG = b"PK\x03\x04"
_DESCRIPTOR_SIG = b"PK\x07\x08"
_FLAG_ENCRYPTED = 0x01
_FLAG_DATA_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800


class ZipReadError(ValueError):
    """A zip (or one entry of it) that Go's archive/zip would refuse to read.

    ``entry`` is the entry's name (as ``zip_entry_name`` gives it), or None for the whole file.
    """

    def __init__(self, entry: str | None, message: str) -> None:
        self.entry = entry
        self.reason = message
        super().__init__(f"{entry!r}: {message}" if entry is not None else message)


def _name_bytes(name: str) -> bytes:
    # surrogateescape gives back the exact raw bytes of names that were not valid UTF-8.
    return name.encode("utf-8", "surrogateescape")


def hash1_digests(entries: Iterable[tuple[str, str]]) -> str:
    """Hash1 from (name, lowercase hex sha256 of content) pairs.

    Raises ValueError for a name containing a newline or a digest that is not 64 lowercase hex digits.
    """
    lines: list[tuple[bytes, str]] = []
    for name, digest in entries:
        if "\n" in name:
            raise ValueError(f"dirhash: file names with newlines are not supported: {name!r}")
        # An upper-case or short digest would silently give a different h1, never a match.
        if not _HEX64.fullmatch(digest):
            raise ValueError(f"dirhash: not a lowercase hex sha256 digest for {name!r}: {digest!r}")
        lines.append((_name_bytes(name), digest))
    # Go sorts strings by bytes; sorting the encoded names gives that order (Python's str order differs
    # from it for surrogate-escaped bytes).
    lines.sort(key=lambda line: line[0])
    summary = hashlib.sha256()
    for raw, digest in lines:
        summary.update(digest.encode("ascii") + b"  " + raw + b"\n")
    return "h1:" + base64.b64encode(summary.digest()).decode("ascii")


def hash1(files: Iterable[tuple[str, bytes]]) -> str:
    """Hash1 from (name, content) pairs."""
    return hash1_digests((name, hashlib.sha256(data).hexdigest()) for name, data in files)


def hash_gomod(data: bytes) -> str:
    """The go.sum ``/go.mod`` hash of a ``.mod`` file's bytes."""
    return hash1([("go.mod", data)])


def zip_entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as Go sees it (its raw bytes), as text.

    ``orig_filename`` because zipfile cuts ``filename`` at a NUL byte; Go keeps it.
    """
    name = info.orig_filename
    if info.flag_bits & _FLAG_UTF8:
        return name
    # zipfile decoded the raw bytes as CP437 (a bijection over all 256 bytes): undo that.
    return name.encode("cp437").decode("utf-8", "surrogateescape")


def open_zip(fp: BinaryIO) -> zipfile.ZipFile:
    """Parse the central directory of the zip in ``fp``; any parse failure becomes ZipReadError."""
    try:
        return zipfile.ZipFile(fp)
    except zipfile.BadZipFile as e:
        raise ZipReadError(None, f"not a valid zip file: {e}") from e
    except UnicodeDecodeError as e:
        # zipfile decodes UTF-8-flagged names strictly while parsing the directory.
        raise ZipReadError(None, f"entry name flagged UTF-8 is not valid UTF-8: {e}") from e
    except (ValueError, struct.error, EOFError) as e:
        raise ZipReadError(None, f"not a valid zip file: {e}") from e


def _read_exact(fp: BinaryIO, n: int) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise EOFError
    return data


def zip_entry_sha256(fp: BinaryIO, info: zipfile.ZipInfo) -> str:
    """Stream one entry of the zip open in ``fp`` and return the hex sha256 of its content.

    Behaves like Go's ``(*zip.File).Open`` plus reading to EOF: stored and deflate only; a directory
    entry (name ending '/') reads as empty and must declare size 0; the real size must equal the
    declared one (more is a zip bomb, found after at most one extra piece); the CRC is checked against
    the data descriptor when there is one, else against the header's CRC unless that is 0.
    Raises ZipReadError.
    """
    name = zip_entry_name(info)
    declared = info.file_size
    if name.endswith("/"):
        # Go tolerates compressed bytes on a directory (the jar tool writes them) but not content.
        if declared != 0:
            raise ZipReadError(name, f"directory entry declares {declared} bytes of content")
        return _EMPTY_SHA256
    if info.flag_bits & _FLAG_ENCRYPTED:
        raise ZipReadError(name, "encrypted entry")
    method = info.compress_type
    if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ZipReadError(name, f"unsupported compression method {method}")

    try:
        fp.seek(info.header_offset)
        header = _LOCAL_HEADER.unpack(_read_exact(fp, _LOCAL_HEADER.size))
        if header[0] != _LOCAL_SIG:
            raise ZipReadError(name, "bad local file header signature")
        # Like Go, only the name/extra lengths of the local header matter; sizes come from the directory.
        fp.seek(info.header_offset + _LOCAL_HEADER.size + header[10] + header[11])

        sha = hashlib.sha256()
        crc = 0
        total = 0

        def take(out: bytes) -> None:
            nonlocal crc, total
            total += len(out)
            if total > declared:
                raise ZipReadError(
                    name, f"zip bomb: content is larger than its declared size ({declared} bytes)"
                )
            sha.update(out)
            crc = zlib.crc32(out, crc)

        left = info.compress_size
        inflater = zlib.decompressobj(-zlib.MAX_WBITS) if method == zipfile.ZIP_DEFLATED else None
        while left > 0 and not (inflater is not None and inflater.eof):
            # A short read is only fatal if more is needed: like Go, a deflate stream that ends before
            # the end of the file is fine even if the declared compressed size runs past it.
            piece = fp.read(min(CHUNK, left))
            if not piece:
                raise EOFError
            left -= len(piece)
            if inflater is None:
                take(piece)
                continue
            while True:
                # max_length caps each output piece: a tiny input cannot blow up memory.
                out = inflater.decompress(piece, CHUNK)
                take(out)
                piece = inflater.unconsumed_tail
                if inflater.eof or (not piece and len(out) < CHUNK):
                    break
        if inflater is not None and not inflater.eof:
            raise EOFError  # the deflate stream stops before its end
        if total != declared:
            raise ZipReadError(
                name, f"content is {total} bytes, smaller than its declared size ({declared} bytes)"
            )
        if info.flag_bits & _FLAG_DATA_DESCRIPTOR:
            fp.seek(info.header_offset + _LOCAL_HEADER.size + header[10] + header[11] + info.compress_size)
            first = _read_exact(fp, 4)
            # The descriptor's signature is optional; without it the first 4 bytes are the CRC.
            expected = _read_exact(fp, 4) if first == _DESCRIPTOR_SIG else first
            if struct.unpack("<L", expected)[0] != info.CRC:
                raise ZipReadError(name, "checksum error (CRC-32 in data descriptor does not match)")
            if crc != info.CRC:
                raise ZipReadError(name, "checksum error (CRC-32 mismatch)")
        elif info.CRC != 0 and crc != info.CRC:
            # Go skips the check when the header's CRC is 0 ("not set"); so do we, to accept what it accepts.
            raise ZipReadError(name, "checksum error (CRC-32 mismatch)")
    except EOFError as e:
        raise ZipReadError(name, "unexpected end of data (truncated zip?)") from e
    except zlib.error as e:
        raise ZipReadError(name, f"corrupt deflate data: {e}") from e
    except struct.error as e:
        raise ZipReadError(name, f"corrupt local file header: {e}") from e
    return sha.hexdigest()


def hash_zip(path: str | os.PathLike[str]) -> str:
    """Hash1 over the entries of the zip at ``path``, like dirhash.HashZip; streams every entry.

    Every entry counts, directory entries included (as empty files), in central directory order; a
    duplicated name appears twice with the content of its last entry, as in Go. No module zip rules
    are checked here (see modzip.check_zip). Raises ZipReadError for a zip Go could not read, OSError
    for I/O errors.
    """
    with open(path, "rb") as fp:
        with open_zip(fp) as zf:
            infos = zf.infolist()
            names = [zip_entry_name(info) for info in infos]
            digests: dict[str, str] = {}
            for name, info in zip(names, infos):
                digests[name] = zip_entry_sha256(fp, info)
    return hash1_digests((name, digests[name]) for name in names)
