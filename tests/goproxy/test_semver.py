"""Tests for airsync.semver, mostly golang.org/x/mod/semver's own cases."""

from __future__ import annotations

import functools
import random

import pytest

from airsync.goproxy import semver

# (input, canonical form or '' if invalid), from semver_test.go.
CASES = [
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2+meta", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
]

# Sorted by precedence; neighbours in one inner list compare equal.
ORDERED = [
    ["bad", "v1+meta", "v1.2-pre"],  # invalid: lowest, all equal
    ["v1.0.0-alpha"],
    ["v1.0.0-alpha.1"],
    ["v1.0.0-alpha.beta"],
    ["v1.0.0-beta"],
    ["v1.0.0-beta.2"],
    ["v1.0.0-beta.11"],
    ["v1.0.0-rc.1"],
    ["v1", "v1.0", "v1.0.0"],
    ["v1.2", "v1.2.0"],
    ["v1.2.3-456"],
    ["v1.2.3-456.789"],
    ["v1.2.3-456-789"],
    ["v1.2.3-456a"],
    ["v1.2.3-pre", "v1.2.3-pre+meta"],
    ["v1.2.3-pre.1"],
    ["v1.2.3-zzz"],
    ["v1.2.3", "v1.2.3+meta", "v1.2.3+meta-pre", "v1.2.3+meta-pre.sha.256a"],
    ["v1.10.0"],
    ["v2.0.0-0.20200101000000-abcdefabcdef"],
    ["v2.0.0"],
    ["v10.0.0"],
]


@pytest.mark.parametrize("v,want", CASES)
def test_is_valid_and_canonical(v, want):
    assert semver.is_valid(v) == (want != "")
    assert semver.canonical(v) == want


@pytest.mark.parametrize(
    "v",
    [
        "",
        "1.2.3",
        "V1.2.3",
        "v01.2.3",
        "v1.02.3",
        "v1.2.03",
        "v1.2.3-01",  # numeric prerelease identifier with a leading zero
        "v1.2.3-",
        "v1.2.3-a..b",
        "v1.2.3+",
        "v1.2.3+a..b",
        "v1.2.3+a+b",
        "v1.2.3-a_b",
        "v1.2.3.4",
        "v1.2.3 ",
        "v1.2.3\n",
        "v\u0661.2.3",  # Arabic-Indic digit one: not an ASCII digit
        "v1.2.3-\u0661",
    ],
)
def test_invalid(v):
    assert not semver.is_valid(v)
    assert semver.canonical(v) == ""
    assert semver.major(v) == ""
    assert semver.prerelease(v) == ""
    assert semver.build(v) == ""


def test_leading_zero_allowed_in_alphanumeric_prerelease():
    assert semver.is_valid("v1.2.3-0a")
    assert semver.is_valid("v1.2.3-0")
    assert semver.is_valid("v0.0.0")


def test_parts():
    assert semver.major("v2.1.0") == "v2"
    assert semver.major("v2") == "v2"
    assert semver.major_minor("v2.1.0") == "v2.1"
    assert semver.major_minor("v2") == "v2.0"
    assert semver.prerelease("v2.1.0-pre+meta") == "-pre"
    assert semver.build("v2.1.0-pre+meta") == "+meta"
    assert semver.build("v2.0.0+incompatible") == "+incompatible"
    assert semver.prerelease("v2.1.0") == ""


def test_canonical_drops_incompatible():
    # Go's semver.Canonical drops all build metadata; modpath.canonical_version keeps +incompatible.
    assert semver.canonical("v2.0.0+incompatible") == "v2.0.0"


def _flat():
    return [(rank, v) for rank, group in enumerate(ORDERED) for v in group]


def test_compare_matrix():
    flat = _flat()
    for ri, a in flat:
        for rj, b in flat:
            want = (ri > rj) - (ri < rj)
            assert semver.compare(a, b) == want, (a, b)


def test_spec_examples():
    chain = [
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
    ]
    for a, b in zip(chain, chain[1:]):
        assert semver.compare(a, b) == -1
        assert semver.compare(b, a) == 1


def test_numeric_identifiers_compare_numerically():
    assert semver.compare("v1.0.0-2", "v1.0.0-10") == -1
    assert semver.compare("v1.0.0-beta.9", "v1.0.0-beta.10") == -1
    assert semver.compare("v1.0.0-99", "v1.0.0-a") == -1  # numeric before alphanumeric
    assert semver.compare("v1.9.0", "v1.10.0") == -1
    assert semver.compare("v99999999999999999999.0.0", "v100000000000000000000.0.0") == -1


def test_sort_key_matches_compare():
    flat = [v for _, v in _flat()]
    shuffled = flat[:]
    random.Random(1).shuffle(shuffled)
    got = sorted(shuffled, key=semver.sort_key)
    for a, b in zip(got, got[1:]):
        assert semver.compare(a, b) <= 0
    # Same answer as sorting with compare() plus Go's string tie-break.
    def go_cmp(a, b):
        return semver.compare(a, b) or (a > b) - (a < b)

    assert got == sorted(shuffled, key=functools.cmp_to_key(go_cmp))


def test_sort_key_is_deterministic_for_ties():
    assert sorted(["v1.0.0+b", "v1.0.0", "v1.0.0+a"], key=semver.sort_key) == ["v1.0.0", "v1.0.0+a", "v1.0.0+b"]


@pytest.mark.parametrize(
    "v,want",
    [
        ("v0.0.0-20191109021931-daa7c04131f5", True),
        ("v1.2.4-0.20191109021931-daa7c04131f5", True),
        ("v1.2.3-pre.0.20191109021931-daa7c04131f5", True),
        ("v2.0.1-0.20191109021931-daa7c04131f5+incompatible", True),
        ("v1.2.3-pre.0.20191109021931-daa7c04131f5+incompatible", True),
        ("v1.0.0", False),
        ("v1.0.0-pre", False),
        ("v0.0.0-2019110902193-daa7c04131f5", False),  # 13-digit timestamp
        ("v0.0.0-20191109021931", False),
        ("v1.2.4-1.20191109021931-daa7c04131f5", False),
        ("v1.2.3-20191109021931-daa7c04131f5", False),  # only vX.0.0 may omit the '0.' form
        ("v0.0.0-20191109021931-daa7c04131f5\n", False),
        ("v0.0.0-\u0662\u0660191109021931-daa7c04131f5", False),
    ],
)
def test_is_pseudo(v, want):
    assert semver.is_pseudo(v) is want
