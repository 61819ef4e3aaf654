"""goproxy.query: version queries answered as the go command answers them from a proxy."""

from __future__ import annotations

import pytest

from airsync.goproxy.query import (
    Answer, NeedFile, QueryError, is_query, latest_from_list, latest_of_list, list_versions, resolve,
)

P = "example.com/m"
PLAIN = b"module example.com/m\n\ngo 1.21\n"


def ask(q, listing, mods=None, latest=None, **kw):
    """Answer like the resolver does: hand over each file resolve asks for, from ``mods``/``latest``."""
    mods = dict(mods or {})
    given: dict[str, bytes] = {}
    got_latest = None
    for _ in range(20):
        try:
            return resolve(P, q, listing, given, got_latest, **kw)
        except NeedFile as need:
            if need.what == "latest":
                got_latest = latest if latest is not None else b""
            else:
                given[need.version] = mods.get(need.version, PLAIN)
    raise AssertionError("did not settle")


def test_what_is_a_query():
    assert not is_query("v1.2.3") and not is_query("v2.0.0+incompatible") and not is_query("v0.0.0-20230102150405-abcdef123456")
    for q in ("latest", "upgrade", "patch", "v1", "v1.2", "<v1.3.0", ">=v1.2.0", "v1.2.3+meta", "master"):
        assert is_query(q), q


def test_list_is_read_like_the_proxy_repo():
    text = "v1.1.0\nv1.0.0 2023-01-01T00:00:00Z\nv0.0.0-20230102150405-abcdef123456\nnot-a-version\n\nv1.0.0\n"
    assert list_versions(text) == ["v1.0.0", "v1.1.0"]
    assert list_versions(text, "v1.1") == ["v1.1.0"]


def test_latest_prefers_releases_then_prereleases():
    assert ask("latest", "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n") == Answer("v1.1.0", "v1.1.0")
    assert ask("latest", "v1.2.0-rc.1\nv1.2.0-beta.1\n").version == "v1.2.0-rc.1"
    assert ask("upgrade", "v1.0.0\nv1.1.0\n").version == "v1.1.0"  # nothing required yet: latest


def test_prefix_and_comparison_queries():
    listing = "v1.0.0\nv1.0.1\nv1.1.0\nv1.2.0-pre\nv2.0.0+incompatible\n"
    assert ask("v1.0", listing).version == "v1.0.1"
    assert ask("v1", listing).version == "v1.1.0"
    assert ask("<v1.1.0", listing).version == "v1.0.1"
    assert ask(">=v1.0.1", listing).version == "v1.0.1"  # the lowest that matches
    assert ask(">v1.0.0", listing).version == "v1.0.1"
    assert ask("v1.1.0+build", listing).version == "v1.1.0"
    with pytest.raises(QueryError, match="ambiguous"):
        ask("<=v1.2", listing)
    with pytest.raises(QueryError, match="not a version or version query"):
        ask("master", listing)
    with pytest.raises(QueryError, match="no existing version"):
        ask("patch", listing)
    with pytest.raises(QueryError, match="no matching versions"):
        ask("v3", listing)


def test_retracted_versions_are_skipped_and_named_when_nothing_is_left():
    retracting = b"module example.com/m\n\nretract [v1.1.0, v1.2.0] // broken\n"
    listing = "v1.0.0\nv1.1.0\nv1.2.0\n"
    assert ask("latest", listing, {"v1.2.0": retracting}) == Answer("v1.0.0", "v1.2.0")
    with pytest.raises(QueryError, match="no matching versions"):
        ask("v1.1", listing, {"v1.2.0": retracting})
    everything = b"module example.com/m\n\nretract [v1.0.0, v1.2.0]\n"
    with pytest.raises(QueryError, match="every published version of example.com/m is retracted"):
        ask("latest", listing, {"v1.2.0": everything})


def test_deprecation_comes_from_the_latest_go_mod():
    mod = b"// Deprecated: use example.com/m/v2.\nmodule example.com/m\n"
    assert ask("latest", "v1.0.0\n", {"v1.0.0": mod}).deprecated == "use example.com/m/v2."


def test_an_empty_list_falls_back_to_at_latest():
    latest = b'{"Version":"v0.0.0-20230102150405-abcdef123456","Time":"2023-01-02T15:04:05Z"}'
    assert ask("latest", "", latest=latest).version == "v0.0.0-20230102150405-abcdef123456"
    assert ask("latest", None, latest=latest).version == "v0.0.0-20230102150405-abcdef123456"
    with pytest.raises(QueryError, match="module example.com/m not found upstream"):
        ask("latest", None, latest=b"")
    with pytest.raises(QueryError, match="no versions of example.com/m are published"):
        ask("latest", "", latest=b"")
    with pytest.raises(QueryError):
        ask("v1", "", latest=latest)  # only latest and upgrade may use @latest
    # No @latest either: the newest pseudo-version of the list (modfetch's latestFromList).
    pseudos = "v0.0.0-20230102150405-abcdef123456\nv0.0.0-20240102150405-bcdef1234567\nv1.0.1-0.20220102150405-cdef12345678\n"
    assert ask("latest", pseudos, latest=b"").version == "v0.0.0-20240102150405-bcdef1234567"
    timed = "v0.0.0-20240102150405-bcdef1234567\nv0.0.0-20200102150405-cdef12345678 2025-01-01T00:00:00Z\nv1.0.0\n"
    assert latest_from_list(timed) == "v0.0.0-20200102150405-cdef12345678"  # the proxy's time wins
    assert latest_of_list(timed) == "v1.0.0" and latest_of_list(pseudos) == "v0.0.0-20240102150405-bcdef1234567"


def test_incompatible_majors_count_only_without_a_real_go_mod():
    listing = "v1.0.0\nv2.0.0+incompatible\nv3.1.0+incompatible\n"
    # v1.0.0 has a go.mod of its own: the +incompatible tags are leftovers (golang.org/issue/34165).
    assert ask("latest", listing, {"v1.0.0": PLAIN}).version == "v1.0.0"
    # Without one (the proxy synthesized it), the module never adopted modules: the tags count.
    assert ask("latest", listing, {"v1.0.0": b"module example.com/m\n"}).version == "v3.1.0+incompatible"
    assert ask("v2", listing, {"v1.0.0": PLAIN}).version == "v2.0.0+incompatible"  # asked for by name
