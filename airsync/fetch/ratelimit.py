"""A global byte-rate limit (``--limit-rate``) as a reserving token bucket.

Border links are often thin and shared, so every body chunk that arrives reserves its size
from one bucket shared by all downloads. The bucket is pure: ``reserve(n, now)`` spends ``n``
tokens (the balance may go negative) and returns how long the caller must wait for the balance
to come back to zero. Waiting after reading, not before, is enough: the socket's receive
buffer fills and TCP slows the sender down to the same rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from airsync.errors import ConfigError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MAX_RATE = float(1 << 50)  # 1 PiB/s: anything above is a typo (and "1e400" would be infinite)


def parse_rate(text: str) -> int:
    """'500k', '2M', '1.5m', '10000' (bytes per second, binary units) -> bytes per second."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)(?:i?[bB])?(?:/s)?\s*", text)
    value = float(m.group(1)) * _UNITS[m.group(2).lower()] if m else 0.0
    if not 0 < value < MAX_RATE:
        raise ConfigError(f"bad rate {text!r}: use a positive number of bytes per second, e.g. 500k or 2M")
    return int(value)


@dataclass
class TokenBucket:
    rate: float  # bytes per second
    burst: float  # the most that may be spent at once after an idle spell
    _tokens: float = field(default=0.0, init=False)
    _last: float | None = field(default=None, init=False)

    def reserve(self, n: int, now: float) -> float:
        if self._last is None:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
