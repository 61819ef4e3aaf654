"""Tests for airsync.chunks: content-defined chunking, signatures, sidecars and delta plans."""

from __future__ import annotations

import hashlib
import struct

import pytest
import xxhash

from airsync.carry.chunks import (
    CHUNK_AVG,
    CHUNK_MAX,
    CHUNK_MIN,
    MAGIC,
    Chunk,
    ChunkError,
    Copy,
    Fetch,
    FileSignature,
    SignatureFormatError,
    decode,
    decode_summary,
    encode,
    index_chunks,
    plan_delta,
    signature_of_bytes,
    signature_of_file,
)
from airsync.errors import AirsyncError, ConfigError

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None

KiB = 1024
MiB = 1024 * KiB


def noise(seed: str, n: int) -> bytes:
    """Deterministic incompressible bytes (stable across Python versions and platforms)."""
    return hashlib.shake_256(seed.encode()).digest(n)


def assemble(pieces, local: dict[str, bytes], remote: bytes) -> bytes:
    out = bytearray()
    for p in pieces:
        if isinstance(p, Copy):
            out += local[p.path][p.offset : p.offset + p.length]
        else:
            assert isinstance(p, Fetch)
            assert p.offset == len(out), "fetch must be at the current target position"
            out += remote[p.offset : p.offset + p.length]
    return bytes(out)


def reseal(body: bytes) -> bytes:
    """A sidecar body with a correct trailing checksum (to reach the checks behind it)."""
    return body + xxhash.xxh3_128_digest(body)


# --- chunking and signatures -----------------------------------------------------------------


def test_deterministic_and_file_equals_bytes(tmp_path):
    data = noise("det", 3 * MiB + 12345)
    a = signature_of_bytes(data)
    assert a == signature_of_bytes(bytes(data))
    assert a == signature_of_bytes(bytearray(data))
    assert a == signature_of_bytes(memoryview(data))
    p = tmp_path / "f.zip"
    p.write_bytes(data)
    assert signature_of_file(p) == a
    assert signature_of_file(str(p)) == a


def test_golden_boundaries():
    # Chunk boundaries are part of the sidecar format: peers must cut identically. If this
    # fails after a pyfastcdc upgrade, the library changed its cuts: bump the format version.
    sig = signature_of_bytes(noise("airsync-chunks-golden", 2 * MiB))
    assert [c.length for c in sig.chunks] == [
        91981, 70927, 114287, 77020, 66001, 38806, 114223, 67194, 50624, 69105, 67481, 115167,
        91699, 70948, 88702, 40410, 81104, 78256, 52430, 66657, 22612, 80028, 40856, 83156,
        126882, 110103, 50636, 67357, 2500,
    ]


def test_whole_file_hashes_match_hashlib_and_xxhash(tmp_path):
    data = noise("hashes", MiB + 7)
    sig = signature_of_bytes(data)
    assert sig.sha256 == hashlib.sha256(data).digest()
    assert sig.xxh3 == xxhash.xxh3_128(data).digest()
    assert sig.size == len(data)
    for c in sig.chunks:
        assert c.xxh3 == xxhash.xxh3_128_digest(data[c.offset : c.offset + c.length])
    p = tmp_path / "f"
    p.write_bytes(data)
    assert signature_of_file(p).sha256 == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "data",
    [noise("cover", 5 * MiB + 3), bytes(MiB + 1), b"abc" * 300_000],
    ids=["random", "zeros", "repetitive"],
)
def test_chunks_tile_the_file_and_respect_sizes(data):
    sig = signature_of_bytes(data)
    pos = 0
    for c in sig.chunks:
        assert c.offset == pos
        pos += c.length
    assert pos == len(data) == sig.size
    *body, last = sig.chunks
    assert all(CHUNK_MIN <= c.length <= CHUNK_MAX for c in body)
    assert 0 < last.length <= CHUNK_MAX


def test_random_data_mean_chunk_size_is_near_min_plus_avg():
    sig = signature_of_bytes(noise("mean", 16 * MiB))
    mean = sig.size / len(sig.chunks)
    assert CHUNK_AVG <= mean <= CHUNK_MIN + CHUNK_AVG + 32 * KiB


def test_empty_and_tiny(tmp_path):
    empty = signature_of_bytes(b"")
    assert empty.size == 0 and empty.chunks == ()
    assert empty.sha256 == hashlib.sha256(b"").digest()
    p = tmp_path / "empty"
    p.write_bytes(b"")
    assert signature_of_file(p) == empty
    tiny = signature_of_bytes(b"x" * 100)
    assert [(c.offset, c.length) for c in tiny.chunks] == [(0, 100)]


