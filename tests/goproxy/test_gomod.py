"""Tests for airsync.gomod."""

from __future__ import annotations

from airsync.goproxy.gomod import GoMod, Require, parse_gomod
from airsync.goproxy.modpath import ModuleVersion

MV = ModuleVersion


def _parse(text: str):
    return parse_gomod(text.encode("utf-8", errors="surrogateescape"), "go.mod")


def _mods(reqs):
    return [(str(r.module), r.indirect, r.lineno) for r in reqs]


def test_full_file():
    gm, errors = _parse(
        """// A comment before everything.
module example.com/main // the main module

go 1.22.0
toolchain go1.22.3
godebug default=go1.21

require golang.org/x/text v0.14.0 // indirect

require (
\tgithub.com/BurntSushi/toml v1.3.2
\tgithub.com/docker/docker v24.0.7+incompatible // indirect
\t// a comment line inside the block

\trsc.io/quote/v3 v3.1.0 // indirect; used by tests
\tgopkg.in/yaml.v3 v3.0.1 //indirect
)

exclude golang.org/x/net v0.1.0
retract [v1.0.0, v1.0.5] // broken
retract (
\tv0.9.0 // oops
)
tool golang.org/x/tools/cmd/stringer
ignore ./node_modules
"""
    )
    assert errors == []
    assert gm.module_path == "example.com/main"
    assert _mods(gm.requires) == [
        ("golang.org/x/text@v0.14.0", True, 8),
        ("github.com/BurntSushi/toml@v1.3.2", False, 11),
        ("github.com/docker/docker@v24.0.7+incompatible", True, 12),
        ("rsc.io/quote/v3@v3.1.0", True, 15),
        ("gopkg.in/yaml.v3@v3.0.1", True, 16),
    ]
    assert gm.requires[0] == Require(MV("golang.org/x/text", "v0.14.0"), True, "go.mod", 8)
    assert gm.replacements == ()


def test_empty_and_minimal():
    gm, errors = parse_gomod(b"", "go.mod")
    assert gm == GoMod(None, (), ()) and errors == []
    gm, errors = parse_gomod(b"module m\n", "go.mod")  # a main module path needs no dot
    assert gm.module_path == "m" and errors == []


def test_indirect_comment_forms():
    gm, errors = _parse(
        """require (
  a.com/one v1.0.0 // indirect
  a.com/two v1.0.0 //indirect
  a.com/three v1.0.0 // indirect; reason
  a.com/four v1.0.0 // not indirect
  a.com/five v1.0.0 // indirectly
  a.com/six v1.0.0 // indirect extra
  a.com/seven v1.0.0
)
"""
    )
    assert errors == []
    assert [r.indirect for r in gm.requires] == [True, True, True, False, False, False, False]


def test_crlf_and_tabs():
    data = b"module example.com/m\r\n\r\nrequire (\r\n\tgolang.org/x/text v0.14.0 // indirect\r\n)\r\n"
    gm, errors = parse_gomod(data, "go.mod")
    assert errors == []
    assert _mods(gm.requires) == [("golang.org/x/text@v0.14.0", True, 4)]


def test_quoted_strings():
    gm, errors = _parse(
        'module "example.com/m"\n'
        'require "golang.org/x/text" "v0.14.0"\n'
        'require "golang.org/x/\\x6eet" v0.1.0\n'  # \x escapes as in Go
        'require "a.com/has//slashes" v1.0.0\n'  # '//' in a string is no comment ...
    )
    assert gm.module_path == "example.com/m"
    assert _mods(gm.requires) == [("golang.org/x/text@v0.14.0", False, 2), ("golang.org/x/net@v0.1.0", False, 3)]
    # ... but the path is still checked.
    assert [(e.lineno, "double slash" in e.message) for e in errors] == [(4, True)]


