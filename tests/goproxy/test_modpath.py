"""Tests for airsync.modpath, including golang.org/x/mod/module's own test tables."""

from __future__ import annotations

import pytest

from airsync.errors import ModulePathError
from airsync.goproxy import modpath
from airsync.goproxy.modpath import ModuleVersion, parse_proxy_file, proxy_file

# (path, module ok, import ok, file ok), from module_test.go checkPathTests.
CHECK_PATH = [
    ("x.y/z", True, True, True),
    ("x.y", True, True, True),
    ("", False, False, False),
    ("x.y/\udcffz", False, False, False),  # a non-UTF-8 byte, as decoded with surrogateescape
    ("/x.y/z", False, False, False),
    ("x./z", False, False, False),
    (".x/z", False, True, True),
    ("-x/z", False, False, True),
    ("x..y/z", True, True, True),
    ("x.y/z/../../w", False, False, False),
    ("x.y//z", False, False, False),
    ("x.y/z//w", False, False, False),
    ("x.y/z/", False, False, False),
    ("x.y/z/v0", False, True, True),
    ("x.y/z/v1", False, True, True),
    ("x.y/z/v2", True, True, True),
    ("x.y/z/v2.0", False, True, True),
    ("X.y/z", False, True, True),
    ("!x.y/z", False, False, True),
    ("_x.y/z", False, True, True),
    ("x.y!/z", False, False, True),
    ('x.y"/z', False, False, False),
    ("x.y#/z", False, False, True),
    ("x.y$/z", False, False, True),
    ("x.y%/z", False, False, True),
    ("x.y&/z", False, False, True),
    ("x.y'/z", False, False, False),
    ("x.y(/z", False, False, True),
    ("x.y)/z", False, False, True),
    ("x.y*/z", False, False, False),
    ("x.y+/z", False, True, True),
    ("x.y,/z", False, False, True),
    ("x.y-/z", True, True, True),
    ("x.y./zt", False, False, False),
    ("x.y:/z", False, False, False),
    ("x.y;/z", False, False, False),
    ("x.y</z", False, False, False),
    ("x.y=/z", False, False, True),
    ("x.y>/z", False, False, False),
    ("x.y?/z", False, False, False),
    ("x.y@/z", False, False, True),
    ("x.y[/z", False, False, True),
    ("x.y\\/z", False, False, False),
    ("x.y]/z", False, False, True),
    ("x.y^/z", False, False, True),
    ("x.y_/z", False, True, True),
    ("x.y`/z", False, False, False),
    ("x.y{/z", False, False, True),
    ("x.y}/z", False, False, True),
    ("x.y~/z", False, True, True),
    ("x.y/z!", False, False, True),
    ('x.y/z"', False, False, False),
    ("x.y/z#", False, False, True),
    ("x.y/z$", False, False, True),
    ("x.y/z%", False, False, True),
    ("x.y/z&", False, False, True),
    ("x.y/z'", False, False, False),
    ("x.y/z(", False, False, True),
    ("x.y/z)", False, False, True),
    ("x.y/z*", False, False, False),
    ("x.y/z++", False, True, True),
    ("x.y/z,", False, False, True),
    ("x.y/z-", True, True, True),
    ("x.y/z.t", True, True, True),
    ("x.y/z/t", True, True, True),
    ("x.y/z:", False, False, False),
    ("x.y/z;", False, False, False),
    ("x.y/z<", False, False, False),
    ("x.y/z=", False, False, True),
    ("x.y/z>", False, False, False),
    ("x.y/z?", False, False, False),
    ("x.y/z@", False, False, True),
    ("x.y/z[", False, False, True),
    ("x.y/z\\", False, False, False),
    ("x.y/z]", False, False, True),
    ("x.y/z^", False, False, True),
    ("x.y/z_", True, True, True),
    ("x.y/z`", False, False, False),
    ("x.y/z{", False, False, True),
    ("x.y/z}", False, False, True),
    ("x.y/z~", True, True, True),
    ("x.y/x.foo", True, True, True),
    ("x.y/aux.foo", False, False, False),
    ("x.y/prn", False, False, False),
    ("x.y/prn2", True, True, True),
    ("x.y/com", True, True, True),
    ("x.y/com1", False, False, False),
    ("x.y/com1.txt", False, False, False),
    ("x.y/calm1", True, True, True),
    ("x.y/z~0", False, False, True),
    ("x.y/z~09", False, False, True),
    ("x.y/z09", True, True, True),
    ("x.y/z09~", True, True, True),
    ("x.y/z09~09z", True, True, True),
    ("x.y/z09~09z~09", False, False, True),
    ("github.com/!123/logrus", False, False, True),
    ("github.com/user/unicode/испытание", False, False, True),
    ("../x", False, False, False),
    ("./y", False, False, False),
    ("x:y", False, False, False),
    ("\\temp\\foo", False, False, False),
    (".gitignore", False, True, True),
    (".github/ISSUE_TEMPLATE", False, True, True),
    ("x☺y", False, False, False),
    # Not in Go's table: control characters and a few more.
    ("x.y/z\x00", False, False, False),
    ("x.y/z\x7f", False, False, False),
    ("x.y/z\nw", False, False, False),
    ("x.y/z w", False, False, True),
    ("x.y/LPT9", False, False, False),
    ("x.y/Nul", False, False, False),
    ("gopkg.in/yaml.v2", True, True, True),
    ("gopkg.in/yaml.v0", True, True, True),
    ("gopkg.in/yaml.v1-unstable", True, True, True),
    ("gopkg.in/yaml", False, True, True),
    ("gopkg.in/yaml.v01", False, True, True),
    ("gopkg.in/yaml/v2", False, True, True),
    ("example.com/v2", True, True, True),
    ("example.com/v10", True, True, True),
    ("example.com/v02", False, True, True),
    ("example.com/xv2", True, True, True),
]


