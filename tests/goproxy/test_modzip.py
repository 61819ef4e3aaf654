"""Tests for airsync.modzip.check_zip: the module zip rules of golang.org/x/mod/zip and the h1 hash."""

from __future__ import annotations

import hashlib
import stat
import struct
import time
import tracemalloc
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from airsync.errors import VerifyError, ZipRuleError
from airsync.goproxy.dirhash import hash1, hash1_digests, hash_zip
from airsync.goproxy.modzip import MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, check_zip, file_path_error
from tests.helpers.tamper import patch_bytes, write_zip_with_descriptors


@dataclass(frozen=True)
class MV:
    """Stand-in for airsync.modpath.ModuleVersion: check_zip uses only .path, .version and str()."""

    path: str
    version: str

    def __str__(self) -> str:
        return f"{self.path}@{self.version}"


M = MV("example.com/m", "v1.0.0")
P = "example.com/m@v1.0.0/"
GOMOD = (P + "go.mod", b"module example.com/m\n")


def write_zip(path: Path, files, compression=zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for item in files:
                if isinstance(item, zipfile.ZipInfo):
                    zf.writestr(item, b"")
                else:
                    zf.writestr(*item)
    return path


def set_declared_size(path: Path, name: str, size: int) -> None:
    """Make the zip lie about an entry's uncompressed size, in both its central and its local header."""
    data = bytearray(path.read_bytes())
    raw = name.encode()
    patched = 0
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46 : pos + 46 + n]) == raw:
            struct.pack_into("<L", data, pos + 24, size)
            local = struct.unpack_from("<L", data, pos + 42)[0]
            assert data[local : local + 4] == b"PK\x03\x04"
            struct.pack_into("<L", data, local + 22, size)
            patched += 1
        pos = data.find(b"PK\x01\x02", pos + 4)
    assert patched == 1
    path.write_bytes(bytes(data))


def rule_error(tmp_path: Path, files, entry: str, match: str, compression=zipfile.ZIP_DEFLATED) -> ZipRuleError:
    z = write_zip(tmp_path / "bad.zip", files, compression)
    return expect_rule_error(z, entry, match)


def expect_rule_error(z: Path, entry: str | None, match: str) -> ZipRuleError:
    with pytest.raises(ZipRuleError, match=match) as e:
        check_zip(z, M)
    msg = str(e.value)
    with pytest.raises(ZipRuleError) as in_memory:  # the same zip, checked from its bytes
        check_zip(z, M, z.read_bytes())
    assert str(in_memory.value) == msg
    assert msg.startswith(str(M) + ": "), msg  # names the module ...
    if entry is not None:
        assert repr(entry) in msg, msg  # ... and the offending entry
    assert isinstance(e.value, VerifyError)
    return e.value


# --- accepted zips and their hash ------------------------------------------------------------------


def test_go_testdata_simple_hash(tmp_path):
    # golang.org/x/mod zip/testdata/unzip/simple.txt and its recorded hash.
    files = [
        (P + "go.mod", b"module example.com/m\n\ngo 1.13\n"),
        (P + "m.go", b"package m\n\nfunc Foo() int { return 42 }\n"),
        (P + "cmd/hello/hello.go", b'package main\n\nimport (\n  "fmt"\n  "example.com/m"\n)\n\n'
         b"func main() {\n  fmt.Println(m.Foo())\n}\n"),
    ]
    z = write_zip(tmp_path / "m.zip", files)
    assert check_zip(z, M) == "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
    assert check_zip(str(z), M) == hash_zip(z) == hash1(files)


def test_a_zip_in_memory_is_checked_as_the_file(tmp_path):
    files = [GOMOD, (P + "a.go", b"package a\n"), (P + "sub/", b""), (P + "sub/b.go", b"package sub\n" * 500)]
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        z = write_zip(tmp_path / f"m{compression}.zip", files, compression)
        assert check_zip(tmp_path / "named-only", M, z.read_bytes()) == check_zip(z, M) == hash_zip(z)


def test_vector_files(tmp_path):
    # The dirhash vector, as a zip (names carry the prefix, so only the summary rule is shared).
    files = [(P + "xyz", b"data for xyz"), (P + "abc", b"data for abc")]
    assert check_zip(write_zip(tmp_path / "v.zip", files), M) == hash1(files)