def test_insertion_changes_only_nearby_chunks():
    data = noise("insert", 8 * MiB)
    at = 4 * MiB + 777
    edited = data[:at] + b"inserted by a new release " * 4 + data[at:]
    shift = len(edited) - len(data)
    a, b = signature_of_bytes(data), signature_of_bytes(edited)
    # Everything before the chunk holding the insertion is identical, offsets included.
    before = [c for c in a.chunks if c.offset + c.length <= at]
    assert b.chunks[: len(before)] == tuple(before)
    # Everything well after it is the same chunks, shifted by the inserted length.
    a_hashes = {c.xxh3: c.offset for c in a.chunks}
    new = [c for c in b.chunks if c.xxh3 not in a_hashes]
    assert 1 <= len(new) <= 3
    assert all(abs(c.offset - at) <= 2 * CHUNK_MAX for c in new)
    for c in b.chunks:
        if c.offset > at + 2 * CHUNK_MAX:
            assert a_hashes[c.xxh3] == c.offset - shift
    assert len(b.chunks) - len(new) >= len(a.chunks) - 3


def test_signature_of_file_errors(tmp_path):
    with pytest.raises(OSError):
        signature_of_file(tmp_path / "missing")
    assert issubclass(ChunkError, AirsyncError)
    assert issubclass(SignatureFormatError, ChunkError)


def test_file_signature_checks_its_invariants():
    d16, d32 = bytes(16), bytes(32)
    FileSignature(10, d16, d32, (Chunk(0, 4, d16), Chunk(4, 6, d16)))
    bad = [
        (10, d16, d32, (Chunk(0, 4, d16), Chunk(5, 5, d16))),  # gap
        (10, d16, d32, (Chunk(0, 4, d16),)),  # short
        (10, d16, d32, (Chunk(0, 10, b"short"),)),  # digest length
        (10, d16, bytes(31), (Chunk(0, 10, d16),)),
        (0, d16, d32, (Chunk(0, 0, d16),)),  # empty chunk
    ]
    for args in bad:
        with pytest.raises(SignatureFormatError):
            FileSignature(*args)


# --- sidecar ---------------------------------------------------------------------------------


def test_sidecar_round_trip():
    for data in (b"", b"tiny", noise("sidecar", 3 * MiB + 1)):
        sig = signature_of_bytes(data)
        blob = encode(sig)
        assert blob.startswith(MAGIC)
        assert len(blob) == 92 + 20 * len(sig.chunks) + 16
        assert decode(blob) == sig
        assert decode(bytearray(blob)) == sig
        assert encode(decode(blob)) == blob
        assert decode_summary(blob) == (sig.size, sig.xxh3, sig.sha256)


def test_sidecar_rejects_every_truncation_and_every_flipped_byte():
    blob = encode(signature_of_bytes(noise("strict", 600 * KiB)))
    for check in (decode, decode_summary):  # the summary skips only the per-chunk reading
        for n in range(len(blob)):
            with pytest.raises(SignatureFormatError):
                check(blob[:n])
        for i in range(len(blob)):
            garbled = bytearray(blob)
            garbled[i] ^= 0x40
            with pytest.raises(SignatureFormatError):
                check(bytes(garbled))
        with pytest.raises(SignatureFormatError, match="trailing"):
            check(blob + b"\0")


def test_sidecar_rejects_garbage_and_foreign_formats():
    for junk in (b"", b"ASYNC", noise("junk", 500), b"<html>404 Not Found</html>" * 10):
        with pytest.raises(SignatureFormatError):
            decode(junk)
    body = encode(signature_of_bytes(b"hello"))[:-16]
    # A future version is named as such (checked before the checksum, whose scheme may change).
    v2 = body[:8] + struct.pack("<H", 2) + body[10:]
    with pytest.raises(SignatureFormatError, match="version 2"):
        decode(reseal(v2))
    with pytest.raises(SignatureFormatError, match="flags"):
        decode(reseal(body[:10] + struct.pack("<H", 1) + body[12:]))
    other_params = body[:12] + struct.pack("<I", 8 * KiB) + body[16:]
    with pytest.raises(SignatureFormatError, match="chunked with"):
        decode(reseal(other_params))
    # A huge chunk count must fail on length, not try to allocate.
    count_at = 92 - 8
    huge = body[:count_at] + struct.pack("<Q", 2**60) + body[count_at + 8 :]
    with pytest.raises(SignatureFormatError, match="truncated"):
        decode(reseal(huge))


