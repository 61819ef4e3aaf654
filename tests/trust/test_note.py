"""Tests for airsync.note: Go's note_test.go vectors, real sum.golang.org tree heads, and rejections."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from airsync.errors import AirsyncError
from airsync.trust import note
from airsync.trust.note import (
    SUM_GOLANG_ORG,
    InvalidKeyError,
    InvalidSignatureError,
    MalformedNoteError,
    Note,
    NoteError,
    Signature,
    UnverifiedNoteError,
    Verifier,
    generate_key,
    open_note,
    parse_signer,
    parse_verifier,
    sign,
)

# From golang.org/x/mod/sumdb/note/note_test.go, verbatim.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
).encode()
PETER = Signature(
    "PeterNeumann",
    0xC74F20A3,
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
)
ENOCH = Signature(
    "EnochRoot",
    0xAF0CFE78,
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=",
)

# Real signed tree heads of sum.golang.org, as published in public write-ups (lookup responses);
# they verify under the go command's built-in key, which is what makes them trustworthy vectors.
SUMDB_TREES = [
    "go.sum database tree\n15368405\n/g9am3I6YWNKaZX/jkne1fqd9zEyjss+JXyPXG0WfkY=\n\n"
    "— sum.golang.org Az3grqJGUaSGukG9p8nI2vKgiFn7qGHxn0W+mrwyI6Gz3F0t1J3LzmWk/p96Ybf295EjwdSwlzgijq5WA9d1Ded7owM=\n",
    "go.sum database tree\n445646\njEFFy4AtYgBBNTSZTiNnQrgQqMbcH0mfO2oP2FxR9VU=\n\n"
    "— sum.golang.org Az3grkGho/PqvUmEuTv6+r2g303hUhu60FOD6vLpm19mBwH9UjquWY2OKxNmZ55z0gHrp24AgPC3Q5WO7uZrVdvdCQU=\n",
]


@pytest.fixture(scope="module")
def peter() -> Verifier:
    return parse_verifier(PETER_VKEY)


@pytest.fixture(scope="module")
def enoch() -> Verifier:
    return parse_verifier(ENOCH_VKEY)


def test_errors_are_airsync_errors():
    for cls in (InvalidKeyError, UnverifiedNoteError, InvalidSignatureError, MalformedNoteError):
        assert issubclass(cls, NoteError)
    assert issubclass(NoteError, AirsyncError)


# --- keys ---------------------------------------------------------------------------------------


def test_sum_golang_org_key():
    v = parse_verifier(SUM_GOLANG_ORG)
    assert v.name == "sum.golang.org"
    assert v.key_hash == 0x033DE0AE
    assert len(v.public_key) == 32
    assert v.vkey == SUM_GOLANG_ORG


def test_parse_verifier_peter(peter):
    assert (peter.name, peter.key_hash) == ("PeterNeumann", 0xC74F20A3)
    assert peter.vkey == PETER_VKEY
    assert parse_verifier(PETER_VKEY) == peter


def manglings(key: str):
    """Every proper substring, and every one-byte increment, as note_test.go tries them."""
    for i in range(len(key) + 1):
        for j in range(i + 1, len(key) + 1):
            if i != 0 or j != len(key):
                yield key[i:j]
    for i in range(len(key)):
        yield key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :]


def test_parse_verifier_rejects_manglings():
    for bad in manglings(PETER_VKEY):
        with pytest.raises(InvalidKeyError):
            parse_verifier(bad)


@pytest.mark.parametrize(
    "bad",
    [
        # From note_test.go: wrong length key and unknown algorithm, each with an adjusted key hash.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # int() would take these
        "PeterNeumann+c74f_20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+ c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad padding
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq_LDE4izWy10TW",  # URL alphabet
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_parse_verifier_rejects(bad):
    with pytest.raises(InvalidKeyError):
        parse_verifier(bad)


def fresh_vkey(name: str) -> str:
    """A verifier key for ``name`` with a correct hash, so only the name rules can reject it."""
    raw = bytes([1]) + bytes(range(32))
    return f"{name}+{note.key_hash(name, raw):08x}+{base64.b64encode(raw).decode()}"


@pytest.mark.parametrize("name", ["a b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a\u0085b", "a+b", "\udc80"])
def test_name_rules_reject(name):
    assert not note.is_valid_name(name)
    if name != "\udc80":
        with pytest.raises(InvalidKeyError):
            parse_verifier(fresh_vkey(name))
    with pytest.raises(InvalidKeyError):
        generate_key(name)


@pytest.mark.parametrize("name", ["example.com/log", "ünïcode", "a\x1cb", "a\u200bb"])
def test_name_rules_accept(name):
    # U+001C and U+200B are not White_Space in Go's unicode.IsSpace (str.isspace() says U+001C is).
    assert parse_verifier(fresh_vkey(name)).name == name


def test_parse_verifier_skips_newlines_in_base64_like_go():
    # Go's base64 decoder ignores CR and LF, so a key read from a file with its newline still parses.
    assert parse_verifier(PETER_VKEY + "\n") == parse_verifier(PETER_VKEY)


def test_parse_verifier_uppercase_hash():
    assert parse_verifier(PETER_VKEY.replace("c74f20a3", "C74F20A3")).key_hash == 0xC74F20A3


def test_parse_signer_peter(peter):
    s = parse_signer(PETER_SKEY)
    assert (s.name, s.key_hash) == ("PeterNeumann", 0xC74F20A3)
    assert s.verifier == peter
    assert s.skey == PETER_SKEY
    assert "AYEK" not in repr(s)  # the seed stays out of reprs and logs


def test_parse_signer_rejects_manglings():
    for bad in manglings(PETER_SKEY):
        with pytest.raises(InvalidKeyError) as e:
            parse_signer(bad)
        assert "AYEKFALV" not in str(e.value)


def test_verifier_construction_checks():
    v = parse_verifier(PETER_VKEY)
    with pytest.raises(InvalidKeyError):
        Verifier(v.name, v.key_hash ^ 1, v.public_key)
    with pytest.raises(InvalidKeyError):
        Verifier(v.name, v.key_hash, v.public_key[:31])
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.name = "x"  # type: ignore[misc]
    assert Verifier.from_public_key(v.name, v.public_key) == v


def test_generate_key_round_trip():
    skey, vkey = generate_key("EnochRoot")
    s, v = parse_signer(skey), parse_verifier(vkey)
    assert s.name == v.name == "EnochRoot"
    assert s.key_hash == v.key_hash
    assert s.verifier == v
    msg = bytearray(b"hi")
    sig = bytearray(s.sign(bytes(msg)))
    assert v.verify(bytes(msg), bytes(sig))
    sig[0] ^= 1
    assert not v.verify(bytes(msg), bytes(sig))
    sig[0] ^= 1
    msg[0] += 1
    assert not v.verify(bytes(msg), bytes(sig))
    assert not v.verify(b"hi", bytes(sig[:63]))
    assert generate_key("EnochRoot") != (skey, vkey)


# --- sign ---------------------------------------------------------------------------------------


def test_sign_go_vector():
    assert sign(TEXT, parse_signer(PETER_SKEY)) == TEXT + b"\n" + PETER_SIG


def test_sign_replaces_existing_signature_by_same_key():
    old = Note(TEXT, (Signature("PeterNeumann", 0xC74F20A3, "BADSIGN="),))
    assert sign(old, parse_signer(PETER_SKEY)) == TEXT + b"\n" + PETER_SIG


def test_sign_adds_to_opened_note(peter):
    n = open_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG, [peter])
    skey, vkey = generate_key("Me")
    msg = sign(n, parse_signer(skey))
    assert msg.startswith(TEXT + b"\n" + PETER_SIG + ENOCH_SIG + "— Me ".encode())
    again = open_note(msg, [peter, parse_verifier(vkey)])
    assert [s.name for s in again.sigs] == ["PeterNeumann", "Me"]
    assert again.unverified == (ENOCH,)


@pytest.mark.parametrize(
    "bad",
    [
        b"abc",  # from note_test.go: no final newline
        b"",
        TEXT[:-1],
        Note(TEXT, (Signature("a+b", 0, "ABCD"),)),  # note_test.go: bad name
        b"bell\x07\n",  # stricter than Go: open_note would reject these
        b"\xff\n",
    ],
)
def test_sign_rejects(bad):
    with pytest.raises(MalformedNoteError):
        sign(bad, parse_signer(PETER_SKEY))


def test_sign_rejects_existing_signature_with_wrong_hash():
    # note_test.go: a kept signature whose base64 does not start with its key hash.
    bad = Note(TEXT, (Signature("PeterNeumann", 0xC74F20A3, "BADHASH="),))
    with pytest.raises(MalformedNoteError):
        sign(bad, parse_signer(generate_key("Other")[0]))


def test_sign_requires_a_signature():
    with pytest.raises(MalformedNoteError):
        sign(TEXT)


def test_sign_blank_lines_in_text_round_trip():
    skey, vkey = generate_key("k")
    v = parse_verifier(vkey)
    for text in [b"\n", b"a\n\n", b"a\n\nb\n", b"\n\n\n"]:
        assert open_note(sign(text, parse_signer(skey)), [v]).text == text


def test_sign_many_signers_round_trip():
    pairs = [generate_key(f"k{i}") for i in range(3)]
    msg = sign(TEXT, *(parse_signer(s) for s, _ in pairs))
    n = open_note(msg, [parse_verifier(v) for _, v in pairs])
    assert n.text == TEXT
    assert [s.name for s in n.sigs] == ["k0", "k1", "k2"]


# --- open ---------------------------------------------------------------------------------------


def test_open_sumdb_trees():
    v = parse_verifier(SUM_GOLANG_ORG)
    for tree in SUMDB_TREES:
        n = open_note(tree.encode(), [v])
        assert n.text.startswith(b"go.sum database tree\n")
        assert [(s.name, s.key_hash) for s in n.sigs] == [("sum.golang.org", 0x033DE0AE)]


def test_open_sumdb_tree_tampered():
    v = parse_verifier(SUM_GOLANG_ORG)
    tree = SUMDB_TREES[0].encode()
    with pytest.raises(InvalidSignatureError) as e:
        open_note(tree.replace(b"15368405", b"15368406"), [v])
    assert (e.value.name, e.value.key_hash) == ("sum.golang.org", 0x033DE0AE)
    with pytest.raises(UnverifiedNoteError):
        open_note(tree, [parse_verifier(PETER_VKEY)])  # wrong key


def test_open_one_verified_one_not(peter):
    n = open_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert n == Note(TEXT, (PETER,), (ENOCH,))


def test_open_both_verified(peter, enoch):
    n = open_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert n == Note(TEXT, (PETER, ENOCH), ())


def test_open_unverified_carries_note():
    with pytest.raises(UnverifiedNoteError) as e:
        open_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG, [])
    assert e.value.note == Note(TEXT, (), (PETER, ENOCH))
    assert "PeterNeumann+c74f20a3" in str(e.value)


def test_open_ambiguous_verifiers(peter, enoch):
    other = Verifier.__new__(Verifier)  # same name and hash, different key: only a forged list does this
    object.__setattr__(other, "name", enoch.name)
    object.__setattr__(other, "key_hash", enoch.key_hash)
    object.__setattr__(other, "public_key", peter.public_key)
    object.__setattr__(other, "_key", peter._key)
    with pytest.raises(InvalidKeyError, match="ambiguous"):
        open_note(TEXT + b"\n" + ENOCH_SIG, [enoch, peter, other])
    # Unused ambiguity is fine; the same verifier twice is ambiguous too, as in Go's VerifierList.
    assert open_note(TEXT + b"\n" + PETER_SIG, [enoch, peter, other]).sigs == (PETER,)
    with pytest.raises(InvalidKeyError, match="ambiguous"):
        open_note(TEXT + b"\n" + ENOCH_SIG, [enoch, peter, enoch])


def test_open_too_many_signatures(peter):
    for known in ([peter], []):
        with pytest.raises(MalformedNoteError):
            open_note(TEXT + b"\n" + PETER_SIG * 101, known)
    assert open_note(TEXT + b"\n" + PETER_SIG * 100, [peter]).sigs == (PETER,)


def test_open_invalid_signature(peter):
    bad = PETER_SIG[:60] + b"ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError, match="PeterNeumann\\+c74f20a3"):
        open_note(TEXT + b"\n" + bad, [peter])


def test_open_duplicates(peter):
    # note_test.go: repeated verified signatures count once, repeated identical unverified lines
    # count once, and a different unverified line by the same key is kept.
    enoch_abcd_line = ENOCH_SIG[:60] + b"ABCD" + ENOCH_SIG[60:]
    enoch_abcd = Signature(ENOCH.name, ENOCH.key_hash, ENOCH.b64[:46] + "ABCD" + ENOCH.b64[46:])
    n = open_note(TEXT + b"\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd_line, [peter])
    assert n.sigs == (PETER,)
    assert n.unverified == (ENOCH, enoch_abcd)


def test_open_only_first_signature_per_key_counts(peter):
    # Go checks a known key's first signature and skips the rest, even a bad one.
    bad = PETER_SIG[:60] + b"ABCD" + PETER_SIG[60:]
    assert open_note(TEXT + b"\n" + PETER_SIG + bad, [peter]).sigs == (PETER,)
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + b"\n" + bad + PETER_SIG, [peter])


def peter_line(b64: str, name: str = "PeterNeumann") -> bytes:
    return f"— {name} {b64}\n".encode()


@pytest.mark.parametrize(
    "msg",
    [
        # note_test.go's bad messages.
        TEXT,
        TEXT + b"\n",
        TEXT + b"\n" + PETER_SIG[:-1],
        b"\x01" + TEXT + b"\n" + PETER_SIG,
        b"\xff" + TEXT + b"\n" + PETER_SIG,
        TEXT + b"\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=".encode(),
        TEXT + b"\n" + PETER_SIG + b"Unexpected line.\n",
        # More of the same kind.
        TEXT + b"\n" + PETER_SIG.replace(b"\n", b"\r\n"),
        TEXT + b"\n" + PETER_SIG + b"\n",  # blank line after the signatures
        TEXT + b"\n" + PETER_SIG.replace("— ".encode(), b"- "),
        TEXT + b"\n" + PETER_SIG.replace("— ".encode(), "—".encode()),
        TEXT + b"\n" + peter_line(PETER.b64[:-1]),  # truncated base64
        TEXT + b"\n" + peter_line(PETER.b64.rstrip("=")),  # missing padding
        TEXT + b"\n" + peter_line(PETER.b64.replace("/", "_")),  # URL alphabet
        TEXT + b"\n" + peter_line("*" + PETER.b64[1:]),
        TEXT + b"\n" + peter_line(""),
        TEXT + b"\n" + "— PeterNeumann\n".encode(),
        TEXT + b"\n" + peter_line(base64.b64encode(bytes.fromhex("c74f20a3")).decode()),  # hash only
        TEXT + b"\n" + peter_line(PETER.b64, name="Peter+Neumann"),
        TEXT + b"\n" + peter_line(PETER.b64, name=""),
        TEXT + b"\n" + peter_line(PETER.b64, name="Peter\u00a0Neumann"),
        TEXT + b"\n" + peter_line(PETER.b64 + " "),
        b"\xed\xa0\x80\n\n" + PETER_SIG,  # UTF-8-encoded surrogate
    ],
)
def test_open_malformed(msg, peter):
    with pytest.raises(MalformedNoteError):
        open_note(msg, [peter])


def test_open_signature_truncated_but_well_formed(peter):
    # Valid base64 of the key hash and a short signature: well formed, but does not verify.
    raw = base64.b64decode(PETER.b64)
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + b"\n" + peter_line(base64.b64encode(raw[:-1]).decode()), [peter])
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + b"\n" + peter_line(base64.b64encode(raw[:5]).decode()), [peter])


def test_open_wrong_key_hash(peter):
    # Same signature under another key hash: not Peter's key any more, so unknown, so unverified.
    raw = bytearray(base64.b64decode(PETER.b64))
    raw[3] ^= 1
    with pytest.raises(UnverifiedNoteError) as e:
        open_note(TEXT + b"\n" + peter_line(base64.b64encode(raw).decode()), [peter])
    assert e.value.note.unverified[0].key_hash == 0xC74F20A2


def test_open_wrong_name(peter):
    msg = TEXT + b"\n" + PETER_SIG.replace(b"PeterNeumann", b"CarmenSandiego")
    with pytest.raises(UnverifiedNoteError):
        open_note(msg, [peter])


def test_open_tampered_text(peter):
    for text in (TEXT.replace(b"problem", b"pr0blem"), TEXT + b"more\n", b"\n" + TEXT, TEXT[1:]):
        with pytest.raises(InvalidSignatureError):
            open_note(text + b"\n" + PETER_SIG, [peter])


def test_open_text_is_split_at_last_blank_line(peter):
    # A blank line inside the text is text; only the last one separates the signatures.
    with pytest.raises(InvalidSignatureError):
        open_note(b"extra\n\n" + TEXT + b"\n" + PETER_SIG, [peter])
    with pytest.raises(InvalidSignatureError):  # text is now TEXT + blank line + PETER_SIG
        open_note(TEXT + b"\n" + PETER_SIG + b"\n" + PETER_SIG, [peter])


def test_open_generated_key_round_trip():
    skey, vkey = generate_key("example.com/log")
    msg = sign(b"go.sum database tree\n3\nAAAA\n", parse_signer(skey))
    n = open_note(msg, iter([parse_verifier(vkey)]))
    assert n.text == b"go.sum database tree\n3\nAAAA\n"
    assert n.sigs[0].name == "example.com/log"
    _, other = generate_key("example.com/log")  # same name, other key: other hash, unknown
    with pytest.raises(UnverifiedNoteError):
        open_note(msg, [parse_verifier(other)])


def test_open_rejects_non_verifiers():
    with pytest.raises(TypeError):
        open_note(TEXT + b"\n" + PETER_SIG, [PETER_VKEY])  # type: ignore[list-item]