def test_empty_zip(tmp_path):
    assert check_zip(write_zip(tmp_path / "e.zip", []), M) == "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_hash_independent_of_compression_and_order(tmp_path, compression):
    files = [
        GOMOD,
        (P + "LICENSE", b"MIT\n"),
        (P + "a/b/c.go", b"package b\n" * 50000),
        (P + "a/d.go", b""),
        (P + "rand.bin", hashlib.shake_256(b"x").digest(1_500_000)),
    ]
    want = hash1(files)
    assert check_zip(write_zip(tmp_path / "f.zip", files, compression), M) == want
    assert check_zip(write_zip(tmp_path / "r.zip", files[::-1], compression), M) == want
    assert hash_zip(tmp_path / "r.zip") == want


@pytest.mark.parametrize(
    "name",
    [
        "a.go",
        ".hidden",
        "sub dir/with space.go",
        "x/!#$%&()+,-.=@[]^_{}~.txt",
        "héllo/日本語.go",  # Unicode letters are allowed
        "CONSOLE.go",  # only the exact reserved name before the first dot is refused
        "com10",
        "-leading-dash.go",  # leading dash is fine in file paths
        "vendor/modules.txt",
        "sub/LICENSE",
    ],
)
def test_allowed_names(tmp_path, name):
    files = [GOMOD, (P + name, b"x")]
    assert check_zip(write_zip(tmp_path / "ok.zip", files), M) == hash1(files)


def test_directory_entries_are_skipped_but_hashed(tmp_path):
    # Go's checkZip checks directory entries' names and collisions and then skips them;
    # dirhash.HashZip still hashes them as empty files.
    files = [(P, b""), (P + "sub/", b""), (P + "sub/deeper/", b""), (P + "sub/x.go", b"package sub\n"), GOMOD]
    z = write_zip(tmp_path / "d.zip", files)
    assert check_zip(z, M) == hash1(files) == hash_zip(z)


def test_same_directory_twice_is_fine(tmp_path):
    files = [(P + "sub/", b""), (P + "sub/", b""), (P + "sub/x.go", b"x")]
    z = write_zip(tmp_path / "d.zip", files)
    assert check_zip(z, M) == hash_zip(z)


def test_regular_unix_mode_and_no_mode_are_fine(tmp_path):
    reg = zipfile.ZipInfo(P + "reg.go")
    reg.create_system = 3
    reg.external_attr = (stat.S_IFREG | 0o644) << 16
    none = zipfile.ZipInfo(P + "none.go")
    none.create_system = 3
    none.external_attr = 0
    fat = zipfile.ZipInfo(P + "fat.go")
    fat.create_system = 0
    fat.external_attr = 0x20  # MS-DOS archive bit
    z = write_zip(tmp_path / "m.zip", [reg, none, fat])
    assert check_zip(z, M) == hash1([(P + "reg.go", b""), (P + "none.go", b""), (P + "fat.go", b"")])


def test_cp437_name_without_utf8_flag(tmp_path):
    # UTF-8 bytes in a name without the UTF-8 flag: Go reads the raw bytes (a valid letter here).
    z = write_zip(tmp_path / "n.zip", [GOMOD, (P + "caf__.go", b"x")])
    patch_bytes(z, b"caf__.go", "café.go".encode())
    with zipfile.ZipFile(z) as zf:
        assert not zf.getinfo(P + "caf├⌐.go").flag_bits & 0x800
    assert check_zip(z, M) == hash1([GOMOD, (P + "café.go", b"x")])


