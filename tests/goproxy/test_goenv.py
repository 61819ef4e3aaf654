"""goproxy.goenv: the user's Go environment, and credentials as cmd/go/internal/auth keeps them."""

from __future__ import annotations

import base64

import pytest

from airsync.goproxy.goenv import (
    Credentials, clean_goproxy, from_environ, host_matches, parse_auth_output, parse_goauth, parse_netrc,
)


def test_goproxy_keeps_proxies_and_drops_direct_and_off_with_a_note():
    assert clean_goproxy("https://a.example,direct") == ("https://a.example", [
        "GOPROXY=https://a.example,direct: direct skipped (airsync fetches from module proxies only, never from VCS hosts)"])
    assert clean_goproxy("https://a.example|https://b.example,off")[0] == "https://a.example|https://b.example"
    assert clean_goproxy("direct")[0] is None
    env = from_environ({"GOPROXY": "off", "GONOSUMDB": "", "GOPRIVATE": "*.corp", "GOSUMDB": "off"}, "/home/u")
    assert env.goproxy is None and env.notes[-1].startswith("GOPROXY=off names no module proxy")
    assert env.private == "*.corp" and env.gosumdb == "off" and env.goauth == "netrc" and env.netrc == "/home/u/.netrc"
    assert from_environ({}, None) == from_environ({"GOPROXY": " "}, None)


def test_netrc_is_read_as_the_go_command_reads_it():
    text = ("machine a.example login alice password s3cret\n"
            "machine b.example\n  login bob\n  password pw\n"
            "macdef init\nmachine evil.example login x password y\n\n"
            "machine c.example login carol password c\n"
            "default\nmachine after.default login z password z\n")
    assert parse_netrc(text) == [("a.example", "alice", "s3cret"), ("b.example", "bob", "pw"),
                                 ("c.example", "carol", "c")]
    # Only a line ending in "default" stops the reader (cmd/go's loop), not one that goes on.
    assert parse_netrc("default login anon password anon\nmachine m login l password p\n") == [("m", "l", "p")]


def test_goauth_commands_and_their_output():
    assert parse_goauth("netrc;my-helper --flag") == [("netrc",), ("command", "my-helper", "--flag")]
    assert parse_goauth("git /src/repo") == [("git", "/src/repo")]
    for bad in ("off;netrc", "git relative", "netrc;;x"):
        with pytest.raises(ValueError):
            parse_goauth(bad)
    out = parse_auth_output("https://a.example\nhttps://b.example/api/\n\nAuthorization: Bearer t\n\n"
                            "https://c.example/\n\nX-Token: 1\nX-Other: 2\n\n")
    assert out == {"a.example": [("Authorization", "Bearer t")], "b.example/api": [("Authorization", "Bearer t")],
                   "c.example": [("X-Token", "1"), ("X-Other", "2")]}
    for bad in ("http://plain.example\n\nA: b\n\n", "https://a.example\n\nnot a header\n\n", "https://a.example\n"):
        with pytest.raises(ValueError):
            parse_auth_output(bad)


def test_credentials_go_to_the_longest_prefix_and_never_show():
    creds = Credentials()
    creds.add_netrc([("a.example", "alice", "one"), ("a.example", "later", "ignored"), ("127.0.0.1:8443", "u", "p")])
    creds.add({"a.example/team": [("Authorization", "Bearer team")]})
    basic = "Basic " + base64.b64encode(b"alice:one").decode()
    assert creds.headers_for("https://a.example/other/@v/list") == [("Authorization", basic)]
    assert creds.headers_for("https://a.example/team/x/@v/list") == [("Authorization", "Bearer team")]
    assert creds.headers_for("https://127.0.0.1:8443/m/@v/list")[0][1].startswith("Basic ")
    assert creds.headers_for("https://127.0.0.1/m/@v/list") == []  # the port is part of the name
    assert creds.headers_for("https://b.example/") == []
    assert "alice" not in repr(creds) and "one" not in repr(creds) and "team" not in repr(creds)


def test_goinsecure_matches_hosts_and_path_prefixes():
    assert host_matches("*.corp.example,127.0.0.1:8080", "http://proxy.corp.example/go/m/@v/list")
    assert host_matches("127.0.0.1:8080", "http://127.0.0.1:8080/m/@v/list")
    assert not host_matches("127.0.0.1:8080", "http://127.0.0.1:9090/m/@v/list")
    assert host_matches("127.0.0.1", "http://user:pw@127.0.0.1:9090/m/@v/list")  # any port of that host
    assert host_matches("git.example/team", "https://git.example/team/x")
    assert not host_matches("git.example/team", "https://git.example/other/x") and not host_matches("", "https://a/")
