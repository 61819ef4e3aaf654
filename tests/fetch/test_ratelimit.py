import pytest

from airsync.errors import ConfigError
from airsync.fetch.ratelimit import TokenBucket, parse_rate


def test_bucket_allows_burst_then_paces():
    b = TokenBucket(rate=1000, burst=100)
    assert b.reserve(100, now=0.0) == 0.0
    assert b.reserve(500, now=0.0) == pytest.approx(0.5)
    assert b.reserve(0, now=0.5) == 0.0  # the debt is paid back at the rate
    assert b.reserve(1000, now=10.0) == pytest.approx(0.9)  # idle time refills only up to the burst


@pytest.mark.parametrize("text,value", [("500k", 512000), ("2M", 2 << 20), ("1.5m", 3 << 19), ("10000", 10000), ("2MiB/s", 2 << 20)])
def test_parse_rate(text, value):
    assert parse_rate(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1k", "fast", "1x", "1" + "0" * 400, "99999999g"])
def test_parse_rate_rejects(text):
    with pytest.raises(ConfigError, match="bad rate"):
        parse_rate(text)