def test_data_descriptors(tmp_path):
    files = [GOMOD, (P + "a.go", b"package a\n" * 1000)]
    z = write_zip_with_descriptors(tmp_path / "dd.zip", files)
    assert check_zip(z, M) == hash1(files)
    # A descriptor CRC that disagrees with the central directory is a checksum error in Go.
    data = bytearray(z.read_bytes())
    pos = data.find(b"PK\x07\x08")
    data[pos + 4] ^= 0xFF
    z.write_bytes(bytes(data))
    expect_rule_error(z, GOMOD[0], "checksum")


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry,match",
    [
        ("other.com/m@v1.0.0/a.go", "does not have prefix"),
        ("example.com/m@v1.0.1/a.go", "does not have prefix"),
        ("example.com/m@v1.0.0", "does not have prefix"),
        ("a.go", "does not have prefix"),
        ("/x", "does not have prefix"),  # absolute
        ("example.com/!m@v1.0.0/a.go", "does not have prefix"),  # the prefix is not escaped
        (P + "../x", r"invalid path element '\.\.'"),
        (P + "a/../../x", "not clean"),
        (P + "not/../clean", "not clean"),
        (P + "./a.go", "not clean"),
        (P + "a//b.go", "not clean"),
        (P + "/x", "not relative"),
        (P + "//x", "not relative"),
        (P + "a\\b.go", "invalid char"),
        (P + "..\\x", "invalid char"),
        (P + "a:b.go", "invalid char"),
        (P + "a*.go", "invalid char"),
        (P + "it's.go", "invalid char"),
        (P + "a\nb", "invalid char"),
        (P + "€.go", "invalid char"),  # a symbol, not a letter
        (P + "e\u0301.go", "invalid char"),  # a combining mark is not a letter
        (P + "a.", "trailing dot"),
        (P + "...", "invalid path element"),
        (P + "CON", "disallowed as path element component on Windows"),
        (P + "con.go", "Windows"),
        (P + "Aux/x.go", "Windows"),
        (P + "sub/LPT9.txt", "Windows"),
        (P + "nul.tar.gz", "Windows"),
        (P + "sub/go.mod", "go.mod file not in module root directory"),
        (P + "GO.MOD", "go.mod files must have lowercase names"),
        (P + "sub/Go.Mod", "go.mod file not in module root directory"),
    ],
)
def test_bad_names(tmp_path, entry, match):
    rule_error(tmp_path, [(P + "ok.go", b"x"), (entry, b"x")], entry, match)


def test_go_testdata_various_first_error(tmp_path):
    # zip/testdata/check_zip/various.txt: the first of Go's errors is the missing prefix.
    files = [("noprefix", b""), (P + "valid.go", b""), (P + "not/../clean", b"")]
    rule_error(tmp_path, files, "noprefix", "path does not have prefix 'example.com/m@v1.0.0/'")


@pytest.mark.parametrize(
    "first,second,match",
    [
        ("A.go", "a.go", "case-insensitive file name collision: 'A.go' and 'a.go'"),
        ("m.go", "M.GO", "case-insensitive file name collision"),
        ("Dir/x.go", "dir/y.go", "case-insensitive file name collision: 'Dir' and 'dir'"),
        ("straße.go", "STRASSE.go", None),  # not equal under Go's simple folding: allowed
        ("straße.go", "STRAẞE.go", "case-insensitive"),
        ("σ.go", "ς.go", "case-insensitive"),
        ("k.go", "\u212a.go", "case-insensitive"),  # KELVIN SIGN folds to k
        ("a.go", "a.go/b.go", "entry 'a.go' is both a file and a directory"),
        ("a.go/b.go", "a.go", "entry 'a.go' is both a file and a directory"),
        ("x/", "x", "both a file and a directory"),
        ("x", "x/", "both a file and a directory"),
        ("a.go", "a.go", "multiple entries for file 'a.go'"),
    ],
)
def test_collisions(tmp_path, first, second, match):
    files = [GOMOD, (P + first, b""), (P + second, b"")]
    if match is None:
        assert check_zip(write_zip(tmp_path / "ok.zip", files), M) == hash1(files)
    else:
        rule_error(tmp_path, files, P + second, match)


def test_symlink_entry(tmp_path):
    link = zipfile.ZipInfo(P + "link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = tmp_path / "l.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(*GOMOD)
        zf.writestr(link, "/etc/passwd")
    expect_rule_error(z, P + "link", "symbolic link")


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK, stat.S_IFDIR])
def test_irregular_file_entry(tmp_path, kind):
    info = zipfile.ZipInfo(P + "weird")  # no trailing slash: not a directory entry
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    rule_error(tmp_path, [GOMOD, info], P + "weird", "not a regular file")


def test_non_utf8_name(tmp_path):
    z = write_zip(tmp_path / "n.zip", [GOMOD, (P + "caf_.go", b"x")])
    patch_bytes(z, b"caf_.go", b"caf\x82.go")
    expect_rule_error(z, P + "caf\udc82.go", "invalid UTF-8")


def test_utf8_flag_with_invalid_utf8_name(tmp_path):
    z = write_zip(tmp_path / "n.zip", [GOMOD, (P + "é_.go", b"x")])  # UTF-8 flag set
    patch_bytes(z, "é_.go".encode(), b"\xff\xfe_.go")
    expect_rule_error(z, None, "UTF-8")


# --- sizes -----------------------------------------------------------------------------------------