@pytest.mark.parametrize("path,ok,import_ok,file_ok", CHECK_PATH)
def test_check_path(path, ok, import_ok, file_ok):
    for check, want in (
        (modpath.check_path, ok),
        (modpath.check_import_path, import_ok),
        (modpath.check_file_path, file_ok),
    ):
        if want:
            check(path)
        else:
            with pytest.raises(ModulePathError):
                check(path)


@pytest.mark.parametrize("path,ok,_i,_f", CHECK_PATH)
def test_split_path_version_adds_up(path, ok, _i, _f):
    prefix, major, _ = modpath.split_path_version(path)
    assert prefix + major == path


@pytest.mark.parametrize(
    "prefix,major",
    [
        ("x.y/z", ""),
        ("x.y/z", "/v2"),
        ("x.y/z", "/v3"),
        ("x.y/v", ""),
        ("gopkg.in/yaml", ".v0"),
        ("gopkg.in/yaml", ".v1"),
        ("gopkg.in/yaml", ".v2"),
        ("gopkg.in/yaml", ".v3"),
        ("gopkg.in/yaml", ".v1-unstable"),
    ],
)
def test_split_path_version(prefix, major):
    assert modpath.split_path_version(prefix + major) == (prefix, major, True)


def test_check_path_messages_name_path_and_reason():
    with pytest.raises(ModulePathError, match=r'"example/x".*missing dot'):
        modpath.check_path("example/x")
    with pytest.raises(ModulePathError, match=r'"Example.com/x".*first path element'):
        modpath.check_path("Example.com/x")
    with pytest.raises(ModulePathError, match=r"leading dot"):
        modpath.check_path("x.y/.git")
    with pytest.raises(ModulePathError, match=r"trailing dot"):
        modpath.check_path("x.y/z.")
    with pytest.raises(ModulePathError, match=r"\\u0007"):  # quoted, never a raw control char
        modpath.check_path("x.y/\x07")