def test_sidecar_rejects_impossible_chunk_lengths_even_with_valid_checksum():
    sig = signature_of_bytes(noise("lens", MiB))
    body = bytearray(encode(sig)[:-16])
    first = 92  # header: 8 + 2 + 2 + 4*4 + 8 + 16 + 32 + 8
    # First chunk made larger than CHUNK_MAX (sizes no longer add up either).
    body[first : first + 4] = struct.pack("<I", CHUNK_MAX + 1)
    with pytest.raises(SignatureFormatError, match="impossible length"):
        decode(reseal(bytes(body)))
    # A non-last chunk below CHUNK_MIN.
    body[first : first + 4] = struct.pack("<I", CHUNK_MIN - 1)
    with pytest.raises(SignatureFormatError, match="impossible length"):
        decode(reseal(bytes(body)))
    # Lengths valid but not adding up to the size.
    body = bytearray(encode(sig)[:-16])
    body[first : first + 4] = struct.pack("<I", sig.chunks[0].length + 1)
    with pytest.raises(SignatureFormatError, match="cover"):
        decode(reseal(bytes(body)))


# --- delta planning --------------------------------------------------------------------------


def module_zip(version: str, files: dict[str, bytes]) -> bytes:
    """A stand-in for a Go module zip: every entry is prefixed with ``path@version/name``."""
    out = bytearray()
    for name, content in files.items():
        header = f"PK\x03\x04example.com/mod@{version}/{name}\n".encode()
        out += header + content
    return bytes(out)


def test_plan_delta_copies_shared_chunks_across_versions_and_fetches_the_rest():
    files = {f"pkg{i}/file{i}.go": noise(f"src{i}", 700 * KiB + i * 1000) for i in range(6)}
    v1 = module_zip("v1.2.3", files)
    files2 = dict(files)
    files2["pkg2/file2.go"] = noise("rewritten", 300 * KiB)  # one file rewritten
    files2["pkg9/new.go"] = noise("new", 200 * KiB)  # one file added
    v2 = module_zip("v1.10.0-rc.1", files2)  # longer version: every later offset shifts
    other = noise("other-module", 400 * KiB) + files["pkg5/file5.go"][:300 * KiB]

    local = {"cache/v1.2.3.zip": v1, "cache/other.zip": other}
    sigs = {p: signature_of_bytes(b) for p, b in local.items()}
    target = signature_of_bytes(v2)
    pieces = plan_delta(target, index_chunks(sigs), coalesce_gap=0)

    assert assemble(pieces, local, v2) == v2
    assert hashlib.sha256(assemble(pieces, local, v2)).digest() == target.sha256
    assert sum(p.length for p in pieces) == target.size
    fetched = sum(p.length for p in pieces if isinstance(p, Fetch))
    copied = sum(p.length for p in pieces if isinstance(p, Copy))
    # Rewritten + new files are ~500 KiB; each changed entry header costs up to ~2 chunks.
    assert fetched < 500 * KiB + 14 * CHUNK_MAX
    assert fetched < 0.5 * target.size
    assert copied > 0.5 * target.size
    # Shared content was found at different offsets (the headers grew).
    assert any(isinstance(p, Copy) and p.offset != off for p, off in zip(pieces, offsets(pieces)))
    # No two neighbouring fetches, and copies that continue each other were merged.
    for a, b in zip(pieces, pieces[1:]):
        assert not (isinstance(a, Fetch) and isinstance(b, Fetch))
        if isinstance(a, Copy) and isinstance(b, Copy):
            assert not (a.path == b.path and a.offset + a.length == b.offset)


def offsets(pieces) -> list[int]:
    out, pos = [], 0
    for p in pieces:
        out.append(pos)
        pos += p.length
    return out


def test_plan_delta_uses_chunks_from_any_local_file():
    a, b, c = noise("A", MiB), noise("B", MiB), noise("C", MiB)
    local = {"x.zip": a + c, "y.zip": noise("pad", 123_457) + b}
    target_bytes = a + b
    target = signature_of_bytes(target_bytes)
    pieces = plan_delta(target, index_chunks({p: signature_of_bytes(d) for p, d in local.items()}))
    assert assemble(pieces, local, target_bytes) == target_bytes
    paths = {p.path for p in pieces if isinstance(p, Copy)}
    assert paths == {"x.zip", "y.zip"}
    assert sum(p.length for p in pieces if isinstance(p, Fetch)) <= 4 * CHUNK_MAX