def write_zeros(z: Path, entries: dict[str, int]) -> Path:
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, size in entries.items():
            with zf.open(name, "w", force_zip64=size > 1 << 31) as w:
                for off in range(0, size, 1 << 20):
                    w.write(bytes(min(1 << 20, size - off)))
    return z


def test_go_mod_and_license_at_limit_are_fine(tmp_path):
    z = write_zeros(tmp_path / "ok.zip", {P + "go.mod": MAX_GO_MOD, P + "LICENSE": MAX_LICENSE})
    zeros = hashlib.sha256(bytes(16 << 20)).hexdigest()
    assert check_zip(z, M) == hash1_digests([(P + "go.mod", zeros), (P + "LICENSE", zeros)])


@pytest.mark.parametrize("name,limit", [("go.mod", MAX_GO_MOD), ("LICENSE", MAX_LICENSE)])
def test_oversized_go_mod_and_license(tmp_path, name, limit):
    z = write_zeros(tmp_path / "big.zip", {P + name: limit + 1})
    expect_rule_error(z, P + name, f"{name} file too large")


def test_oversized_declared_go_mod(tmp_path):
    # Refused on the declared size alone, before any content is read.
    z = write_zip(tmp_path / "g.zip", [GOMOD])
    set_declared_size(z, GOMOD[0], MAX_GO_MOD + 1)
    expect_rule_error(z, GOMOD[0], "go.mod file too large")


def test_total_declared_size_too_large(tmp_path):
    z = write_zip(tmp_path / "t.zip", [(P + "a", b"x"), (P + "b", b"y")])
    set_declared_size(z, P + "a", 300 << 20)
    set_declared_size(z, P + "b", 300 << 20)
    expect_rule_error(z, P + "b", "total uncompressed size of module contents too large")


def test_zip_file_too_large(tmp_path):
    z = tmp_path / "huge.zip"
    with open(z, "wb") as f:
        f.truncate(MAX_ZIP_FILE + 1)  # sparse: no disk space used
    expect_rule_error(z, None, "module zip file is too large")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_content_larger_than_declared_is_a_zip_bomb(tmp_path, compression):
    z = write_zip(tmp_path / "bomb.zip", [GOMOD, (P + "bomb", bytes(5 << 20))], compression)
    set_declared_size(z, P + "bomb", 1000)
    # zipfile itself would silently cut the content at the declared size:
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo(P + "bomb").file_size == 1000
    expect_rule_error(z, P + "bomb", "zip bomb")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_content_smaller_than_declared(tmp_path, compression):
    # Go's reader fails with ErrUnexpectedEOF when an entry ends before its declared size.
    z = write_zip(tmp_path / "short.zip", [GOMOD, (P + "short", b"abc" * 100)], compression)
    set_declared_size(z, P + "short", 1000)
    expect_rule_error(z, P + "short", "smaller than its declared size")


def test_directory_entry_with_declared_content(tmp_path):
    z = write_zip(tmp_path / "d.zip", [GOMOD, (P + "dir/", b"")])
    set_declared_size(z, P + "dir/", 5)
    expect_rule_error(z, P + "dir/", "directory entry declares 5 bytes")


# --- damaged zips ----------------------------------------------------------------------------------


def test_crc_error(tmp_path):
    z = write_zip(tmp_path / "c.zip", [GOMOD, (P + "a.txt", b"hello world")], zipfile.ZIP_STORED)
    patch_bytes(z, b"hello world", b"hellO world", count=1)
    expect_rule_error(z, P + "a.txt", "checksum error")


def test_corrupt_deflate_data(tmp_path):
    content = hashlib.shake_256(b"c").digest(100_000)  # incompressible: corruption lands in real data
    z = write_zip(tmp_path / "c.zip", [GOMOD, (P + "a.bin", content)])
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo(P + "a.bin")
    data[info.header_offset + 30 + len(info.orig_filename) + 5000] ^= 0x55
    z.write_bytes(bytes(data))
    expect_rule_error(z, P + "a.bin", "checksum error|corrupt deflate data")


@pytest.mark.parametrize("keep", [0, 10, 0.5])
def test_truncated_zip(tmp_path, keep):
    z = write_zip(tmp_path / "t.zip", [GOMOD, (P + "a.go", b"package a\n" * 1000)])
    data = z.read_bytes()
    z.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    expect_rule_error(z, None, "not a valid zip file")


