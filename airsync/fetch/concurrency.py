"""How many whole-file requests to keep in flight to one host: more while latency, not the host,
is what they wait on.

Little's law: requests in flight = request rate x time per request. Near by, ``per_host``
requests at once carry all a client can process; across 50 ms of latency the same rate needs
many more in flight, or the job waits on the wire with the host idle. So the limit starts at
``per_host`` and is probed upward, the way TCP Vegas grows a window: after each round of
``limit`` answered requests, while requests were waiting for a slot, compare the round's median
time to the first byte with the least seen so far (the path's own latency). Close to it (within
``GROW_WITHIN``): the host answers as fast with more in flight, so more: twice as many while it
has never been slower (TCP's slow start: a job that resolves a few hundred go.mods 50 ms away is
over in a handful of rounds), a quarter more once it has. Far above it (beyond
``BACK_OFF_BEYOND``): the host, or our own event loop, queues what we add, so a quarter back,
never below ``per_host``. The ceiling is ``CEILING_FACTOR`` times ``per_host``. A far host thus
sees no more requests a second than the base limit sends to a near one; only the time each
request spends in transit is made up for.

Pure: times in, limits out. ``fetch.slots`` applies the limit to its slots.
"""

from __future__ import annotations

import statistics

#: Grow while a round's median time to the first byte is at most this times the least seen.
GROW_WITHIN = 1.5
#: Step back once it is more than this times the least seen.
BACK_OFF_BEYOND = 3.0
#: The most requests in flight to one host, as a multiple of ``per_host``.
CEILING_FACTOR = 4


class LatencyLimit:
    """The limit of one host's lane; ``observe`` each answered request's time to first byte."""

    def __init__(self, base: int, ceiling: int | None = None) -> None:
        self.base = max(1, base)
        self.ceiling = max(self.base, ceiling if ceiling is not None else self.base * CEILING_FACTOR)
        self.limit = self.base
        self.least = float("inf")
        self._round: list[float] = []
        self._waited = False
        self._doubling = True  # until a round's answers come slower than GROW_WITHIN allows

    def observe(self, seconds: float, waiting: bool) -> int | None:
        """One answered request, and whether others were waiting for a slot meanwhile; the new
        limit when it changes, else None."""
        if seconds < self.least:
            self.least = seconds
        self._round.append(seconds)
        self._waited = self._waited or waiting
        if len(self._round) < self.limit:
            return None
        typical = statistics.median(self._round)
        waited = self._waited
        self._round.clear()
        self._waited = False
        step = max(1, self.limit // 4)
        as_fast = typical <= self.least * GROW_WITHIN
        if waited and as_fast and self.limit < self.ceiling:
            self.limit = min(self.ceiling, self.limit + (self.limit if self._doubling else step))
            return self.limit
        if not as_fast:
            self._doubling = False
        if typical > self.least * BACK_OFF_BEYOND and self.limit > self.base:
            self.limit = max(self.base, self.limit - step)
            return self.limit
        return None