def test_plan_delta_everything_or_nothing_local():
    data = noise("all", 2 * MiB)
    sig = signature_of_bytes(data)
    assert plan_delta(sig, {}) == [Fetch(0, len(data))]
    assert plan_delta(sig, index_chunks({"same": sig})) == [Copy("same", 0, len(data))]
    assert plan_delta(signature_of_bytes(b""), {}) == []


def synthetic(lengths: list[int]) -> FileSignature:
    chunks, pos = [], 0
    for i, n in enumerate(lengths):
        chunks.append(Chunk(pos, n, i.to_bytes(16, "little")))
        pos += n
    return FileSignature(pos, bytes(16), bytes(32), tuple(chunks))


def test_plan_delta_coalesces_fetches_across_small_gaps():
    K = 20 * KiB
    # Chunks 0..7: F C F F C C C F (C = held locally, contiguously in "old").
    sig = synthetic([K] * 8)
    have = {sig.chunks[i].xxh3: ("old", 1000 + i * K) for i in (1, 4, 5, 6)}
    assert plan_delta(sig, have, coalesce_gap=0) == [
        Fetch(0, K), Copy("old", 1000 + K, K), Fetch(2 * K, 2 * K),
        Copy("old", 1000 + 4 * K, 3 * K), Fetch(7 * K, K),
    ]
    assert plan_delta(sig, have, coalesce_gap=K) == [
        Fetch(0, 4 * K), Copy("old", 1000 + 4 * K, 3 * K), Fetch(7 * K, K),
    ]
    assert plan_delta(sig, have, coalesce_gap=3 * K - 1) == plan_delta(sig, have, coalesce_gap=K)
    assert plan_delta(sig, have, coalesce_gap=3 * K) == [Fetch(0, 8 * K)]
    # Leading and trailing copies are never swallowed: there is no fetch on their other side.
    have_ends = {sig.chunks[i].xxh3: ("old", i * K) for i in (0, 7)}
    assert plan_delta(sig, have_ends, coalesce_gap=10 * K) == [
        Copy("old", 0, K), Fetch(K, 6 * K), Copy("old", 7 * K, K),
    ]


def test_plan_delta_does_not_merge_copies_from_different_places():
    sig = synthetic([10, 20, 30, 40])
    have = {
        sig.chunks[0].xxh3: ("a", 0),
        sig.chunks[1].xxh3: ("b", 10),  # other file
        sig.chunks[2].xxh3: ("b", 99),  # same file, not contiguous
        sig.chunks[3].xxh3: ("b", 129),  # continues the previous one
    }
    assert plan_delta(sig, have) == [Copy("a", 0, 10), Copy("b", 10, 20), Copy("b", 99, 70)]


def test_plan_delta_rejects_negative_gap():
    with pytest.raises(ConfigError):
        plan_delta(synthetic([5]), {}, coalesce_gap=-1)


def test_index_chunks_is_deterministic_first_sorted_path_wins():
    data = noise("dup", MiB)
    sig = signature_of_bytes(data)
    idx1 = index_chunks({"b": sig, "a": sig})
    idx2 = index_chunks({"a": sig, "b": sig})
    assert idx1 == idx2
    assert {v[0] for v in idx1.values()} == {"a"}
    assert idx1 == {c.xxh3: ("a", c.offset) for c in sig.chunks}


if given is not None:

    @settings(max_examples=200, deadline=None)
    @given(
        lengths=st.lists(st.integers(1, 50), min_size=0, max_size=40),
        held=st.data(),
        gap=st.integers(0, 120),
    )
    def test_plan_delta_properties(lengths, held, gap):
        sig = synthetic(lengths)
        mask = held.draw(st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths)))
        # The local file is the target itself, so copies must reproduce it byte for byte.
        content = bytes(i % 251 for i in range(sig.size))
        have = {c.xxh3: ("self", c.offset) for c, h in zip(sig.chunks, mask) if h}
        pieces = plan_delta(sig, have, coalesce_gap=gap)
        assert assemble(pieces, {"self": content}, content) == content
        assert all(p.length > 0 for p in pieces)
        for i, p in enumerate(pieces):
            if isinstance(p, Fetch) and i + 1 < len(pieces):
                # The copies up to the next fetch are more than the gap (else they'd be merged).
                run = 0
                for q in pieces[i + 1 :]:
                    if isinstance(q, Fetch):
                        assert run > gap
                        break
                    run += q.length
        # Every chunk that is not held is inside a fetch.
        fetched = [(p.offset, p.offset + p.length) for p in pieces if isinstance(p, Fetch)]
        for c, h in zip(sig.chunks, mask):
            if not h:
                assert any(a <= c.offset and c.offset + c.length <= b for a, b in fetched)
