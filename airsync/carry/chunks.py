"""Content-defined chunk signatures and delta plans for copying a mirror to a medium or peer.

To copy a file that the receiving side partly has already (another version of the same module,
a zip that shares most entries with its predecessor), the receiver needs to know which parts it
has. Fixed-size blocks fail here: Go module zips name every entry ``path@version/...``, so two
versions share *contents* but at shifted offsets, and one inserted byte shifts every later block.
Content-defined chunking (CDC) cuts where the data itself says so (a rolling hash over the last
few bytes matches a mask), so an insertion changes only the chunks around it and shared content
produces identical chunks at any offset.

How it works:

* ``signature_of_file``/``signature_of_bytes`` cut the data with FastCDC (``pyfastcdc``, native
  code that releases the GIL; no hash is ever rolled in Python) and, in the same single pass over
  each chunk while it is hot in cache, compute the chunk's xxh3_128, the whole-file xxh3_128 and
  the whole-file SHA-256. Files are streamed through a fixed buffer (``readinto``), never read
  whole and never mmapped: a read error on a pulled USB stick then is an ``OSError``, not a
  SIGBUS that kills the process.
* ``encode``/``decode`` turn a ``FileSignature`` into a compact, versioned, self-checking sidecar
  (about 20 bytes per ~80 KiB of data) that a peer can serve next to the file, like a ``.zsync``.
* ``index_chunks`` maps every chunk hash the receiver holds, in any file, to one place holding it;
  ``plan_delta`` turns a target signature plus that index into ``Copy`` pieces (from local files)
  and ``Fetch`` pieces (byte ranges of the target on the remote), coalescing fetches separated by
  small gaps into one range request. Planning is pure; the caller assembles the file and must
  still check its SHA-256 (local files may have changed since they were indexed).

Chunk sizes are 16/64/256 KiB min/avg/max, as casync uses: small enough that a changed Go source
file inside a zip costs about one chunk, large enough that a signature stays ~0.025% of the data
and a 1 GiB file is ~13k chunks (planning cost, request count). FastCDC's cut-point skipping makes
the real mean about min + avg, ~80 KiB. These sizes, the gear table (pyfastcdc's default, seed
0) and the normalization level are part of the sidecar format: they are written into it, and
``decode`` refuses a sidecar made with other settings, whose chunks would never match ours.

Sidecar layout (version 1, little-endian)::

    magic      8 bytes  b"ASYNCSIG"
    version    u16      1
    flags      u16      0 (reserved)
    min, avg, max chunk size, normalization   4 x u32
    size       u64      file size in bytes
    xxh3       16 bytes whole-file xxh3_128
    sha256     32 bytes whole-file SHA-256
    count      u64      number of chunks
    count x (length u32, xxh3 16 bytes)      offsets are the running sum of lengths
    check      16 bytes xxh3_128 of everything above
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import xxhash

from airsync.errors import AirsyncError, ConfigError

if TYPE_CHECKING:
    import pyfastcdc

__all__ = [
    "CHUNK_MIN",
    "CHUNK_AVG",
    "CHUNK_MAX",
    "NORMALIZATION",
    "DEFAULT_COALESCE_GAP",
    "ChunkError",
    "SignatureFormatError",
    "decode_summary",
    "Chunk",
    "FileSignature",
    "Copy",
    "Fetch",
    "Piece",
    "signature_of_bytes",
    "signature_of_file",
    "encode",
    "encoded_size",
    "max_encoded_size",
    "decode",
    "index_chunks",
    "plan_delta",
]

KiB = 1024

#: Chunking parameters (casync's 16/64/256 KiB). Changing any of them changes every chunk
#: boundary and so needs a new sidecar version.
CHUNK_MIN = 16 * KiB
CHUNK_AVG = 64 * KiB
CHUNK_MAX = 256 * KiB
#: FastCDC normalized chunking level (NC); 1 is the fastcdc-rs/pyfastcdc default.
NORMALIZATION = 1

#: Default for ``plan_delta(coalesce_gap=...)``: a range request costs about one round trip; on a
#: 1 Gb/s LAN with ~0.5 ms RTT that is ~64 KiB of data, so fetching a local gap of up to 64 KiB
#: again is cheaper than a second request.
DEFAULT_COALESCE_GAP = 64 * KiB

_XXH3_LEN = 16
_SHA256_LEN = 32

MAGIC = b"ASYNCSIG"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sHHIIIIQ16s32sQ")
_ENTRY = struct.Struct("<I16s")
_CHECK_LEN = 16


class ChunkError(AirsyncError):
    """A file could not be signed (for example, it changed while it was read)."""


class SignatureFormatError(ChunkError):
    """A signature or its sidecar encoding is malformed, truncated or from another format."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One content-defined chunk: ``length`` bytes at ``offset``, with their xxh3_128 digest."""

    offset: int
    length: int
    xxh3: bytes


