"""Tests for airsync.manifest: canonical text, strict parsing, signatures, key files and diff."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from dataclasses import replace

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from airsync.carry.manifest import (
    HEADER,
    Diff,
    Entry,
    KeyFileError,
    Manifest,
    ManifestError,
    decode,
    diff,
    encode,
    keygen,
    load_signer,
    load_verifier,
    open_manifest,
    sign_manifest,
    utc_timestamp,
)
from airsync.errors import AirsyncError
from airsync.trust import note

GOSUM_A = "golang.org/x/text v0.3.0 h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg="
GOSUM_B = "golang.org/x/text v0.3.0/go.mod h1:NqM8EUOU14njkJ3fqMW+pc6Ldnwhi/IjpwHt7yyuwOQ="


def entry(path: str, data: bytes) -> Entry:
    return Entry(path, len(data), hashlib.sha256(data).hexdigest(), xxhash.xxh3_128_hexdigest(data))


FILES = {
    "golang.org/x/text/@v/list": b"v0.3.0\n",
    "golang.org/x/text/@v/v0.3.0.mod": b"module golang.org/x/text\n",
    "golang.org/x/text/@v/v0.3.0.zip": b"PK\x03\x04 not really a zip",
    "dir with space/a b ": b"",
}


def sample() -> Manifest:
    return Manifest(
        created="2024-05-01T12:00:00Z",
        source="border-1 /srv/mirror",
        entries=tuple(entry(p, d) for p, d in FILES.items()),
        gosum=(GOSUM_B, GOSUM_A, GOSUM_A),
    )


def text_lines(m: Manifest) -> list[str]:
    return encode(m).decode().splitlines(keepends=True)


def parse_error(text: bytes) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        decode(text, "m.txt")
    return info.value


# --- data and text --------------------------------------------------------------------------------


def test_encode_layout():
    m = sample()
    lines = text_lines(m)
    assert lines[:3] == [HEADER + "\n", "created 2024-05-01T12:00:00Z\n", "source border-1 /srv/mirror\n"]
    e = m.entries[0]
    assert lines[3] == f"file {e.sha256} {e.xxh3} {e.size} {e.path}\n"
    assert e.path == "dir with space/a b "  # ' ' sorts before 'g'; trailing space kept
    assert lines[-2:] == [f"gosum {GOSUM_A}\n", f"gosum {GOSUM_B}\n"]
    assert len(lines) == 3 + len(FILES) + 2


def test_manifest_sorts_and_dedupes():
    m = sample()
    assert [e.path for e in m.entries] == sorted(FILES)
    assert m.gosum == (GOSUM_A, GOSUM_B)
    with pytest.raises(ManifestError, match="two entries"):
        Manifest("2024-05-01T12:00:00Z", "s", (entry("a", b"1"), entry("a", b"2")))
    with pytest.raises(ManifestError, match="is a file but"):
        Manifest("2024-05-01T12:00:00Z", "s", (entry("a", b"1"), entry("a/b", b"2")))


def test_round_trip_and_canonical():
    m = sample()
    text = encode(m)
    assert decode(text) == m
    assert encode(decode(text)) == text
    empty = Manifest("1999-12-31T23:59:59Z", "x")
    assert decode(encode(empty)) == empty
    assert encode(empty) == b"airsync manifest v1\ncreated 1999-12-31T23:59:59Z\nsource x\n"


def test_unicode_paths_round_trip():
    m = Manifest("2024-05-01T12:00:00Z", "ü", (entry("é/ß", b"x"), entry("z", b""), entry("日本", b"y")))
    assert [e.path for e in m.entries] == ["z", "é/ß", "日本"]  # code point order
    assert decode(encode(m)) == m


@pytest.mark.parametrize(
    "path",
    ["", "/abs", "a//b", "a/", "../x", "a/../b", "./a", "a/./b", "a\\b", "a\nb", "a\tb", "a\x7fb",
     "a\x85b", "a\u2028b", "\udcff"],
)
def test_entry_rejects_bad_paths(path):
    with pytest.raises(ManifestError):
        Entry(path, 0, "0" * 64, "0" * 32)


_ELEMENT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/\\"), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))


@given(st.lists(st.lists(_ELEMENT, min_size=1, max_size=3).map("/".join), max_size=6, unique=True))
def test_any_valid_paths_round_trip(paths):
    files = set(paths)
    # Drop paths that are directories of others: a file cannot also be a directory.
    paths = [p for p in paths if not any(q.startswith(p + "/") for q in files)]
    m = Manifest("2024-05-01T12:00:00Z", "s", tuple(entry(p, p.encode()) for p in paths))
    text = encode(m)
    assert decode(text) == m
    assert encode(decode(text)) == text


def test_entry_rejects_bad_fields():
    with pytest.raises(ManifestError):
        Entry("a", -1, "0" * 64, "0" * 32)
    with pytest.raises(ManifestError):
        Entry("a", True, "0" * 64, "0" * 32)
    with pytest.raises(ManifestError):
        Entry("a", 1, "A" * 64, "0" * 32)
    with pytest.raises(ManifestError):
        Entry("a", 1, "0" * 64, "0" * 16)


@pytest.mark.parametrize("created", ["2024-05-01 12:00:00Z", "2024-05-01T12:00:00+00:00", "2024-02-30T00:00:00Z",
                                     "2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00z"])
def test_manifest_rejects_bad_created(created):
    with pytest.raises(ManifestError, match="created"):
        Manifest(created, "s")


@pytest.mark.parametrize("source", ["", " s", "s ", "a\x1bb"])
def test_manifest_rejects_bad_source(source):
    with pytest.raises(ManifestError, match="source"):
        Manifest("2024-05-01T12:00:00Z", source)


@pytest.mark.parametrize(
    "line",
    ["golang.org/x/text v0.3.0  h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg=",
     "golang.org/x/text v0.3.0 h1:bad",
     "golang.org/x/text notaversion h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg=",
     "golang.org/x/text v0.3.0 h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg= extra",
     ""],
)
def test_manifest_rejects_bad_gosum(line):
    with pytest.raises(ManifestError, match="go.sum"):
        Manifest("2024-05-01T12:00:00Z", "s", gosum=(line,))


def test_utc_timestamp():
    import datetime as dt

    when = dt.datetime(2024, 5, 1, 14, 0, 0, 999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert utc_timestamp(when) == "2024-05-01T12:00:00Z"
    Manifest(utc_timestamp(), "s")  # now is valid


def _replace_line(text: bytes, lineno: int, new: str | None) -> bytes:
    lines = text.decode().split("\n")
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    return "\n".join(lines).encode()


def test_parse_errors_have_line_numbers():
    good = encode(sample())
    lines = good.decode().split("\n")
    file4, file5 = lines[3], lines[4]
    cases = [
        (b"", 1, "empty"),
        (good[:-1], 9, "no newline"),
        (good.replace(b"\n", b"\r\n", 1), 1, "U+000D"),
        (_replace_line(good, 1, "airsync manifest v2"), 1, "unsupported manifest version"),
        (_replace_line(good, 1, "hello"), 1, "not an airsync manifest"),
        (_replace_line(good, 2, "created yesterday"), 2, "created time"),
        (_replace_line(good, 2, "source x"), 2, "want a \"created\" line"),
        (_replace_line(good, 3, "source "), 3, "source"),
        (b"airsync manifest v1\n", 2, "missing \"created\""),
        (b"airsync manifest v1\ncreated 2024-05-01T12:00:00Z\n", 3, "missing \"source\""),
        (_replace_line(good, 4, file5), 5, "listed twice"),
        (_replace_line(_replace_line(good, 4, file5), 5, file4), 5, "out of order"),
        (_replace_line(good, 4, file4.replace(" 0 ", " 00 ")), 4, "malformed size"),
        (_replace_line(good, 4, file4.replace(" 0 ", " +0 ")), 4, "malformed size"),
        (_replace_line(good, 4, file4.upper()), 4, "unknown line type"),
        (_replace_line(good, 4, "file abc"), 4, "malformed file line"),
        (_replace_line(good, 4, "file " + file4[5:69].upper() + file4[69:]), 4, "sha256"),
        (_replace_line(good, 5, file5[:-len("golang.org/x/text/@v/list")] + "../x"), 5, "\"..\" element"),
        (_replace_line(good, 4, ""), 4, "blank line"),
        (_replace_line(good, 5, "created 2024-05-01T12:00:00Z"), 5, "repeated \"created\""),
        (_replace_line(good, 8, lines[8]), 9, "gosum line repeated"),
        (_replace_line(_replace_line(good, 8, lines[8]), 9, lines[7]), 9, "out of order"),
        (_replace_line(good, 8, "gosum x"), 8, "go.sum line"),
        (good + file4.encode() + b"\n", 10, "file line after the gosum"),
        (good.replace(b"dir with space", b"dir\xffwith"), 4, "UTF-8"),
    ]
    for text, lineno, fragment in cases:
        e = parse_error(text)
        assert e.lineno == lineno, (text, str(e))
        assert fragment in str(e), (fragment, str(e))
        assert str(e).startswith(f"m.txt:{lineno}: "), str(e)


def test_parse_dir_conflict_names_both_lines():
    m = Manifest("2024-05-01T12:00:00Z", "s", (entry("a", b"1"), entry("a b", b"2")))
    other = encode(Manifest("2024-05-01T12:00:00Z", "s", (entry("a/c", b"3"),))).decode().split("\n")[3]
    text = encode(m) + other.encode() + b"\n"
    e = parse_error(text)
    assert e.lineno == 4 and "line 6" in str(e) and "is a file" in str(e)


def test_decode_hints_at_signed_manifest():
    signer = note.parse_signer(note.generate_key("border")[0])
    e = parse_error(sign_manifest(sample(), signer))
    assert "signed manifest" in str(e)


# --- signatures -----------------------------------------------------------------------------------


@pytest.fixture
def keys():
    skey, vkey = note.generate_key("border")
    return note.parse_signer(skey), note.parse_verifier(vkey)


def test_signature_round_trip(keys):
    signer, verifier = keys
    signed = sign_manifest(sample(), signer)
    assert signed.startswith(encode(sample()) + "\n— border ".encode())
    assert open_manifest(signed, verifier) == sample()


def test_tampered_text_rejected(keys):
    signer, verifier = keys
    signed = sign_manifest(sample(), signer)
    e0 = sample().entries[1]
    tampered = signed.replace(f" {e0.size} ".encode(), f" {e0.size - 1} ".encode(), 1)
    assert tampered != signed
    with pytest.raises(note.InvalidSignatureError, match="altered") as info:
        open_manifest(tampered, verifier, "usb/manifest")
    assert str(info.value).startswith("usb/manifest: bad signature by border+")
    assert isinstance(info.value, AirsyncError)
    # Dropping a gosum line from the signed text fails the same way.
    dropped = signed.replace(f"gosum {GOSUM_A}\n".encode(), b"")
    with pytest.raises(note.InvalidSignatureError):
        open_manifest(dropped, verifier)


def test_wrong_key_and_replaced_manifest_rejected(keys):
    signer, verifier = keys
    signed = sign_manifest(sample(), signer)
    # The same name, another key: the key hash differs, so it is an unknown signer.
    other_signer = note.parse_signer(note.generate_key("border")[0])
    with pytest.raises(note.UnverifiedNoteError, match="not signed by the trusted key"):
        open_manifest(signed, other_signer.verifier)
    # A manifest made and signed by someone else, put in place of the real one.
    forged = dataclasses.replace(sample(), gosum=())
    with pytest.raises(note.UnverifiedNoteError, match="replaced"):
        open_manifest(sign_manifest(forged, other_signer), verifier)


def test_unsigned_or_garbage_rejected(keys):
    _, verifier = keys
    with pytest.raises(note.MalformedNoteError, match="not a signed airsync manifest"):
        open_manifest(encode(sample()), verifier)
    with pytest.raises(note.MalformedNoteError):
        open_manifest(b"\x00\x01", verifier)


def test_signed_non_manifest_rejected(keys):
    signer, verifier = keys
    with pytest.raises(ManifestError, match="not an airsync manifest"):
        open_manifest(note.sign(b"hello\n", signer), verifier)


# --- key files ------------------------------------------------------------------------------------


def test_keygen_files_and_modes(tmp_path):
    key, pub = keygen(tmp_path / "border", "border-host")
    assert (key, pub) == (tmp_path / "border.key", tmp_path / "border.pub")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) & 0o022 == 0
    signer, verifier = load_signer(key), load_verifier(pub)
    assert signer.name == "border-host"
    assert signer.verifier == verifier
    assert key.read_text().startswith("PRIVATE+KEY+border-host+")
    # A key loaded from its file numbers what it signs, from its counter beside it.
    assert open_manifest(sign_manifest(sample(), signer), verifier) == replace(sample(), sequence=1)
    assert open_manifest(sign_manifest(sample(), signer), verifier).sequence == 2
    assert (tmp_path / "border.seq").read_text() == "2\n"


def test_keygen_default_name(tmp_path):
    key, _ = keygen(tmp_path / "k")
    assert load_signer(key).name == "airsync"


def test_keygen_refuses_to_overwrite(tmp_path):
    key, pub = keygen(tmp_path / "k")
    before = key.read_bytes(), pub.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        keygen(tmp_path / "k")
    assert (key.read_bytes(), pub.read_bytes()) == before
    # Only the .pub exists: still refused, and no .key is left behind.
    (tmp_path / "p.pub").write_text("x")
    with pytest.raises(KeyFileError, match="p.pub: already exists"):
        keygen(tmp_path / "p")
    assert not (tmp_path / "p.key").exists()
    # Only the .key exists.
    (tmp_path / "q.key").write_text("x")
    with pytest.raises(KeyFileError, match="q.key: already exists"):
        keygen(tmp_path / "q")
    assert not (tmp_path / "q.pub").exists()


def test_keygen_bad_name_and_missing_dir(tmp_path):
    with pytest.raises(KeyFileError, match="invalid key name"):
        keygen(tmp_path / "k", "has space")
    keygen(tmp_path / "nodir" / "k")  # a missing directory is made (e.g. /etc/airsync)
    assert (tmp_path / "nodir" / "k.key").is_file()
    (tmp_path / "file").write_text("")
    with pytest.raises(KeyFileError, match="cannot create the directory"):
        keygen(tmp_path / "file" / "sub" / "k")


def test_keygen_mode_ignores_umask(tmp_path):
    old = os.umask(0o277)  # would give 0400 without the explicit chmod
    try:
        key, _ = keygen(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_load_wrong_kind(tmp_path):
    key, pub = keygen(tmp_path / "k")
    with pytest.raises(KeyFileError, match="verifier \\(public\\) key") as info:
        load_signer(pub)
    assert str(info.value).startswith(str(pub))
    with pytest.raises(KeyFileError, match="private signer key") as info:
        load_verifier(key)
    assert str(info.value).startswith(str(key))
    assert key.read_text().strip().split("+")[-1] not in str(info.value)  # the secret is not quoted


def test_load_missing_bad_and_empty(tmp_path):
    for load in (load_signer, load_verifier):
        with pytest.raises(KeyFileError, match="no such key file"):
            load(tmp_path / "missing")
        with pytest.raises(KeyFileError, match="not a regular file"):
            load(tmp_path)
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    empty.chmod(0o600)
    junk = tmp_path / "junk"
    junk.write_text("hello world\n")
    junk.chmod(0o600)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 10000)
    big.chmod(0o600)
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe")
    binary.chmod(0o600)
    for load in (load_signer, load_verifier):
        with pytest.raises(KeyFileError, match="empty key file"):
            load(empty)
        with pytest.raises(KeyFileError, match="not a (valid )?(signer|verifier) key"):
            load(junk)
        with pytest.raises(KeyFileError, match="too large"):
            load(big)
        with pytest.raises(KeyFileError, match="not UTF-8"):
            load(binary)


def test_load_corrupt_signer_key_does_not_leak_it(tmp_path):
    key, _ = keygen(tmp_path / "k")
    skey = key.read_text().strip()
    corrupt = skey[:-6] + ("AAAAAA" if not skey.endswith("AAAAAA") else "BBBBBB")
    key.write_text(corrupt + "\n")
    with pytest.raises(KeyFileError, match="not a valid signer key") as info:
        load_signer(key)
    assert corrupt.split("+")[-1] not in str(info.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o700 | 0o001])
def test_load_signer_refuses_open_permissions(tmp_path, mode):
    key, _ = keygen(tmp_path / "k")
    key.chmod(mode)
    with pytest.raises(KeyFileError, match="too open") as info:
        load_signer(key)
    assert f"chmod 600 {key}" in str(info.value)
    key.chmod(0o400)  # owner-only read is fine
    load_signer(key)


def test_load_tolerates_crlf(tmp_path):
    key, pub = keygen(tmp_path / "k")
    pub.write_text(pub.read_text().strip() + "\r\n")
    assert load_verifier(pub) == load_signer(key).verifier


# --- diff -----------------------------------------------------------------------------------------


def test_diff_clean():
    m = sample()
    actual = {e.path: (e.size, e.sha256) for e in m.entries}
    d = diff(m, actual)
    assert d == Diff() and d.clean and d.problems() == []


def test_diff_classifies_each_problem():
    m = Manifest(
        "2024-05-01T12:00:00Z",
        "s",
        tuple(entry(p, b"12345") for p in ("ok", "gone", "b/short", "long", "changed", "a/gone2")),
    )
    sha = hashlib.sha256(b"12345").hexdigest()
    other = hashlib.sha256(b"54321").hexdigest()
    actual = {
        "ok": (5, sha.upper()),  # case of the hex does not matter
        "b/short": (4, other),
        "long": (6, other),
        "changed": (5, other),
        "z-new": (1, other),
        "a-new": (0, other),
    }
    d = diff(m, actual)
    assert d == Diff(
        missing=("a/gone2", "gone"),
        extra=("a-new", "z-new"),
        altered=("changed",),
        truncated=("b/short",),
        grown=("long",),
    )
    assert not d.clean
    assert d.problems() == [
        ("a-new", "extra"),
        ("a/gone2", "missing"),
        ("b/short", "truncated"),
        ("changed", "altered"),
        ("gone", "missing"),
        ("long", "grown"),
        ("z-new", "extra"),
    ]


def test_diff_empty_medium():
    m = sample()
    assert diff(m, {}).missing == tuple(sorted(FILES))


# --- sequence and bundle lines --------------------------------------------------------------------


def _bundle_manifest() -> Manifest:
    from airsync.carry.manifest import Part

    return replace(sample(), sequence=57, base="b" * 64, sbom=Part("airsync-0123456789abcdef.sbom.cdx.json", 9, "c" * 64),
                   parts=(Part("airsync-0123456789abcdef.001.tar", 10240, "d" * 64),
                          Part("airsync-0123456789abcdef.002.tar", 2048, "e" * 64)),
                   held=(entry("old/@v/v1.0.0.zip", b"old"),))


def test_bundle_lines_round_trip_in_their_order():
    m = _bundle_manifest()
    text = encode(m)
    assert decode(text) == m and encode(decode(text)) == text
    words = [line.split(" ")[0] for line in text.decode().splitlines()]
    assert words[:6] == ["airsync", "created", "sequence", "source", "base", "sbom"]
    assert words.index("part") < words.index("file") < words.index("held") < words.index("gosum")


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace(b"sequence 57", b"sequence 0"), "malformed sequence"),
    (lambda t: t.replace(b"sequence 57", b"sequence 057"), "malformed sequence"),
    (lambda t: t.replace(b"base " + b"b" * 64, b"base xyz"), "malformed base"),
    (lambda t: t.replace(b".002.tar", b".001.tar"), "two parts"),
    (lambda t: t.replace(b".002.tar", b"/../x"), "not a plain file name"),
    (lambda t: t.replace(b"held ", b"file ", 1).replace(b"file ", b"held ", 1), "line after the"),
])
def test_bundle_lines_refused(edit, message):
    with pytest.raises(ManifestError, match=message):
        decode(edit(encode(_bundle_manifest())))


def test_held_may_not_repeat_a_carried_path():
    m = _bundle_manifest()
    with pytest.raises(ManifestError, match="both carried"):
        replace(m, held=(m.entries[0],))