# (path, version, ok), from module_test.go checkTests, plus the stricter +incompatible rules.
CHECK = [
    ("rsc.io/quote", "0.1.0", False),
    ("rsc io/quote", "v1.0.0", False),
    ("github.com/go-yaml/yaml", "v0.8.0", True),
    ("github.com/go-yaml/yaml", "v1.0.0", True),
    ("github.com/go-yaml/yaml", "v2.0.0", False),
    ("github.com/go-yaml/yaml", "v2.1.5", False),
    ("github.com/go-yaml/yaml", "v3.0.0", False),
    ("github.com/go-yaml/yaml/v2", "v1.0.0", False),
    ("github.com/go-yaml/yaml/v2", "v2.0.0", True),
    ("github.com/go-yaml/yaml/v2", "v2.1.5", True),
    ("github.com/go-yaml/yaml/v2", "v3.0.0", False),
    ("gopkg.in/yaml.v0", "v0.8.0", True),
    ("gopkg.in/yaml.v0", "v1.0.0", False),
    ("gopkg.in/yaml.v0", "v2.0.0", False),
    ("gopkg.in/yaml.v0", "v2.1.5", False),
    ("gopkg.in/yaml.v0", "v3.0.0", False),
    ("gopkg.in/yaml.v1", "v0.8.0", False),
    ("gopkg.in/yaml.v1", "v1.0.0", True),
    ("gopkg.in/yaml.v1", "v2.0.0", False),
    ("gopkg.in/yaml.v1", "v2.1.5", False),
    ("gopkg.in/yaml.v1", "v3.0.0", False),
    ("gopkg.in/check.v1", "v0.0.0", False),
    ("gopkg.in/check.v1", "v0.0.0-20160102150405-abcdef123456", True),
    ("gopkg.in/yaml.v2", "v1.0.0", False),
    ("gopkg.in/yaml.v2", "v2.0.0", True),
    ("gopkg.in/yaml.v2", "v2.1.5", True),
    ("gopkg.in/yaml.v2", "v3.0.0", False),
    ("gopkg.in/yaml.v1-unstable", "v1.0.0", True),
    ("rsc.io/quote", "v17.0.0", False),
    ("rsc.io/quote", "v17.0.0+incompatible", True),
    # Canonical forms only.
    ("rsc.io/quote", "v1.5", False),
    ("rsc.io/quote", "v1", False),
    ("rsc.io/quote", "v1.5.2+meta", False),
    ("rsc.io/quote", "v1.5.2-pre.1", True),
    ("rsc.io/quote", "", False),
    ("rsc.io/quote", "latest", False),
    ("rsc.io/quote", "v0.0.0-20180517173623-c4d4236f9242", True),
    ("rsc.io/quote", "v1.5.3-0.20180517173623-c4d4236f9242", True),
    # +incompatible only for v2+ on a path without a major version suffix, and not gopkg.in.
    ("rsc.io/quote", "v1.0.0+incompatible", False),
    ("rsc.io/quote", "v0.1.0+incompatible", False),
    ("rsc.io/quote/v2", "v2.0.0+incompatible", False),
    ("gopkg.in/yaml.v2", "v2.0.0+incompatible", False),
    ("github.com/docker/docker", "v20.10.7+incompatible", True),
    ("github.com/docker/docker", "v2.0.1-0.20191109021931-daa7c04131f5+incompatible", True),
    ("rsc.io/quote", "v2.0.0+incompatible.1", False),
]


@pytest.mark.parametrize("path,version,ok", CHECK)
def test_check_version(path, version, ok):
    if ok:
        modpath.check_version(path, version)
    else:
        with pytest.raises(ModulePathError):
            modpath.check_version(path, version)


def test_check_version_message():
    with pytest.raises(ModulePathError, match=r'rsc\.io/quote@"v2\.0\.0": invalid version: should be v0 or v1, not v2'):
        modpath.check_version("rsc.io/quote", "v2.0.0")
    with pytest.raises(ModulePathError, match=r'canonical form "v1\.5\.0"'):
        modpath.check_version("rsc.io/quote", "v1.5")


@pytest.mark.parametrize(
    "v,major,ok",
    [
        ("v0.0.0", "", True),
        ("v0.0.0", "/v2", False),
        ("v0.0.0", ".v0", True),
        ("v0.0.0-20190510104115-cbcb75029529", ".v1", True),
        ("v1.0.0", "/v2", False),
        ("v1.0.0", ".v1", True),
        ("v1.0.0", ".v1-unstable", True),
        ("v2.0.0+incompatible", "", True),
        ("v2.0.0", "", False),
        ("v2.0.0", "/v2", True),
        ("v2.0.0", ".v2", True),
    ],
)
def test_check_path_major(v, major, ok):
    assert (modpath.check_path_major(v, major) is None) is ok


def test_canonical_version():
    assert modpath.canonical_version("v2.0.0+incompatible") == "v2.0.0+incompatible"
    assert modpath.canonical_version("v2.0+incompatible") == ""
    assert modpath.canonical_version("v1.2") == "v1.2.0"
    assert modpath.canonical_version("v1.2.3+meta") == "v1.2.3"
    assert modpath.canonical_version("junk") == ""


