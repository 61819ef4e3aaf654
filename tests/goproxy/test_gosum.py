"""Tests for airsync.gosum."""

from __future__ import annotations

from airsync.errors import InputError
from airsync.goproxy.gosum import EMPTY_GOMOD_HASH, SumLine, parse_gosum
from airsync.goproxy.modpath import ModuleVersion

H_ZIP = "h1:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8="  # a real Hash1 (dirhash test vector)
H_MOD = "h1:6Mu1dDSBQ5W3nx3lvZyTf9K/iR7wR0HyBb6tkUcnhSM="

GOOD = f"""golang.org/x/text v0.3.0 {H_ZIP}
golang.org/x/text v0.3.0/go.mod {H_MOD}

github.com/BurntSushi/toml v1.2.1 {H_ZIP}
rsc.io/quote/v3 v3.1.0/go.mod {H_MOD}
github.com/docker/docker v20.10.7+incompatible {H_ZIP}
gopkg.in/yaml.v2 v2.4.0 {H_ZIP}
gopkg.in/check.v1 v0.0.0-20161208181325-20d25e280405/go.mod {H_MOD}
""".encode()


def test_good_file():
    lines, errors = parse_gosum(GOOD, "go.sum")
    assert errors == []
    assert lines[0] == SumLine(ModuleVersion("golang.org/x/text", "v0.3.0"), False, H_ZIP, "go.sum", 1)
    assert lines[1] == SumLine(ModuleVersion("golang.org/x/text", "v0.3.0"), True, H_MOD, "go.sum", 2)
    assert [ln.lineno for ln in lines] == [1, 2, 4, 5, 6, 7, 8]
    assert lines[3].module == ModuleVersion("rsc.io/quote/v3", "v3.1.0") and lines[3].gomod
    assert lines[4].module.version == "v20.10.7+incompatible"


def test_whitespace_tolerance():
    data = f"golang.org/x/text\tv0.3.0   {H_ZIP}\r\n  \r\n\t\ngolang.org/x/text v0.3.0/go.mod {H_MOD}".encode()
    lines, errors = parse_gosum(data, "go.sum")
    assert errors == []
    assert [(ln.lineno, ln.gomod, ln.h1) for ln in lines] == [(1, False, H_ZIP), (4, True, H_MOD)]


def test_empty():
    assert parse_gosum(b"", "go.sum") == ([], [])
    assert parse_gosum(b"\n\n   \n", "go.sum") == ([], [])


def test_empty_gomod_hash_line_dropped():
    # The go command silently drops these (an old bug wrote them); so do we.
    data = f"example.com/m v1.0.0/go.mod {EMPTY_GOMOD_HASH}\n".encode()
    assert parse_gosum(data, "go.sum") == ([], [])


def _errs(bad_lines: list[str]) -> tuple[list[SumLine], list[InputError]]:
    good = f"golang.org/x/text v0.3.0 {H_ZIP}"
    text = "\n".join([good] + bad_lines + [good]) + "\n"
    return parse_gosum(text.encode("utf-8", errors="surrogateescape"), "sub/go.sum")


def _one_error(bad: str) -> InputError:
    lines, errors = _errs([bad])
    # The good lines around the bad one still parse.
    assert [ln.lineno for ln in lines] == [1, 3]
    assert len(errors) == 1, errors
    e = errors[0]
    assert (e.source, e.lineno) == ("sub/go.sum", 2)
    assert str(e).startswith("sub/go.sum:2: ")
    return e


def test_wrong_field_count():
    assert "wrong number of fields 2" in _one_error("golang.org/x/text v0.3.0").message
    assert "wrong number of fields 4" in _one_error(f"golang.org/x/text v0.3.0 {H_ZIP} extra").message
    assert "wrong number of fields 1" in _one_error("garbage").message


def test_bad_hash():
    e = _one_error("golang.org/x/text v0.3.0 h1:notbase64!!")
    assert "golang.org/x/text@v0.3.0" in e.message and "malformed hash" in e.message
    assert "malformed hash" in _one_error("golang.org/x/text v0.3.0 h1:").message
    # Valid base64, wrong length.
    assert "malformed hash" in _one_error("golang.org/x/text v0.3.0 h1:YWJj").message
    # Missing padding.
    assert "malformed hash" in _one_error(f"golang.org/x/text v0.3.0 {H_ZIP[:-1]}").message
    # Non-canonical trailing bits: same bytes, different spelling.
    assert "malformed hash" in _one_error(f"golang.org/x/text v0.3.0 {H_ZIP[:-2]}9=").message
    # URL-safe alphabet is not the standard one.
    assert "malformed hash" in _one_error("golang.org/x/text v0.3.0 h1:" + "_" * 43 + "=").message
    assert "malformed hash" in _one_error("golang.org/x/text v0.3.0 deadbeef").message


def test_unsupported_algorithm():
    e = _one_error("golang.org/x/text v0.3.0 h2:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8=")
    assert 'unsupported hash algorithm "h2"' in e.message


def test_bad_path_and_version():
    e = _one_error(f"Golang.org/x/text v0.3.0 {H_ZIP}")
    assert "Golang.org/x/text" in e.message
    assert "malformed module path" in _one_error(f"golang.org/../../etc v0.3.0 {H_ZIP}").message
    assert "malformed module path" in _one_error(f"../../etc v0.3.0 {H_ZIP}").message
    assert "malformed module path" in _one_error(f"/etc/x.y v0.3.0 {H_ZIP}").message
    assert "invalid version" in _one_error(f"golang.org/x/text v0.3 {H_ZIP}").message
    assert "invalid version" in _one_error(f"golang.org/x/text v0.3.0/../../x {H_ZIP}").message
    assert "invalid version" in _one_error(f"golang.org/x/text v0.3.0/go.sum {H_ZIP}").message
    assert "invalid version" in _one_error(f"golang.org/x/text ../v0.3.0 {H_ZIP}").message
    assert "invalid version" in _one_error(f"rsc.io/quote v2.0.0 {H_ZIP}").message
    assert "invalid version" in _one_error(f"rsc.io/quote/v2 v2.0.0+incompatible {H_ZIP}").message


def test_control_characters_and_bad_utf8():
    e = _one_error(f"golang.org/x/te\x07xt v0.3.0 {H_ZIP}")
    assert "\x07" not in str(e) and "\\u0007" in str(e)
    e = _one_error(f"golang.org/x/te\x1fxt v0.3.0 {H_ZIP}")  # not white space to Go
    assert "malformed module path" in e.message
    e = _one_error(f"golang.org/x/te\udcffxt v0.3.0 {H_ZIP}")  # the byte 0xff
    assert "invalid UTF-8" in e.message
    str(e).encode("utf-8")  # printable without surrogate errors
    e = _one_error(f"golang.org/x/text v0.3.0\x00 {H_ZIP}")
    assert "invalid version" in e.message


def test_several_errors_all_reported():
    lines, errors = _errs(["x", f"bad path v1.0.0 {H_ZIP}", "", "golang.org/x/net v0.1.0 sha256:abc"])
    assert [e.lineno for e in errors] == [2, 3, 5]
    assert "unsupported hash algorithm" in errors[2].message
    assert [ln.lineno for ln in lines] == [1, 6]
