"""When to retry an upstream request, and how long to wait first.

``classify_status`` sorts an HTTP status into OK, NOT_FOUND (try the next upstream, see
``airsync.upstream``), RETRY (a transient failure of this upstream) or FAIL. ``RetryPolicy``
turns a retry count, the server's ``Retry-After`` and a random number into a delay: capped
exponential backoff with "full jitter" (uniform in ``[0, ceiling)``, which spreads out clients
that failed together), never shorter than what the server asked for. Pure: the caller supplies
the current time and the random number, and does the sleeping.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from airsync.errors import ConfigError
from airsync.fetch.rangeplan import http_date

__all__ = ["Outcome", "classify_status", "parse_retry_after", "RetryPolicy"]


class Outcome(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not-found"
    RETRY = "retry"
    FAIL = "fail"


# 408 timeout, 425 too early (TLS 0-RTT replay refused), 429 rate limit: asking again later works.
_RETRY_4XX = frozenset({408, 425, 429})
# 501 not implemented, 505 version not supported: the same request will fail the same way.
_FAIL_5XX = frozenset({501, 505})


def classify_status(status: int) -> Outcome:
    if status in (200, 206):
        return Outcome.OK
    # The go command reads 404 and 410 alike as "this proxy does not have it".
    if status in (404, 410):
        return Outcome.NOT_FOUND
    if status in _RETRY_4XX:
        return Outcome.RETRY
    if 500 <= status <= 599 and status not in _FAIL_5XX:
        return Outcome.RETRY
    return Outcome.FAIL


_DELAY_SECONDS = re.compile(r"[0-9]+", re.ASCII)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``now`` (a Unix time) per a ``Retry-After`` value.

    RFC 9110 §10.2.3 allows delay-seconds (ASCII digits) or an HTTP-date in any of its three
    forms. A date in the past gives 0.0; an absent or malformed value gives None (fall back to
    plain backoff). A delay too large for a float gives ``inf``; ``RetryPolicy`` caps it.
    """
    if value is None:
        return None
    text = value.strip(" \t")
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        try:
            return float(int(text))
        except OverflowError:
            return math.inf
    when = http_date(text)
    return None if when is None else max(0.0, when - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one request.

    ``attempts`` counts every try, the first included: 8 means one request and up to 7 retries.
    ``base`` and ``cap`` bound the backoff ceiling ``min(cap, base * 2**(attempt-1))``;
    ``max_retry_after`` bounds how long a server's Retry-After can make us wait.
    """

    attempts: int = 8
    base: float = 0.2
    cap: float = 20.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigError(f"retry attempts must be an integer of at least 1, got {self.attempts!r}")
        for name in ("base", "cap", "max_retry_after"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"retry {name} must be a finite number >= 0, got {value!r}")

    def delay(self, attempt: int, retry_after: float | None, rand: float) -> float:
        """Seconds to sleep before retry number ``attempt`` (1 = the first retry).

        ``rand`` is uniform in [0, 1), from the caller's random source. With ``retry_after``
        (seconds, as from ``parse_retry_after``) the delay is at least that, capped at
        ``max_retry_after`` so one server cannot stall a run for hours.
        """
        if attempt < 1:
            raise ValueError(f"retry attempts count from 1, got {attempt}")
        if not 0.0 <= rand <= 1.0:
            raise ValueError(f"rand must lie in [0, 1], got {rand}")
        exponent = attempt - 1
        # 2.0**exponent overflows past 1023; by then the cap has long been reached.
        ceiling = self.cap if exponent > 1000 else min(self.cap, self.base * 2.0**exponent)
        wait = rand * ceiling
        if retry_after is not None:
            if math.isnan(retry_after) or retry_after < 0:
                raise ValueError(f"retry_after must be a number >= 0, got {retry_after}")
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def gives_up(self, attempt: int) -> bool:
        """True when retry number ``attempt`` (1 = first retry) would exceed ``attempts`` tries."""
        # Retry k is try k+1, so retries 1 .. attempts-1 are allowed.
        return attempt >= self.attempts