# --- escaping ----------------------------------------------------------------------------------------

ESCAPES = [
    ("ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789", "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789"),
    ("github.com/GoogleCloudPlatform/omega", "github.com/!google!cloud!platform/omega"),
    ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
    ("github.com/Azure/azure-sdk-for-go", "github.com/!azure/azure-sdk-for-go"),
    ("github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus"),
]


@pytest.mark.parametrize("path,esc", ESCAPES)
def test_escape_path_round_trip(path, esc):
    assert modpath.escape_path(path) == esc
    assert modpath.unescape_path(esc) == path


@pytest.mark.parametrize("path", [p for p, ok, _, _ in CHECK_PATH if not ok])
def test_escape_and_unescape_reject_invalid_paths(path):
    with pytest.raises(ModulePathError):
        modpath.escape_path(path)
    with pytest.raises(ModulePathError):
        modpath.unescape_path(path)


@pytest.mark.parametrize(
    "bad",
    [
        "github.com/GoogleCloudPlatform/omega",  # upper case in an escaped form
        "github.com/!google!cloud!platform!/omega",
        "github.com/!0google!cloud!platform/omega",
        "github.com/!_google!cloud!platform/omega",
        "github.com/!!google!cloud!platform/omega",
        "github.com/!x!",  # trailing '!'
        "github.com/!",
        "github.com/!X",
        "github.com/é",
        "",
    ],
)
def test_unescape_path_bad(bad):
    with pytest.raises(ModulePathError):
        modpath.unescape_path(bad)


def test_unescape_path_of_escaped_form_must_be_valid():
    # '!x' decodes to 'X', a valid element outside the first one.
    assert modpath.unescape_path("github.com/!x") == "github.com/X"
    # ... but the first element must be lower case.
    with pytest.raises(ModulePathError):
        modpath.unescape_path("!github.com/x")


@pytest.mark.parametrize(
    "v,esc",
    [
        ("v1.2.3", "v1.2.3"),
        ("v1.2.3-RC1", "v1.2.3-!r!c1"),
        ("v0.0.0-20191109021931-DAA7c04131f5", "v0.0.0-20191109021931-!d!a!a7c04131f5"),
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
        ("master", "master"),
    ],
)
def test_escape_version_round_trip(v, esc):
    assert modpath.escape_version(v) == esc
    assert modpath.unescape_version(esc) == v


@pytest.mark.parametrize("v", ["", "v1!", "a/b", "..", ".", "v1.", "v1\x00", "v1:2", "vé", "v1\\2", "v1*"])
def test_escape_version_bad(v):
    with pytest.raises(ModulePathError):
        modpath.escape_version(v)


@pytest.mark.parametrize("esc", ["v1.2.3-RC1", "v1!", "v1!!a", "v!1", "..", "a/b", "vé", ""])
def test_unescape_version_bad(esc):
    with pytest.raises(ModulePathError):
        modpath.unescape_version(esc)


# --- ModuleVersion, parse_module_version -------------------------------------------------------------


def test_module_version_record():
    mv = ModuleVersion("golang.org/x/text", "v0.3.0")
    assert str(mv) == "golang.org/x/text@v0.3.0"
    assert mv == ModuleVersion("golang.org/x/text", "v0.3.0")
    assert sorted([ModuleVersion("b.c/x", "v1.0.0"), ModuleVersion("a.b/x", "v2.0.0+incompatible")])[0].path == "a.b/x"
    with pytest.raises(AttributeError):
        mv.path = "x"  # frozen
    assert len({mv, ModuleVersion("golang.org/x/text", "v0.3.0")}) == 1


def test_parse_module_version():
    assert modpath.parse_module_version("github.com/BurntSushi/toml@v1.2.1") == ModuleVersion(
        "github.com/BurntSushi/toml", "v1.2.1"
    )
    assert modpath.parse_module_version("rsc.io/quote/v3@v3.1.0").version == "v3.1.0"


