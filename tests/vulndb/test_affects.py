"""Version ranges of OSV entries, decided as golang.org/x/vuln decides them."""

import pytest

from airsync.vulndb.affects import affects, canonical, contains, fixed_version


def test_canonical_prefixes():
    assert canonical("1.2.3") == canonical("v1.2.3") == canonical("go1.2.3") == "v1.2.3"


# Cases from golang.org/x/vuln internal/semver affects_test.go, re-stated.
RANGE = [("introduced", "0"), ("fixed", "1.18.6"), ("introduced", "1.19.0-0"), ("fixed", "1.19.1")]


@pytest.mark.parametrize(("version", "want"), [
    ("v1.0.0", True), ("v1.18.5", True), ("v1.18.6", False), ("v1.19.0-rc.1", True),
    ("v1.19.0", True), ("v1.19.1", False), ("v2.0.0", False),
    ("1.18.5", True),  # without the v
])
def test_contains(version, want):
    assert contains(RANGE, version) is want


def test_event_order_does_not_matter():
    assert contains(list(reversed(RANGE)), "v1.19.0") is True
    assert contains(list(reversed(RANGE)), "v1.18.7") is False


def test_introduced_later():
    r = [("introduced", "1.2.0"), ("fixed", "1.4.0")]
    assert not contains(r, "v1.1.9")
    assert contains(r, "v1.2.0") and contains(r, "v1.3.9")
    assert not contains(r, "v1.4.0")


def test_no_fix_and_no_ranges():
    assert contains([("introduced", "0")], "v99.0.0")
    assert affects([], "v1.0.0")  # no SEMVER range: every version
    assert contains([], "v1.0.0")


def test_pseudo_and_incompatible_versions():
    r = [("introduced", "0"), ("fixed", "0.0.0-20220906165146-f3363e06e74c")]
    assert contains(r, "v0.0.0-20220101000000-aaaaaaaaaaaa")
    assert not contains(r, "v0.0.0-20221001000000-aaaaaaaaaaaa")
    inc = [("introduced", "0"), ("fixed", "2.8.0+incompatible")]
    assert contains(inc, "v2.7.1+incompatible")
    assert not contains(inc, "v2.8.0+incompatible")


def test_any_range_counts():
    assert affects([[("introduced", "2.0.0")], [("introduced", "0"), ("fixed", "1.0.0")]], "v0.5.0")
    assert not affects([[("introduced", "2.0.0")], [("introduced", "0"), ("fixed", "1.0.0")]], "v1.5.0")


def test_fixed_version():
    assert fixed_version([RANGE]) == "1.19.1"
    assert fixed_version([[("introduced", "0")]]) == ""
    # fixed, then introduced again after the fix: no fix to upgrade to
    assert fixed_version([[("introduced", "0"), ("fixed", "1.0.0"), ("introduced", "1.1.0")]]) == ""