@dataclass(frozen=True, slots=True)
class FileSignature:
    """What a receiver needs to rebuild a file: its size, whole-file hashes and chunk list.

    The chunks tile ``[0, size)`` exactly, in order. Construction checks this and the digest
    lengths, so every ``FileSignature`` in the program is consistent.
    """

    size: int
    xxh3: bytes
    sha256: bytes
    chunks: tuple[Chunk, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise SignatureFormatError(f"negative file size {self.size}")
        if len(self.xxh3) != _XXH3_LEN:
            raise SignatureFormatError(f"whole-file xxh3 must be {_XXH3_LEN} bytes")
        if len(self.sha256) != _SHA256_LEN:
            raise SignatureFormatError(f"sha256 must be {_SHA256_LEN} bytes")
        pos = 0
        for i, c in enumerate(self.chunks):
            if c.offset != pos or c.length <= 0 or len(c.xxh3) != _XXH3_LEN:
                raise SignatureFormatError(
                    f"chunk {i} (offset {c.offset}, length {c.length}) does not continue at {pos}"
                )
            pos += c.length
        if pos != self.size:
            raise SignatureFormatError(f"chunks cover {pos} bytes, file size is {self.size}")


@dataclass(frozen=True, slots=True)
class Copy:
    """Take ``length`` bytes at ``offset`` of the local file ``path``."""

    path: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Fetch:
    """Fetch ``length`` bytes at ``offset`` of the target from the remote (one Range request)."""

    offset: int
    length: int


Piece = Copy | Fetch


# --- signing -------------------------------------------------------------------------------


def _chunker() -> pyfastcdc.FastCDC:
    # A FastCDC object is cheap and not safe to share between threads: make one per call.
    # Imported here: a no-op sync or a mirror's start-up never cuts anything.
    import pyfastcdc

    return pyfastcdc.FastCDC(
        CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX, normalized_chunking=NORMALIZATION
    )


def _sign(cuts: Iterable[pyfastcdc.Chunk]) -> tuple[int, bytes, bytes, tuple[Chunk, ...]]:
    """Hash each cut once while it is in cache: chunk xxh3, whole-file xxh3 and SHA-256."""
    whole = xxhash.xxh3_128()
    sha = hashlib.sha256()
    chunks: list[Chunk] = []
    size = 0
    xxh3_128 = xxhash.xxh3_128_digest
    for cut in cuts:
        data = cut.data  # for cut_stream, valid only until the next chunk is produced
        chunks.append(Chunk(cut.offset, cut.length, xxh3_128(data)))
        whole.update(data)
        sha.update(data)
        size += cut.length
    return size, whole.digest(), sha.digest(), tuple(chunks)


def signature_of_bytes(data: bytes | bytearray | memoryview) -> FileSignature:
    """The signature of an in-memory buffer (the same as of a file with these bytes)."""
    size, x, s, chunks = _sign(_chunker().cut_buf(data))
    return FileSignature(size, x, s, chunks)


def signature_of_file(path: str | os.PathLike[str]) -> FileSignature:
    """The signature of a regular file, streamed in one pass through a bounded buffer.

    Raises ``OSError`` for read errors and ``ChunkError`` if the file is not regular or its
    size changed while it was read (it is then not one consistent version).
    """
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ChunkError(f"{os.fspath(path)}: not a regular file")
        size, x, s, chunks = _sign(_chunker().cut_stream(f))
        after = os.fstat(f.fileno())
    if size != st.st_size or after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
        raise ChunkError(f"{os.fspath(path)}: file changed while it was read")
    return FileSignature(size, x, s, chunks)


# --- sidecar encoding ----------------------------------------------------------------------


def encode(sig: FileSignature) -> bytes:
    """The sidecar bytes for ``sig`` (see the module docstring for the layout)."""
    parts = [
        _HEADER.pack(
            MAGIC, FORMAT_VERSION, 0, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX, NORMALIZATION,
            sig.size, sig.xxh3, sig.sha256, len(sig.chunks),
        )
    ]
    pack = _ENTRY.pack
    parts.extend(pack(c.length, c.xxh3) for c in sig.chunks)
    body = b"".join(parts)
    return body + xxhash.xxh3_128_digest(body)


def encoded_size(sig: FileSignature) -> int:
    """len(encode(sig)), without encoding."""
    return _HEADER.size + _ENTRY.size * len(sig.chunks) + _CHECK_LEN


def max_encoded_size(size: int) -> int:
    """The largest sidecar a file of ``size`` bytes can have (every chunk but the last at least
    CHUNK_MIN long): a bound for reading one from an untrusted peer."""
    return _HEADER.size + _ENTRY.size * (size // CHUNK_MIN + 1) + _CHECK_LEN


def _check_sidecar(data: bytes) -> tuple[int, bytes, bytes, int, bytes]:
    """Check everything of sidecar bytes but the chunk entries themselves; returns (size, xxh3,
    sha256, chunk count, body)."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise SignatureFormatError("not an airsync chunk signature (bad magic)")
    if len(data) < _HEADER.size + _CHECK_LEN:
        raise SignatureFormatError(f"signature truncated: {len(data)} bytes, header alone needs "
                                   f"{_HEADER.size + _CHECK_LEN}")
    (_, version, flags, cmin, cavg, cmax, nc, size, x, s, count) = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise SignatureFormatError(f"unsupported signature version {version} "
                                   f"(this airsync reads {FORMAT_VERSION})")
    expected_len = _HEADER.size + count * _ENTRY.size + _CHECK_LEN
    if len(data) != expected_len:
        what = "truncated" if len(data) < expected_len else "has trailing bytes"
        raise SignatureFormatError(f"signature {what}: {len(data)} bytes, {count} chunks need "
                                   f"{expected_len}")
    body, check = data[:-_CHECK_LEN], data[-_CHECK_LEN:]
    if xxhash.xxh3_128_digest(body) != check:
        raise SignatureFormatError("signature checksum mismatch (corrupted)")
    if flags != 0:
        raise SignatureFormatError(f"unknown signature flags {flags:#x}")
    if (cmin, cavg, cmax, nc) != (CHUNK_MIN, CHUNK_AVG, CHUNK_MAX, NORMALIZATION):
        raise SignatureFormatError(
            f"signature chunked with min/avg/max {cmin}/{cavg}/{cmax} NC {nc}; this airsync "
            f"uses {CHUNK_MIN}/{CHUNK_AVG}/{CHUNK_MAX} NC {NORMALIZATION}"
        )
    return size, x, s, count, body


def decode_summary(data: bytes | bytearray | memoryview) -> tuple[int, bytes, bytes]:
    """(size, xxh3, sha256) of sidecar bytes, checked as ``decode`` checks them (magic, version,
    parameters, length and checksum) but without reading each chunk: what comparing files needs."""
    size, x, s, _, _ = _check_sidecar(bytes(data))
    return size, x, s


def decode(data: bytes | bytearray | memoryview) -> FileSignature:
    """Parse sidecar bytes strictly; anything but a well-formed version-1 sidecar made with this
    module's chunking parameters raises ``SignatureFormatError``."""
    size, x, s, count, body = _check_sidecar(bytes(data))
    chunks: list[Chunk] = []
    pos = 0
    last = count - 1
    for i, (length, digest) in enumerate(_ENTRY.iter_unpack(memoryview(body)[_HEADER.size:])):
        if not (length <= CHUNK_MAX and (length >= CHUNK_MIN or (i == last and length > 0))):
            raise SignatureFormatError(f"chunk {i} has impossible length {length}")
        chunks.append(Chunk(pos, length, digest))
        pos += length
    if pos != size:
        raise SignatureFormatError(f"chunks cover {pos} bytes, header says {size}")
    return FileSignature(size, x, s, tuple(chunks))


# --- delta planning ------------------------------------------------------------------------


def index_chunks(signatures: Mapping[str, FileSignature]) -> dict[bytes, tuple[str, int]]:
    """Map each chunk hash to one ``(path, offset)`` holding it.

    Deterministic whatever the mapping's order: paths are visited sorted and the first
    occurrence wins.
    """
    index: dict[bytes, tuple[str, int]] = {}
    for path in sorted(signatures):
        for c in signatures[path].chunks:
            index.setdefault(c.xxh3, (path, c.offset))
    return index


def plan_delta(
    target: FileSignature,
    have: Mapping[bytes, tuple[str, int]],
    *,
    coalesce_gap: int = DEFAULT_COALESCE_GAP,
) -> list[Piece]:
    """The pieces that rebuild ``target``, in target order; their lengths add up to its size.

    A chunk whose hash is in ``have`` becomes a ``Copy`` from that local file, any other a
    ``Fetch`` of its range. Adjacent fetches merge into one range; two fetches separated by
    copyable bytes totalling at most ``coalesce_gap`` also merge (those bytes are fetched again
    rather than spending one more request). Copies that continue each other in the same local
    file merge too. ``coalesce_gap=0`` merges only adjacent pieces.
    """
    if coalesce_gap < 0:
        raise ConfigError(f"coalesce_gap must be >= 0, got {coalesce_gap}")
    chunks = target.chunks
    # Fetch ranges (target offsets, half-open), merged across small gaps of copyable chunks.
    fetches: list[list[int]] = []
    for c in chunks:
        if c.xxh3 in have:
            continue
        if fetches and c.offset - fetches[-1][1] <= coalesce_gap:
            fetches[-1][1] = c.offset + c.length
        else:
            fetches.append([c.offset, c.offset + c.length])

    pieces: list[Piece] = []
    fi = 0  # next fetch range not yet emitted
    for c in chunks:
        if fi < len(fetches) and c.offset >= fetches[fi][0]:
            start, end = fetches[fi]
            if c.offset == start:
                pieces.append(Fetch(start, end - start))
            if c.offset + c.length >= end:
                fi += 1
            continue
        path, src = have[c.xxh3]
        prev = pieces[-1] if pieces else None
        if isinstance(prev, Copy) and prev.path == path and prev.offset + prev.length == src:
            pieces[-1] = Copy(path, prev.offset, prev.length + c.length)
        else:
            pieces.append(Copy(path, src, c.length))
    return pieces
