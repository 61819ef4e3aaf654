"""Tests for airsync.dirhash: Hash1 vectors from golang.org/x/mod and cmd/go, and zip hashing."""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from airsync.goproxy import dirhash
from airsync.goproxy.dirhash import ZipReadError, hash1, hash1_digests, hash_gomod, hash_zip
from tests.helpers.tamper import patch_bytes, write_zip_with_descriptors

ABC_XYZ = {"abc": b"data for abc", "xyz": b"data for xyz"}
ABC_XYZ_H1 = "h1:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8="
EMPTY_GOMOD_H1 = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
# golang.org/x/mod/zip zip_test.go emptyHash: Hash1 over no files at all.
NO_FILES_H1 = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def summary_h1(summary: bytes) -> str:
    return "h1:" + base64.b64encode(hashlib.sha256(summary).digest()).decode()


def write_zip(path: Path, files, compression=zipfile.ZIP_DEFLATED, level=None) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=level) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return path


# --- Hash1 -----------------------------------------------------------------------------------------


def test_hash1_vector():
    assert hash1(ABC_XYZ.items()) == ABC_XYZ_H1
    assert hash1(reversed(list(ABC_XYZ.items()))) == ABC_XYZ_H1


def test_hash1_matches_definition():
    # Go's TestHash1 builds the expected value from the summary text itself.
    summary = f"{sha(b'data for abc')}  abc\n{sha(b'data for xyz')}  xyz\n".encode()
    assert summary_h1(summary) == ABC_XYZ_H1


def test_hash1_digests_vector():
    assert hash1_digests([("xyz", sha(b"data for xyz")), ("abc", sha(b"data for abc"))]) == ABC_XYZ_H1


def test_hash_gomod_empty_vector():
    assert hash_gomod(b"") == EMPTY_GOMOD_H1
    assert hash1([("go.mod", b"")]) == EMPTY_GOMOD_H1


def test_no_files():
    assert hash1([]) == NO_FILES_H1


def test_newline_in_name_is_an_error():
    with pytest.raises(ValueError):
        hash1([("xyz", b""), ("a\nbc", b"")])
    with pytest.raises(ValueError):
        hash1_digests([("a\nbc", sha(b""))])


@pytest.mark.parametrize("digest", ["", "AB" * 32, "ab" * 31, "zz" * 32, sha(b"")[:-1] + "\n"])
def test_bad_digest_is_an_error(digest):
    with pytest.raises(ValueError):
        hash1_digests([("a", digest)])


def test_sort_is_bytewise():
    # U+FF21 (3 UTF-8 bytes, ef bc a1) sorts after U+00E9 (c3 a9) both as code points and as bytes;
    # "Z" < "a" bytewise (upper case first), unlike a case-insensitive sort.
    names = ["a", "Z", "\uff21", "\u00e9", "a/b", "a-b", "a.b"]
    files = [(n, n.encode()) for n in names]
    ordered = sorted(names, key=lambda n: n.encode())
    summary = b"".join(f"{sha(n.encode())}  {n}\n".encode() for n in ordered)
    assert hash1(files) == summary_h1(summary)


def test_non_utf8_name_hashes_raw_bytes():
    # A zip name that is not UTF-8 reaches us surrogate-escaped; Go hashes its raw bytes, and sorts by
    # them: b"\x82" (non-UTF-8) sorts before b"\xc3\xa9" although "\udc82" > "\xe9" as code points.
    raw = b"caf\x82"
    name = raw.decode("utf-8", "surrogateescape")
    summary = f"{sha(b'1')}  ".encode() + raw + b"\n" + f"{sha(b'2')}  caf\u00e9\n".encode()
    assert hash1([("caf\u00e9", b"2"), (name, b"1")]) == summary_h1(summary)


# --- hash_zip --------------------------------------------------------------------------------------

FILES = [
    ("example.com/m@v1.0.0/go.mod", b"module example.com/m\n\ngo 1.13\n"),
    ("example.com/m@v1.0.0/m.go", b"package m\n\nfunc Foo() int { return 42 }\n"),
    ("example.com/m@v1.0.0/empty.txt", b""),
    ("example.com/m@v1.0.0/big/zeros.bin", bytes(3 << 20)),  # several 1 MiB pieces
    ("example.com/m@v1.0.0/big/random.bin", hashlib.shake_256(b"seed").digest(2_500_000)),
]


def test_hash_zip_matches_go_dirhash_test(tmp_path):
    # golang.org/x/mod dirhash TestHashZip: entries "prefix/xyz", "prefix/abc".
    z = write_zip(tmp_path / "a.zip", [("prefix/xyz", b"data for xyz"), ("prefix/abc", b"data for abc")])
    summary = f"{sha(b'data for abc')}  prefix/abc\n{sha(b'data for xyz')}  prefix/xyz\n".encode()
    assert hash_zip(z) == summary_h1(summary)


