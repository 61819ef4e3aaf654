"""Tests for airsync.upstream: GOPROXY list parsing with the go command's fallback rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from airsync.errors import ConfigError
from airsync.goproxy.upstream import DEFAULT_GOPROXY, Upstream, file_url, parse_goproxy


def urls(value: str) -> list[tuple[str, bool]]:
    return [(u.url, u.next_on_any_error) for u in parse_goproxy(value)]


def test_default():
    assert DEFAULT_GOPROXY == "https://proxy.golang.org"
    assert parse_goproxy(DEFAULT_GOPROXY) == [Upstream("https://proxy.golang.org", False)]


def test_comma_vs_pipe():
    assert urls("https://a.example,https://b.example|https://c.example,https://d.example") == [
        ("https://a.example", False),  # followed by ',': next only on 404/410
        ("https://b.example", True),  # followed by '|': next on any error
        ("https://c.example", False),
        ("https://d.example", False),  # last
    ]


def test_last_entry_never_falls_through():
    assert urls("https://a.example|") == [("https://a.example", False)]
    assert urls("https://a.example|https://b.example|") == [
        ("https://a.example", True),
        ("https://b.example", False),
    ]


def test_separator_right_after_entry_counts():
    # cmd/go: "a|,b" gives a the '|'; the empty entry in between is skipped.
    assert urls("https://a.example|,https://b.example") == [("https://a.example", True), ("https://b.example", False)]
    assert urls("https://a.example,|https://b.example") == [("https://a.example", False), ("https://b.example", False)]


def test_spaces_and_empty_entries():
    assert urls("  https://a.example/ , ,, | https://b.example  ") == [
        ("https://a.example", False),
        ("https://b.example", False),
    ]


def test_trailing_slashes_stripped():
    assert urls("https://a.example/go/proxy///") == [("https://a.example/go/proxy", False)]
    assert urls("file:///srv/goproxy/") == [("file:///srv/goproxy", False)]


def test_falls_through():
    comma, pipe = parse_goproxy("https://a.example,https://b.example|https://c.example")[:2]
    assert comma.falls_through(not_found=True)
    assert not comma.falls_through(not_found=False)
    assert pipe.falls_through(not_found=True)
    assert pipe.falls_through(not_found=False)


@pytest.mark.parametrize("value", ["", "   ", ",", " , | ,", "|"])
def test_empty_list(value):
    with pytest.raises(ConfigError, match="empty"):
        parse_goproxy(value)


@pytest.mark.parametrize(
    "value",
    [
        "direct",
        "off",
        "https://proxy.golang.org,direct",
        "https://proxy.golang.org|off",
        "direct,https://proxy.golang.org",
        " DIRECT ",
    ],
)
def test_direct_and_off_rejected(value):
    with pytest.raises(ConfigError) as info:
        parse_goproxy(value)
    message = str(info.value)
    assert "only from module proxies" in message
    assert "VCS" in message


def test_http_and_https_kept():
    assert urls("http://10.0.0.1:8080/goproxy") == [("http://10.0.0.1:8080/goproxy", False)]
    assert urls("HTTPS://Proxy.Example/x") == [("https://Proxy.Example/x", False)]


def test_scheme_less_host_means_https_like_go():
    assert urls("goproxy.example.com") == [("https://goproxy.example.com", False)]
    assert urls("localhost:3000/p,proxy.example") == [
        ("https://localhost:3000/p", False),
        ("https://proxy.example", False),
    ]


@pytest.mark.parametrize("value", ["ftp://mirror.example/go", "git+ssh://host/x", "s3://bucket/go", "ftp:x", "mailto:a@b.example"])
def test_other_schemes_rejected(value):
    with pytest.raises(ConfigError, match="scheme"):
        parse_goproxy(value)


@pytest.mark.parametrize("value", ["proxy", "noproxy", "https", "mirror/dir"])
def test_single_words_rejected(value):
    with pytest.raises(ConfigError, match="not a URL"):
        parse_goproxy(value)


@pytest.mark.parametrize("value", ["/srv/goproxy", "./goproxy", "../x", "~/go/pkg/mod/cache/download", "C:\\goproxy", "c:/goproxy"])
def test_bare_paths_rejected_with_file_hint(value):
    with pytest.raises(ConfigError, match="file://") as info:
        parse_goproxy(value)
    assert "path" in str(info.value)


def test_bare_absolute_path_hint_is_exact():
    with pytest.raises(ConfigError, match="file:///srv/go%20proxy"):
        parse_goproxy("/srv/go proxy")


@pytest.mark.parametrize(
    "value",
    ["file://host/srv/x", "file://localhost/srv/x", "file://user@/srv/x", "file://:80/srv/x"],
)
def test_file_url_with_host_rejected(value):
    with pytest.raises(ConfigError, match="host"):
        parse_goproxy(value)


@pytest.mark.parametrize("value", ["file:///srv/x?y=1", "file:///srv/x#frag", "https://h/x?token=1", "https://h/#x"])
def test_query_and_fragment_rejected(value):
    with pytest.raises(ConfigError, match="query or fragment"):
        parse_goproxy(value)


@pytest.mark.parametrize("value", ["https://", "https:", "http:///path", "https://user:pw@/x"])
def test_http_without_host_rejected(value):
    with pytest.raises(ConfigError, match="no host"):
        parse_goproxy(value)


def test_bad_port_rejected():
    with pytest.raises(ConfigError):
        parse_goproxy("https://h:99999/x")
    with pytest.raises(ConfigError):
        parse_goproxy("https://h:abc/x")


def test_control_characters_rejected():
    # urlsplit would silently delete the tab and newline.
    for value in ("https://pro\txy.example", "https://a.example/\n", "file:///srv/x\x00y"):
        with pytest.raises(ConfigError, match="control"):
            parse_goproxy(value)


def test_bad_percent_escape_rejected():
    with pytest.raises(ConfigError, match="percent"):
        parse_goproxy("file:///srv/100%/x")
    with pytest.raises(ConfigError, match="NUL"):
        parse_goproxy("file:///srv/a%00b")


def test_file_urls():
    [u] = parse_goproxy("file:///srv/go%20proxy/caf%C3%A9")
    assert u.is_file
    assert u.url == "file:///srv/go%20proxy/caf%C3%A9"  # the URL stays encoded
    assert u.file_root == Path("/srv/go proxy/café")


def test_file_url_single_slash_and_root():
    assert urls("file:/srv/x") == [("file:///srv/x", False)]
    [root] = parse_goproxy("file:///")
    assert root.file_root == Path("/")
    # The normalized URL parses back to the same upstream.
    assert parse_goproxy(root.url) == [root]


def test_file_url_relative_rejected():
    with pytest.raises(ConfigError, match="absolute"):
        parse_goproxy("file:srv/x")


def test_http_is_not_file():
    [u] = parse_goproxy("https://proxy.golang.org")
    assert not u.is_file
    with pytest.raises(ValueError):
        u.file_root


def test_credentials_kept_but_not_shown():
    [u] = parse_goproxy("https://bob:s3cret@goproxy.corp.example/")
    assert u.url == "https://bob:s3cret@goproxy.corp.example"
    assert "s3cret" not in repr(u)
    assert "s3cret" not in u.redacted
    with pytest.raises(ConfigError) as info:
        parse_goproxy("https://bob:s3cret@goproxy.corp.example/?x")
    assert "s3cret" not in str(info.value)


def test_file_url_helper_round_trip(tmp_path):
    odd = tmp_path / "a b" / "café" / "100%"
    url = file_url(odd)
    assert url.startswith("file:///")
    assert " " not in url
    [u] = parse_goproxy(url)
    assert u.file_root == odd


def test_file_url_helper_shapes():
    assert file_url(Path("/srv/goproxy")) == "file:///srv/goproxy"
    assert file_url(Path("/srv/goproxy/")) == "file:///srv/goproxy"
    assert file_url(Path("/")) == "file://"


def test_file_url_helper_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [u] = parse_goproxy(file_url(Path("mirror")))
    assert u.file_root == tmp_path / "mirror"


def test_mixed_list():
    value = "file:///media/usb/goproxy|https://goproxy.corp.example/go/,https://proxy.golang.org"
    assert parse_goproxy(value) == [
        Upstream("file:///media/usb/goproxy", True),
        Upstream("https://goproxy.corp.example/go", False),
        Upstream("https://proxy.golang.org", False),
    ]