@pytest.mark.parametrize(
    "text,match",
    [
        ("golang.org/x/text", "want module@version"),
        ("@v1.0.0", "missing module path"),
        ("golang.org/x/text@", "missing version"),
        ("golang.org/x/text@latest", "not a semantic version"),
        ("golang.org/x/text@v0.3", "not a canonical"),
        ("golang.org/x/text@v0.3.0@v0.4.0", "invalid"),
        ("../../etc@v1.0.0", "malformed module path"),
        ("rsc.io/quote@v2.0.0", "should be v0 or v1"),
        (" golang.org/x/text@v0.3.0", "malformed module path"),
    ],
)
def test_parse_module_version_errors(text, match):
    with pytest.raises(ModulePathError, match=match):
        modpath.parse_module_version(text)


# --- proxy file names --------------------------------------------------------------------------------


def test_proxy_file():
    mv = ModuleVersion("github.com/BurntSushi/toml", "v1.2.1")
    assert modpath.proxy_file(mv, "info") == "github.com/!burnt!sushi/toml/@v/v1.2.1.info"
    assert modpath.proxy_file(mv, "mod") == "github.com/!burnt!sushi/toml/@v/v1.2.1.mod"
    assert modpath.proxy_file(mv, "zip") == "github.com/!burnt!sushi/toml/@v/v1.2.1.zip"
    pseudo = ModuleVersion("example.com/m", "v0.0.0-20191109021931-DAA7c04131f5")
    assert modpath.proxy_file(pseudo, "mod") == "example.com/m/@v/v0.0.0-20191109021931-!d!a!a7c04131f5.mod"
    assert modpath.list_file("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml/@v/list"


@pytest.mark.parametrize("ext", ["", "list", "zip/../x", "ZIP", "info\n"])
def test_proxy_file_bad_ext(ext):
    with pytest.raises(ModulePathError):
        modpath.proxy_file(ModuleVersion("example.com/m", "v1.0.0"), ext)


@pytest.mark.parametrize(
    "mv",
    [
        ModuleVersion("example.com/../../etc", "v1.0.0"),
        ModuleVersion("/etc/passwd", "v1.0.0"),
        ModuleVersion("example.com\\..\\x", "v1.0.0"),
        ModuleVersion("example.com/m", "../../v1.0.0"),
        ModuleVersion("example.com/m", "v1.0.0/../../x"),
        ModuleVersion("example.com/m", "v1.0.0\n"),
        ModuleVersion("example.com/m", "latest"),  # a query, not a module version
        ModuleVersion("example.com/m\x00", "v1.0.0"),
    ],
)
def test_proxy_file_rejects_unsafe(mv):
    with pytest.raises(ModulePathError):
        modpath.proxy_file(mv, "zip")


@pytest.mark.parametrize("path", ["example.com/../x", "..", "/abs.com/x", "x.y/z\\w", "C:/x.y", ""])
def test_list_file_rejects_unsafe(path):
    with pytest.raises(ModulePathError):
        modpath.list_file(path)


@pytest.mark.parametrize(
    "rel", ["", "/abs", "a/../b", "a/./b", "a//b", "a\\b", "C:x", "a/b\x00", "a/\x7f", "a/é", "..", "a/"]
)
def test_defensive_relative_check(rel):
    # The last line of defence, exercised directly since validation already stops all of these.
    with pytest.raises(ModulePathError):
        modpath._check_relative(rel)
    assert modpath._check_relative("a.b/c/@v/v1.0.0.zip") == "a.b/c/@v/v1.0.0.zip"


def test_quote_is_ascii():
    assert modpath.quote("a\x07\udcff☺") == '"a\\u0007\\udcff\\u263a"'


@pytest.mark.parametrize("ext", ["info", "mod", "zip"])
def test_parse_proxy_file_inverts_proxy_file(ext):
    mv = ModuleVersion("example.com/BigCorp/Util", "v1.2.0-RC.1")
    assert parse_proxy_file(proxy_file(mv, ext)) == (mv, ext)


@pytest.mark.parametrize("rel", ["example.com/a/@v/list", "sumdb/x/lookup/a@v1.0.0", "example.com/a/@v/v1.0.0.txt", "a/b"])
def test_parse_proxy_file_other_paths(rel):
    assert parse_proxy_file(rel) is None


def test_parse_proxy_file_rejects_bad_versions():
    with pytest.raises(ModulePathError):
        parse_proxy_file("example.com/a/@v/v1.zip")