def test_raw_strings_lex_as_one_token_but_are_rejected_like_modfile():
    # modfile's lexer reads `...` as one token, but its parseString only unquotes "..."; any
    # other token containing a quote is an error.
    gm, errors = _parse("require `golang.org/x/text` v0.14.0\nrequire 'a.com/x' v1.0.0\nrequire a.com/y v1.0.0\n")
    assert [e.lineno for e in errors] == [1, 2]
    assert all("cannot contain quote" in e.message for e in errors)
    assert _mods(gm.requires) == [("a.com/y@v1.0.0", False, 3)]
    # A raw string in a skipped directive is fine, and its '//' is no comment.
    gm, errors = _parse("godebug `a//b`\nrequire a.com/z v1.0.0\n")
    assert errors == [] and len(gm.requires) == 1


def test_versions_are_canonicalised_like_modfile():
    gm, errors = _parse("require a.com/x v1.2\nrequire a.com/y v1.2.3+meta\nrequire a.com/z v1\n")
    assert errors == []
    assert [r.module.version for r in gm.requires] == ["v1.2.0", "v1.2.3", "v1.0.0"]


def test_replace_forms():
    gm, errors = _parse(
        """module example.com/m
require (
\tgolang.org/x/net v0.10.0
\tgolang.org/x/sys v0.8.0
\texample.com/local v0.0.0
\tmylib v0.0.0
\tgithub.com/old/name v1.0.0
\tgithub.com/kept/one v1.1.0
)
replace golang.org/x/net => golang.org/x/net v0.11.0
replace golang.org/x/sys v0.8.0 => github.com/fork/Sys v0.8.1
replace example.com/local => ../local
replace mylib => ./mylib
replace (
\tgithub.com/old/name v1.0.0 => github.com/new/name v1.0.1 // moved
\tgithub.com/kept/one v1.0.0 => ./one
\tgithub.com/win => C:\\src\\win
\tgithub.com/win2 => .\\win2
)
"""
    )
    assert errors == []
    assert _mods(gm.replacements) == [
        ("golang.org/x/net@v0.11.0", False, 10),
        ("github.com/fork/Sys@v0.8.1", False, 11),
        ("github.com/new/name@v1.0.1", False, 15),
    ]
    # Replaced requirements are never fetched; a version-specific replacement leaves other versions.
    assert _mods(gm.requires) == [("github.com/kept/one@v1.1.0", False, 8)]


def test_invalid_required_path_without_directory_replacement():
    gm, errors = _parse("require mylib v0.0.0\nrequire a.com/ok v1.0.0\n")
    assert [(e.lineno, "missing dot" in e.message) for e in errors] == [(1, True)]
    assert _mods(gm.requires) == [("a.com/ok@v1.0.0", False, 2)]


def test_replace_errors():
    gm, errors = _parse(
        """replace a.com/x => b.com/y
replace a.com/x => b.com/y@v1.0.0
replace a.com/x => ../y v1.0.0
replace a.com/x v1.0.0
replace a.com/x v1.0.0 => b.com/y vfoo
replace a.com/x => b.com/../y v1.0.0
replace a.com/x => b.com/y v2.0.0
replace a.com/x v2.0.0 => b.com/y v1.0.0
replace a.com/x/v1 => b.com/y v1.0.0
replace a.com/ok => b.com/ok v1.0.0
"""
    )
    assert [e.lineno for e in errors] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    msgs = [e.message for e in errors]
    assert "must be directory path" in msgs[0]
    assert "not 'path@version'" in msgs[1]
    assert "cannot have version" in msgs[2]
    assert "usage: replace" in msgs[3]
    assert "must be of the form v1.2.3" in msgs[4]
    assert "malformed module path" in msgs[5]
    assert "should be v0 or v1" in msgs[6]
    assert "should be v0 or v1" in msgs[7]
    assert "invalid module path" in msgs[8]
    assert _mods(gm.replacements) == [("b.com/ok@v1.0.0", False, 10)]


