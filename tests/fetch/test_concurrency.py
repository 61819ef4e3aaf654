"""LatencyLimit (pure): the whole-file lane grows while latency is what requests wait on, and
only then; it steps back when the host queues what is added, never below per_host."""

from __future__ import annotations

from airsync.fetch.concurrency import BACK_OFF_BEYOND, GROW_WITHIN, LatencyLimit


def drive(lim: LatencyLimit, rounds: int, latency, waiting: bool = True) -> list[int]:
    """Answer ``rounds`` rounds of requests, each taking ``latency(limit)`` seconds; the limits seen."""
    seen = [lim.limit]
    for _ in range(rounds):
        for _ in range(lim.limit):
            lim.observe(latency(lim.limit), waiting)
        seen.append(lim.limit)
    return seen


def test_a_far_host_that_answers_as_fast_gets_up_to_the_ceiling_by_doubling():
    lim = LatencyLimit(16)
    assert drive(lim, 4, lambda _n: 0.050) == [16, 32, 64, 64, 64]


def test_once_answers_were_slower_it_grows_by_quarters():
    lim = LatencyLimit(16, 128)
    lim.observe(0.010, False)  # the path's own latency
    slow = 0.010 * (GROW_WITHIN + BACK_OFF_BEYOND) / 2  # in the band: held, and the doubling is over
    assert drive(lim, 2, lambda _n: slow) == [16, 16, 16]
    assert drive(lim, 4, lambda _n: 0.010) == [16, 20, 25, 31, 38]


def test_no_growth_while_nothing_waits_for_a_slot():
    lim = LatencyLimit(16)
    assert drive(lim, 5, lambda _n: 0.050, waiting=False) == [16] * 6


def test_a_host_that_queues_what_is_added_keeps_its_limit_near_the_base():
    # A host that serves one request at a time: each answer waits for the ones before it.
    lim = LatencyLimit(4, 64)
    lim.observe(0.001, False)  # a request alone: the path's own latency
    seen = drive(lim, 10, lambda n: 0.001 * n)
    assert max(seen) <= 8 and seen[-1] <= 8


def test_it_steps_back_when_answers_slow_down_but_never_below_the_base():
    lim = LatencyLimit(8, 32)
    drive(lim, 10, lambda _n: 0.010)
    assert lim.limit == 32
    seen = drive(lim, 12, lambda _n: 0.010 * (BACK_OFF_BEYOND + 1))
    assert seen == sorted(seen, reverse=True) and seen[-1] == 8


def test_within_the_band_it_holds():
    lim = LatencyLimit(8, 32)
    lim.observe(0.010, False)
    mid = 0.010 * (GROW_WITHIN + BACK_OFF_BEYOND) / 2
    assert drive(lim, 5, lambda _n: mid) == [8] * 6


def test_a_fixed_number_when_the_ceiling_is_the_base():
    lim = LatencyLimit(16, 16)
    assert drive(lim, 5, lambda _n: 0.050) == [16] * 6