def test_truncated_entry_data(tmp_path):
    # A readable central directory whose entry claims more (stored) data than the file holds.
    z = write_zip(tmp_path / "t.zip", [(P + "a.go", b"package a\n" * 1000)], zipfile.ZIP_STORED)
    data = bytearray(z.read_bytes())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, pos + 20, len(data) * 2)  # compressed size
    struct.pack_into("<L", data, pos + 24, len(data) * 2)  # uncompressed size
    z.write_bytes(bytes(data))
    expect_rule_error(z, P + "a.go", "unexpected end of data")


def test_deflate_stream_cut_short(tmp_path):
    content = hashlib.shake_256(b"d").digest(50_000)
    z = write_zip(tmp_path / "t.zip", [(P + "a.bin", content)])
    data = bytearray(z.read_bytes())
    pos = data.find(b"PK\x01\x02")
    csize = struct.unpack_from("<L", data, pos + 20)[0]
    struct.pack_into("<L", data, pos + 20, csize // 2)  # the stream now stops half-way
    z.write_bytes(bytes(data))
    expect_rule_error(z, P + "a.bin", "unexpected end of data")


def test_compressed_size_past_a_complete_deflate_stream_is_fine(tmp_path):
    # Go stops reading at the end of the deflate stream, whatever the declared compressed size says.
    files = [(P + "a.go", b"package a\n" * 1000)]
    z = write_zip(tmp_path / "t.zip", files)
    data = bytearray(z.read_bytes())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, pos + 20, len(data) * 2)
    z.write_bytes(bytes(data))
    assert check_zip(z, M) == hash1(files)


def test_bad_local_header(tmp_path):
    z = write_zip(tmp_path / "h.zip", [(P + "a.go", b"x")])
    data = bytearray(z.read_bytes())
    assert data[:4] == b"PK\x03\x04"
    data[:4] = b"XXXX"
    z.write_bytes(bytes(data))
    expect_rule_error(z, P + "a.go", "bad local file header")


def test_unsupported_compression_method(tmp_path):
    z = write_zip(tmp_path / "b.zip", [GOMOD, (P + "a.go", b"x" * 100)], zipfile.ZIP_BZIP2)
    expect_rule_error(z, GOMOD[0], "unsupported compression method 12")


def test_not_a_zip(tmp_path):
    z = tmp_path / "n.zip"
    z.write_bytes(b"<html>502 Bad Gateway</html>")
    expect_rule_error(z, None, "not a valid zip file")


# --- helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,ok",
    [("a/b.go", True), ("", False), ("a/", False), ("a//b", False), ("/a", False), ("a/./b", False),
     ("prn.txt", False), ("Ǆ/x", True), ("\udc82", False)],
)
def test_file_path_error(path, ok):
    assert (file_path_error(path) is None) == ok


# --- streaming -------------------------------------------------------------------------------------


def test_streams_300_mib(tmp_path):
    # 300 MiB of content (deflated zeros, so the test zip itself is small) plus a stored 20 MiB entry:
    # peak Python allocations during the check stay a few MiB.
    z = write_zeros(tmp_path / "big.zip", {GOMOD[0]: 100, P + "zeros": 300 << 20})
    with zipfile.ZipFile(z, "a", zipfile.ZIP_STORED) as zf, zf.open(P + "stored", "w") as w:
        for _ in range(20):
            w.write(b"\x01" * (1 << 20))
    tracemalloc.start()
    try:
        t0 = time.monotonic()
        got = check_zip(z, M)
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    zeros = hashlib.sha256()
    for _ in range(300):
        zeros.update(bytes(1 << 20))
    ones = hashlib.sha256(b"\x01" * (20 << 20)).hexdigest()
    assert got == hash1_digests(
        [(GOMOD[0], hashlib.sha256(bytes(100)).hexdigest()), (P + "zeros", zeros.hexdigest()), (P + "stored", ones)]
    )
    assert peak < 8 << 20, (peak, elapsed)


def test_declared_contents_reads_the_central_directory_only():
    import io
    import zipfile

    from airsync.goproxy.modzip import declared_contents

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("m@v1.0.0/go.mod", b"module m\n")
        z.writestr("m@v1.0.0/zeros", bytes(1 << 20))  # a megabyte in a few hundred bytes
    data = buf.getvalue()
    assert len(data) < 4096
    assert declared_contents(data) == (2, (1 << 20) + len(b"module m\n"))
    assert declared_contents(b"not a zip") is None
    assert declared_contents(data[: len(data) // 2]) is None  # no central directory