@pytest.mark.parametrize(
    "compression,level",
    [(zipfile.ZIP_STORED, None), (zipfile.ZIP_DEFLATED, 1), (zipfile.ZIP_DEFLATED, 9)],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_hash_zip_equals_hash1_regardless_of_compression_and_order(tmp_path, compression, level, reverse):
    files = list(reversed(FILES)) if reverse else FILES
    z = write_zip(tmp_path / "m.zip", files, compression, level)
    assert hash_zip(z) == hash1(FILES)


def test_hash_zip_mixed_compression(tmp_path):
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, (name, data) in enumerate(FILES):
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED if i % 2 else zipfile.ZIP_DEFLATED)
    assert hash_zip(z) == hash1(FILES)


def test_hash_zip_empty_zip(tmp_path):
    assert hash_zip(write_zip(tmp_path / "e.zip", [])) == NO_FILES_H1


def test_hash_zip_counts_directory_entries_as_empty_files(tmp_path):
    # dirhash.HashZip lists every entry, directories included; they open as empty.
    files = [("p@v1.0.0/", b""), ("p@v1.0.0/d/", b""), ("p@v1.0.0/d/x.go", b"package d\n")]
    z = write_zip(tmp_path / "d.zip", files)
    assert hash_zip(z) == hash1(files)
    assert hash_zip(z) != hash1(files[2:])


def test_hash_zip_cp437_name_fixed_to_utf8(tmp_path):
    # Go keeps a name's raw bytes; zipfile decodes names without the UTF-8 flag as CP437.
    z = write_zip(tmp_path / "n.zip", [("p@v1.0.0/caf__.go", b"x")])
    patch_bytes(z, b"caf__.go", "café.go".encode("utf-8"))  # raw UTF-8 bytes, flag not set
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[0]
        assert not info.flag_bits & 0x800
        assert info.filename == "p@v1.0.0/caf├⌐.go"  # what zipfile alone would hash
        assert dirhash.zip_entry_name(info) == "p@v1.0.0/café.go"
    assert hash_zip(z) == hash1([("p@v1.0.0/café.go", b"x")])


def test_hash_zip_utf8_flagged_name(tmp_path):
    z = write_zip(tmp_path / "n.zip", [("p@v1.0.0/日本.go", b"x")])  # zipfile sets the UTF-8 flag
    assert hash_zip(z) == hash1([("p@v1.0.0/日本.go", b"x")])


def test_hash_zip_non_utf8_name_uses_raw_bytes(tmp_path):
    z = write_zip(tmp_path / "n.zip", [("p@v1.0.0/caf_.go", b"x")])
    patch_bytes(z, b"caf_.go", b"caf\x82.go")
    summary = f"{sha(b'x')}  ".encode() + b"p@v1.0.0/caf\x82.go\n"
    assert hash_zip(z) == summary_h1(summary)


def test_hash_zip_with_data_descriptors(tmp_path):
    z = write_zip_with_descriptors(tmp_path / "dd.zip", FILES[:3])
    with zipfile.ZipFile(z) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())
    assert hash_zip(z) == hash1(FILES[:3])


def test_hash_zip_duplicate_names_like_go(tmp_path):
    # dirhash.HashZip lists a duplicated name twice and opens the last entry of that name both times.
    z = tmp_path / "dup.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(z, "w") as zf:
        zf.writestr("p/a", b"first")
        zf.writestr("p/a", b"second")
    assert hash_zip(z) == hash1([("p/a", b"second"), ("p/a", b"second")])


def test_hash_zip_not_a_zip(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ZipReadError):
        hash_zip(p)


def test_hash_zip_crc_error(tmp_path):
    z = write_zip(tmp_path / "c.zip", [("p@v1.0.0/a.txt", b"hello world")], zipfile.ZIP_STORED)
    patch_bytes(z, b"hello world", b"hellO world", count=1)
    with pytest.raises(ZipReadError, match="checksum"):
        hash_zip(z)


def test_hash_zip_streams(tmp_path):
    # 64 MiB in one entry, deflated: peak Python allocations stay a few MiB.
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("p@v1.0.0/zeros", "w") as w:
        block = bytes(1 << 20)
        for _ in range(64):
            w.write(block)
    tracemalloc.start()
    try:
        got = hash_zip(z)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    zeros = hashlib.sha256()
    for _ in range(64):
        zeros.update(bytes(1 << 20))
    assert got == hash1_digests([("p@v1.0.0/zeros", zeros.hexdigest())])
    assert peak < 8 << 20, peak
