"""Tests for airsync.retry: status classes, Retry-After parsing and backoff delays."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from airsync.errors import ConfigError
from airsync.fetch.retry import Outcome, RetryPolicy, classify_status, parse_retry_after

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None

# 2015-10-21 07:28:00 UTC
T0 = datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc).timestamp()


# --- classify_status ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 206])
def test_ok(status):
    assert classify_status(status) is Outcome.OK


@pytest.mark.parametrize("status", [404, 410])
def test_not_found(status):
    assert classify_status(status) is Outcome.NOT_FOUND


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 507, 520, 599])
def test_retry(status):
    assert classify_status(status) is Outcome.RETRY


@pytest.mark.parametrize(
    "status",
    [501, 505, 100, 201, 204, 301, 302, 304, 400, 401, 403, 405, 409, 416, 418, 426, 431, 451, 600, 0, -1],
)
def test_fail(status):
    assert classify_status(status) is Outcome.FAIL


def test_every_5xx_but_501_505_retries():
    for status in range(500, 600):
        expected = Outcome.FAIL if status in (501, 505) else Outcome.RETRY
        assert classify_status(status) is expected, status


def test_only_listed_4xx_retry():
    retrying = {s for s in range(400, 500) if classify_status(s) is Outcome.RETRY}
    assert retrying == {408, 425, 429}


# --- parse_retry_after --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [("0", 0.0), ("120", 120.0), (" 7 ", 7.0), ("007", 7.0), ("86400", 86400.0)],
)
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value, now=T0) == expected


def test_retry_after_seconds_ignore_now():
    assert parse_retry_after("30", now=0.0) == 30.0


def test_retry_after_huge_number():
    assert parse_retry_after("9" * 400, now=T0) == math.inf


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:30 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-15 07:28:30 GMT",  # obsolete RFC 850
        "Wed Oct 21 07:28:30 2015",  # obsolete asctime, implicitly GMT
    ],
)
def test_retry_after_date_forms(value):
    assert parse_retry_after(value, now=T0) == pytest.approx(30.0)


def test_retry_after_date_uses_now():
    value = "Wed, 21 Oct 2015 07:28:30 GMT"
    assert parse_retry_after(value, now=T0 + 10.5) == pytest.approx(19.5)


def test_retry_after_date_in_past_is_zero():
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=T0) == 0.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=T0) == 0.0


def test_retry_after_date_with_offset():
    # Same instant as 07:28:30 GMT, written in +0200.
    assert parse_retry_after("Wed, 21 Oct 2015 09:28:30 +0200", now=T0) == pytest.approx(30.0)


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "-5", "1.5", "+5", "5s", "1_000", "\u0661\u0662", "Wed, 99 Oct"]
)
def test_retry_after_garbage_is_none(value):
    assert parse_retry_after(value, now=T0) is None


# --- RetryPolicy --------------------------------------------------------------------------


def test_defaults():
    p = RetryPolicy()
    assert (p.attempts, p.base, p.cap, p.max_retry_after) == (8, 0.2, 20.0, 120.0)


def test_policy_is_frozen():
    with pytest.raises(AttributeError):
        RetryPolicy().attempts = 3  # type: ignore[misc]


def test_delay_rand_zero_is_zero():
    p = RetryPolicy()
    for attempt in (1, 2, 10, 100):
        assert p.delay(attempt, None, 0.0) == 0.0


def test_delay_exponential_ceiling():
    p = RetryPolicy(base=0.2, cap=20.0)
    assert p.delay(1, None, 1.0) == pytest.approx(0.2)
    assert p.delay(2, None, 1.0) == pytest.approx(0.4)
    assert p.delay(3, None, 1.0) == pytest.approx(0.8)
    assert p.delay(7, None, 1.0) == pytest.approx(12.8)
    assert p.delay(8, None, 1.0) == pytest.approx(20.0)  # 25.6 capped
    assert p.delay(5000, None, 1.0) == pytest.approx(20.0)  # no overflow


def test_delay_jitter_scales_linearly():
    p = RetryPolicy(base=1.0, cap=100.0)
    almost_one = math.nextafter(1.0, 0.0)
    assert p.delay(3, None, 0.5) == pytest.approx(2.0)
    assert 0.0 < p.delay(3, None, almost_one) < 4.0
    assert p.delay(3, None, almost_one) == pytest.approx(4.0)


def test_delay_retry_after_is_a_floor():
    p = RetryPolicy(base=0.2, cap=20.0, max_retry_after=120.0)
    assert p.delay(1, 5.0, 0.0) == 5.0
    assert p.delay(1, 5.0, 0.999) == 5.0
    # Backoff larger than Retry-After wins.
    assert p.delay(8, 5.0, 1.0) == pytest.approx(20.0)
    assert p.delay(1, 0.0, 0.5) == pytest.approx(0.1)


def test_delay_retry_after_is_capped():
    p = RetryPolicy(max_retry_after=120.0)
    assert p.delay(1, 3600.0, 0.5) == 120.0
    assert p.delay(1, math.inf, 0.5) == 120.0
    assert RetryPolicy(max_retry_after=0.0).delay(1, 30.0, 0.0) == 0.0


def test_delay_with_parsed_retry_after():
    p = RetryPolicy()
    ra = parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=T0)  # in the past
    assert p.delay(1, ra, 0.0) == 0.0
    ra = parse_retry_after("90", now=T0)
    assert p.delay(2, ra, 0.3) == 90.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_delay_bad_attempt(attempt):
    with pytest.raises(ValueError):
        RetryPolicy().delay(attempt, None, 0.5)


@pytest.mark.parametrize("rand", [-0.01, 1.01, math.nan])
def test_delay_bad_rand(rand):
    with pytest.raises(ValueError):
        RetryPolicy().delay(1, None, rand)


@pytest.mark.parametrize("ra", [-1.0, math.nan])
def test_delay_bad_retry_after(ra):
    with pytest.raises(ValueError):
        RetryPolicy().delay(1, ra, 0.5)


def test_gives_up_counts_the_first_try():
    p = RetryPolicy(attempts=3)
    assert [p.gives_up(a) for a in (1, 2, 3, 4)] == [False, False, True, True]
    assert RetryPolicy(attempts=1).gives_up(1)
    assert not RetryPolicy().gives_up(7)
    assert RetryPolicy().gives_up(8)


def test_retry_loop_makes_attempts_tries():
    p = RetryPolicy(attempts=4)
    tries, attempt = 0, 0
    while True:
        tries += 1  # the request fails every time
        attempt += 1
        if p.gives_up(attempt):
            break
    assert tries == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": -3},
        {"attempts": 2.5},
        {"attempts": True},
        {"base": -0.1},
        {"cap": -1.0},
        {"max_retry_after": -1.0},
        {"cap": math.inf},
        {"base": math.nan},
    ],
)
def test_bad_policy(kwargs):
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


if given is not None:

    @settings(max_examples=300, deadline=None)
    @given(
        attempt=st.integers(1, 2000),
        rand=st.floats(0.0, 1.0),
        retry_after=st.none() | st.floats(0.0, 1e6),
        base=st.floats(0.0, 10.0),
        cap=st.floats(0.0, 100.0),
        max_ra=st.floats(0.0, 500.0),
    )
    def test_delay_bounds(attempt, rand, retry_after, base, cap, max_ra):
        p = RetryPolicy(base=base, cap=cap, max_retry_after=max_ra)
        d = p.delay(attempt, retry_after, rand)
        assert 0.0 <= d <= max(cap, max_ra)
        assert d <= max(cap, min(retry_after or 0.0, max_ra))
        if retry_after is not None:
            assert d >= min(retry_after, max_ra)

else:  # pragma: no cover

    @pytest.mark.skip(reason="hypothesis not installed")
    def test_properties_need_hypothesis():
        pass
