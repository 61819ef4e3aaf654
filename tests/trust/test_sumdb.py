import pytest

from airsync.errors import ConfigError
from airsync.goproxy.modpath import ModuleVersion
from airsync.trust import sumdb

H1 = "h1:" + "A" * 43 + "="
H2 = "h1:" + "B" * 42 + "E="


def test_default_names_map_to_the_default_key():
    db = sumdb.parse_gosumdb("sum.golang.org")
    assert db == sumdb.SumDB("sum.golang.org", sumdb.SUM_GOLANG_ORG, None)
    assert db.dir() == "sumdb/sum.golang.org"
    cn = sumdb.parse_gosumdb("sum.golang.google.cn")
    assert cn.name == "sum.golang.org" and cn.url == "https://sum.golang.google.cn"


def test_key_and_url_forms_and_off():
    assert sumdb.parse_gosumdb("off") is None
    db = sumdb.parse_gosumdb(f"{sumdb.SUM_GOLANG_ORG} https://db.example/")
    assert db.url == "https://db.example" and db.vkey == sumdb.SUM_GOLANG_ORG


@pytest.mark.parametrize(
    "value,match",
    [
        ("", "bad checksum database"),
        ("a b c", "bad checksum database"),
        ("example.com", "not a known database"),
        ("sum.golang.org+033de0ae+AAAA", "bad checksum database key"),
        ("sum.golang.org+deadbeef+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8", "bad checksum database key"),
        (f"{sumdb.SUM_GOLANG_ORG} ftp://x", "bad checksum database URL"),
    ],
)
def test_bad_values_are_config_errors(value, match):
    with pytest.raises(ConfigError, match=match):
        sumdb.parse_gosumdb(value)


@pytest.mark.parametrize(
    "patterns,path,hit",
    [
        ("example.com", "example.com/a/b", True),
        ("example.com/a", "example.com/a/b", True),
        ("example.com/a", "example.com/ab", False),
        ("*.corp.example", "git.corp.example/x", True),
        ("*.corp.example", "corp.example/x", False),
        ("example.com/*/internal", "example.com/team/internal/x", True),
        ("example.com/*/internal", "example.com/team", False),
        ("a.com,,b.com/", "b.com/x", True),
        ("exa?ple.com", "example.com", True),
        ("[^x]xample.com", "example.com", True),
        ("", "example.com", False),
    ],
)
def test_private_patterns_like_go(patterns, path, hit):
    assert sumdb.matches_patterns(patterns, path) is hit


def test_lookup_path_is_escaped():
    assert sumdb.lookup_path(ModuleVersion("example.com/BigCorp/Util", "v1.2.0-RC")) == (
        "lookup/example.com/!big!corp/!util@v1.2.0-!r!c"
    )


def test_record_hashes():
    mv = ModuleVersion("example.com/a", "v1.0.0")
    text = f"example.com/a v1.0.0 {H1}\nexample.com/a v1.0.0/go.mod {H2}\n".encode()
    assert sumdb.record_hashes(text, mv) == sumdb.RecordHashes(H1, H2)


@pytest.mark.parametrize(
    "text",
    [
        f"example.com/a v1.0.0 {H1}\n",  # no go.mod line
        f"example.com/a v1.0.1 {H1}\nexample.com/a v1.0.1/go.mod {H2}\n",  # another version
        f"example.com/a v1.0.0 {H1}\nexample.com/a v1.0.0/go.mod {H2}\nexample.com/b v1.0.0 {H1}\n",  # extra
        f"example.com/a v1.0.0 x1:abc\nexample.com/a v1.0.0/go.mod {H2}\n",  # not h1
    ],
)
def test_bad_records(text):
    with pytest.raises(sumdb.RecordError, match="example.com/a@v1.0.0"):
        sumdb.record_hashes(text.encode(), ModuleVersion("example.com/a", "v1.0.0"))