def test_require_errors_reported_with_line_numbers_and_parsing_continues():
    gm, errors = _parse(
        """module example.com/m
require golang.org/x/text
require golang.org/x/text v0.14.0 extra
require golang.org/x/text latest
require rsc.io/quote v2.0.0
require rsc.io/quote/v2 v2.0.0+incompatible
require Example.com/x v1.0.0
require example.com/../x v1.0.0
require example.com/x\x07 v1.0.0
require (
\texample.com/bad
\texample.com/good v1.0.0
)
require example.com/last v1.0.0
"""
    )
    assert [e.lineno for e in errors] == [2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert all(str(e).startswith(f"go.mod:{e.lineno}: ") for e in errors)
    assert "usage: require" in errors[0].message
    assert "must be of the form v1.2.3" in errors[2].message
    assert "should be v0 or v1" in errors[3].message
    assert "+incompatible" in errors[4].message
    assert "Example.com/x" in errors[5].message
    assert "\x07" not in str(errors[7])  # control characters are escaped in messages
    assert _mods(gm.requires) == [("example.com/good@v1.0.0", False, 12), ("example.com/last@v1.0.0", False, 14)]


def test_syntax_errors():
    gm, errors = _parse(
        """module example.com/m
/* block comment */
require a.com/x v1.0.0 /* c */
require "a.com/unterminated v1.0.0
require a.com/x\x0bz v1.0.0
frobnicate a.com/x
require a.com/ok v1.0.0
module example.com/again
"""
    )
    assert [e.lineno for e in errors] == [2, 3, 4, 5, 6, 8]
    assert "// comments" in errors[0].message
    assert "newline in string" in errors[2].message
    assert "unexpected input character" in errors[3].message
    assert 'unknown directive: "frobnicate"' in errors[4].message
    assert "repeated module statement" in errors[5].message
    assert gm.module_path == "example.com/m"
    assert _mods(gm.requires) == [("a.com/ok@v1.0.0", False, 7)]


def test_blocks():
    gm, errors = _parse(
        """require ()
require (
)
require ( a.com/x v1.0.0 )
foo bar (
\ta.com/skipped v1.0.0
)
go (
\t1.21
)
require (
\ta.com/y v1.0.0
) trailing
require a.com/z v1.0.0
require (
\ta.com/unterminated v1.0.0
"""
    )
    assert [e.lineno for e in errors] == [4, 5, 8, 13, 15]
    assert "usage: require" in errors[0].message  # '(' not at line end is an ordinary token
    assert "unknown block type" in errors[1].message
    assert "unknown block type" in errors[2].message
    assert "expected newline after closing paren" in errors[3].message
    assert "unterminated block" in errors[4].message
    assert _mods(gm.requires) == [
        ("a.com/y@v1.0.0", False, 12),
        ("a.com/z@v1.0.0", False, 14),
        ("a.com/unterminated@v1.0.0", False, 16),
    ]


def test_non_utf8_bytes():
    # In a comment they are harmless (as in modfile); in a path they are an error.
    data = b"// caf\xe9\nrequire a.com/x v1.0.0 // \xff\nrequire a.com/\xffx v1.0.0\n"
    gm, errors = parse_gomod(data, "go.mod")
    assert _mods(gm.requires) == [("a.com/x@v1.0.0", False, 2)]
    assert [e.lineno for e in errors] == [3]
    str(errors[0]).encode("ascii")


def test_module_block_and_gopkg_in():
    gm, errors = _parse(
        "module (\n\texample.com/m\n)\nrequire gopkg.in/check.v1 v0.0.0-20161208181325-20d25e280405\n"
        "require gopkg.in/yaml.v2 v2.4.0\n"
    )
    assert errors == []
    assert gm.module_path == "example.com/m"
    assert [str(r.module) for r in gm.requires] == [
        "gopkg.in/check.v1@v0.0.0-20161208181325-20d25e280405",
        "gopkg.in/yaml.v2@v2.4.0",
    ]


def _lax(text: str):
    return parse_gomod(text.encode(), "dep.mod", lax=True)


def test_a_dependency_go_mod_is_read_like_modfile_parselax():
    # What the go command accepts in a dependency: a stray line left from a dropped block, verbs
    # from newer Go releases, unknown block types, main-module-only directives, a retract in a
    # syntax this Go does not know yet, a go version with a suffix.
    text = """module example.com/dep // Deprecated: use example.com/dep/v2

go 1.22.x
toolchain nonsense
require example.com/a v1.0.0
\texample.com/stray v1.0.0
)
frobnicate everything
future (
\twhatever 1 2 3
)
replace example.com/a => ./nowhere
exclude not/a/module v1
retract (v1.0.0, v1.1.0]
retract v0.9.0 // published by mistake
require (
\texample.com/b v1.2 // indirect
)
"""
    gm, errors = _lax(text)
    assert errors == []
    assert gm.module_path == "example.com/dep"
    assert gm.deprecated == "use example.com/dep/v2"
    assert gm.go == "1.22" and gm.toolchain is None
    assert [str(r.module) for r in gm.requires] == ["example.com/a@v1.0.0", "example.com/b@v1.2.0"]
    assert gm.replaces == () and gm.excludes == ()
    assert [(r.low, r.high, r.rationale) for r in gm.retracts] == [("v0.9.0", "v0.9.0", "published by mistake")]
    # The same file as a main module is wrong in many places.
    _, strict = parse_gomod(text.encode(), "go.mod")
    assert {e.lineno for e in strict} == {3, 4, 6, 7, 8, 9, 14}


def test_lax_reading_still_refuses_what_modfile_refuses():
    for text, why in (
        ('require "example.com/a v1.0.0\n', "newline in string"),
        ("require example.com/a v1.0.0 /* x */\n", "// comments"),
        ("require example.com/a\n", "usage: require"),
        ("require example.com/a/v2 v1.0.0\n", "invalid"),
        ("go 1.x\n", "invalid go version"),
        ("require (\n\texample.com/a v1.0.0\n", "unterminated block"),
        ("module a\nmodule b\n", "repeated module"),
    ):
        _, errors = _lax(text)
        assert errors and why in errors[0].message, (text, errors)


def test_main_module_directives_for_the_module_graph():
    gm, errors = _parse(
        """module example.com/main
go 1.21
toolchain go1.22.3
require (
\texample.com/a v1.0.0
\tmylib v0.0.0
)
replace mylib => ../mylib
replace example.com/a v1.0.0 => example.com/fork v1.0.1
exclude example.com/c v1.3.0
// Withdrawn: tagged from the wrong branch.
retract [v1.0.0, v1.0.5]
"""
    )
    assert errors == []
    assert gm.go == "1.21" and gm.toolchain == "go1.22.3"
    assert gm.graph_requires == (MV("example.com/a", "v1.0.0"), MV("mylib", "v0.0.0"))
    assert gm.requires == ()  # both are replaced: neither is fetched under its own name
    assert [(r.old, r.old_version, r.new, r.new_version) for r in gm.replaces] == [
        ("mylib", "", "../mylib", ""), ("example.com/a", "v1.0.0", "example.com/fork", "v1.0.1")]
    assert gm.excludes == (MV("example.com/c", "v1.3.0"),)
    (r,) = gm.retracts
    assert (r.low, r.high, r.rationale) == ("v1.0.0", "v1.0.5", "Withdrawn: tagged from the wrong branch.")
    assert gm.retracted("v1.0.3") is r and gm.retracted("v1.0.6") is None and gm.retracted("v1.0.0-pre") is None


def test_deprecation_follows_modfile():
    def dep(text):
        return _lax(text)[0].deprecated

    assert dep("// Deprecated: gone\nmodule m\n") == "gone"
    assert dep("// A package.\n//\n// Deprecated: in the second paragraph\n// and on.\nmodule m\n") == \
        "in the second paragraph\nand on."
    assert dep("// Deprecated: not attached\n\nmodule m\n") == ""
    assert dep("// Not deprecated: at all\nmodule m\n") == ""
    assert dep("module m // Deprecated:   spaced\n") == "spaced"
