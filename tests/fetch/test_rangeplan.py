"""Tests for airsync.rangeplan: span arithmetic, chunk plans and Range/Content-Range checks."""

from __future__ import annotations

import pytest

from airsync.errors import ConfigError
from airsync.fetch.rangeplan import (
    Span,
    check_partial,
    coalesce,
    cut,
    if_range_value,
    is_strong_etag,
    merge,
    missing,
    parse_content_range,
    parse_unsatisfied_range,
    plan,
    range_header,
)

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None


def S(a: int, b: int) -> Span:
    return Span(a, b)


# --- Span ---------------------------------------------------------------------------------


def test_span_len_and_order():
    assert len(S(3, 10)) == 7
    assert len(S(5, 5)) == 0
    assert sorted([S(5, 6), S(0, 9), S(0, 2)]) == [S(0, 2), S(0, 9), S(5, 6)]


@pytest.mark.parametrize("a,b", [(5, 4), (-1, 3), (-2, -1)])
def test_span_rejects_bad_bounds(a, b):
    with pytest.raises(ValueError):
        Span(a, b)


def test_span_rejects_non_int():
    with pytest.raises(TypeError):
        Span(0.0, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Span(True, 2)  # type: ignore[arg-type]


def test_span_is_frozen():
    with pytest.raises(AttributeError):
        S(0, 1).start = 3  # type: ignore[misc]


# --- merge / missing ----------------------------------------------------------------------


def test_merge_joins_touching_and_overlapping_and_sorts():
    assert merge([S(10, 20), S(0, 5), S(5, 7), S(15, 30), S(40, 41)]) == [S(0, 7), S(10, 30), S(40, 41)]


def test_merge_keeps_one_byte_gap():
    assert merge([S(0, 5), S(6, 9)]) == [S(0, 5), S(6, 9)]


def test_merge_contained_and_empty():
    assert merge([S(0, 100), S(10, 20), S(50, 50)]) == [S(0, 100)]
    assert merge([S(3, 3)]) == []
    assert merge([]) == []


def test_merge_accepts_generator():
    assert merge(S(i, i + 1) for i in range(5)) == [S(0, 5)]


def test_missing_nothing_done():
    assert missing(100, []) == [S(0, 100)]


def test_missing_size_zero():
    assert missing(0, []) == []
    assert missing(0, [S(0, 10)]) == []


def test_missing_all_done():
    assert missing(100, [S(0, 100)]) == []
    assert missing(100, [S(0, 60), S(40, 100)]) == []
    assert missing(100, [S(0, 500)]) == []


def test_missing_gaps_with_unsorted_overlapping_done():
    done = [S(70, 80), S(10, 20), S(15, 30), S(0, 5)]
    assert missing(100, done) == [S(5, 10), S(30, 70), S(80, 100)]


def test_missing_done_beyond_size_is_ignored():
    assert missing(50, [S(60, 90)]) == [S(0, 50)]
    assert missing(50, [S(40, 90)]) == [S(0, 40)]
    assert missing(50, [S(50, 51)]) == [S(0, 50)]


def test_missing_off_by_one_edges():
    assert missing(10, [S(0, 9)]) == [S(9, 10)]
    assert missing(10, [S(1, 10)]) == [S(0, 1)]
    assert missing(10, [S(0, 4), S(5, 10)]) == [S(4, 5)]


def test_missing_consumes_iterator_once():
    assert missing(10, iter([S(2, 4)])) == [S(0, 2), S(4, 10)]


def test_missing_negative_size():
    with pytest.raises(ValueError):
        missing(-1, [])


# --- cut / plan ---------------------------------------------------------------------------


def test_plan_small_file_one_span_per_gap():
    assert plan(1000, [], chunk_size=100, split_threshold=1000) == [S(0, 1000)]
    assert plan(1000, [S(100, 200)], chunk_size=100, split_threshold=1000) == [S(0, 100), S(200, 1000)]


def test_plan_threshold_is_inclusive():
    # size == threshold: not split; one byte more: split.
    assert plan(300, [], 100, 300) == [S(0, 300)]
    assert plan(301, [], 100, 300) == [S(0, 100), S(100, 200), S(200, 300), S(300, 301)]


def test_plan_exact_multiple_has_no_empty_tail():
    assert plan(300, [], 100, 0) == [S(0, 100), S(100, 200), S(200, 300)]


def test_plan_chunk_boundary_off_by_one():
    assert plan(201, [], 100, 0) == [S(0, 100), S(100, 200), S(200, 201)]
    assert plan(199, [], 100, 0) == [S(0, 100), S(100, 199)]
    assert plan(1, [], 100, 0) == [S(0, 1)]


def test_plan_aligns_after_partial_progress():
    # 150 bytes done: the next piece only completes chunk 1, then pieces follow the grid.
    assert plan(450, [S(0, 150)], 100, 0) == [S(150, 200), S(200, 300), S(300, 400), S(400, 450)]


def test_plan_aligns_gap_inside_one_chunk():
    assert plan(1000, [S(0, 120), S(130, 1000)], 100, 0) == [S(120, 130)]


def test_plan_gap_spanning_boundary_is_cut_there():
    assert plan(1000, [S(0, 195), S(205, 1000)], 100, 0) == [S(195, 200), S(200, 205)]


def test_resumed_plan_lines_up_with_first_plan():
    first = plan(1050, [], 100, 0)
    # Pretend a few pieces, and half of another, made it to disk.
    done = [first[0], first[3], S(first[5].start, first[5].start + 37)]
    again = plan(1050, done, 100, 0)
    for piece in again:
        # Each resumed piece lies inside exactly one piece of the first plan.
        assert sum(1 for p in first if p.start <= piece.start and piece.end <= p.end) == 1
    assert S(537, 600) in again


def test_plan_nothing_left_and_empty_file():
    assert plan(500, [S(0, 500)], 100, 0) == []
    assert plan(0, [], 100, 0) == []
    assert plan(0, [], 100, 10) == []


def test_plan_done_beyond_size():
    assert plan(250, [S(100, 900)], 100, 0) == [S(0, 100)]


@pytest.mark.parametrize("chunk", [0, -5])
def test_plan_bad_chunk_size(chunk):
    with pytest.raises(ConfigError):
        plan(100, [], chunk, 0)
    with pytest.raises(ConfigError):
        cut([S(0, 10)], chunk)


def test_plan_bad_threshold_and_size():
    with pytest.raises(ConfigError):
        plan(100, [], 10, -1)
    with pytest.raises(ValueError):
        plan(-1, [], 10, 0)


def test_cut_keeps_empty_spans_out():
    assert cut([S(5, 5), S(95, 105)], 100) == [S(95, 100), S(100, 105)]


# --- coalesce -----------------------------------------------------------------------------


def test_coalesce_joins_within_max_gap_only():
    spans = [S(0, 10), S(15, 20), S(26, 30)]
    assert coalesce(spans, 5) == [S(0, 20), S(26, 30)]
    assert coalesce(spans, 6) == [S(0, 30)]
    assert coalesce(spans, 4) == spans


def test_coalesce_zero_gap_joins_touching_only():
    assert coalesce([S(0, 10), S(10, 20), S(21, 22)], 0) == [S(0, 20), S(21, 22)]


def test_coalesce_unsorted_overlapping_input():
    assert coalesce([S(50, 60), S(0, 10), S(5, 12)], 1) == [S(0, 12), S(50, 60)]
    assert coalesce([], 10) == []


def test_coalesce_then_cut_stays_on_grid():
    gaps = coalesce(missing(400, [S(0, 90), S(92, 100)]), 8)
    assert gaps == [S(90, 400)]
    assert cut(gaps, 100) == [S(90, 100), S(100, 200), S(200, 300), S(300, 400)]


def test_coalesce_negative_gap():
    with pytest.raises(ConfigError):
        coalesce([S(0, 1)], -1)


# --- Range / Content-Range ----------------------------------------------------------------


def test_range_header_is_inclusive():
    assert range_header(S(0, 1)) == "bytes=0-0"
    assert range_header(S(0, 100)) == "bytes=0-99"
    assert range_header(S(100, 200)) == "bytes=100-199"


def test_range_header_empty_span():
    with pytest.raises(ValueError):
        range_header(S(7, 7))


@pytest.mark.parametrize(
    "value,expected",
    [
        ("bytes 0-99/1000", (0, 100, 1000)),
        ("bytes 999-999/1000", (999, 1000, 1000)),
        ("bytes 0-0/1", (0, 1, 1)),
        ("bytes 100-199/*", (100, 200, None)),
        ("BYTES 5-9/10", (5, 10, 10)),
        ("  bytes 5-9/10\t", (5, 10, 10)),
        ("bytes 007-010/0100", (7, 11, 100)),
        (f"bytes 0-{2**40 - 1}/{2**40}", (0, 2**40, 2**40)),
    ],
)
def test_parse_content_range_ok(value, expected):
    assert parse_content_range(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes */1000",  # unsatisfied-range: only in 416 answers
        "bytes */*",
        "bytes 10-5/100",  # last < first
        "bytes 0-100/100",  # last must be < complete length
        "bytes 0-99/99",
        "bytes 0-99",
        "bytes 0-/100",
        "bytes -5/100",
        "bytes=0-99/100",
        "bytes  0-99/100",
        "bytes 0 -99/100",
        "bytes 0-99 /100",
        "items 0-99/100",
        "bytes +0-99/100",
        "bytes 0-9_9/100",
        "bytes 0-\u0661\u0662/100",  # Arabic-Indic digits: int() accepts them, HTTP does not
        "bytes -1-99/100",
        "bytes 0-99/100, bytes 100-199/200",
        "bytes 0x0-0x9/100",
        "bytes 0-99/100 junk",
    ],
)
def test_parse_content_range_rejects(value):
    with pytest.raises(ValueError):
        parse_content_range(value)


def test_parse_unsatisfied_range():
    assert parse_unsatisfied_range("bytes */1000") == 1000
    assert parse_unsatisfied_range("bytes */0") == 0
    for bad in ("bytes 0-9/10", "bytes */*", "bytes */", "lines */10", "bytes */-1"):
        with pytest.raises(ValueError):
            parse_unsatisfied_range(bad)


# --- check_partial ------------------------------------------------------------------------


def test_check_partial_exact():
    assert check_partial(S(100, 200), "bytes 100-199/1000", 1000) == S(100, 200)


def test_check_partial_short_answer_is_accepted():
    assert check_partial(S(100, 200), "bytes 100-149/1000", 1000) == S(100, 150)


def test_check_partial_unknown_sizes():
    assert check_partial(S(0, 10), "bytes 0-9/*", None) == S(0, 10)
    assert check_partial(S(0, 10), "bytes 0-9/*", 50) == S(0, 10)
    assert check_partial(S(0, 10), "bytes 0-9/77", None) == S(0, 10)


def test_check_partial_last_byte():
    assert check_partial(S(999, 1000), "bytes 999-999/1000", 1000) == S(999, 1000)


@pytest.mark.parametrize(
    "content_range,known,reason",
    [
        ("bytes 0-199/1000", 1000, "starts at byte 0"),  # earlier start: bytes at the wrong offset
        ("bytes 101-199/1000", 1000, "starts at byte 101"),  # later start
        ("bytes 100-200/1000", 1000, "past the asked end"),  # one byte too many
        ("bytes 100-199/1001", 1000, "expected 1000"),  # another file
        ("bytes 100-199/999", 1000, "expected 1000"),
        ("bytes */1000", 1000, "unsatisfied"),
        ("bytes 100-199", 1000, "malformed"),
    ],
)
def test_check_partial_rejects(content_range, known, reason):
    with pytest.raises(ValueError, match=reason):
        check_partial(S(100, 200), content_range, known)


def test_check_partial_empty_ask():
    with pytest.raises(ValueError):
        check_partial(S(5, 5), "bytes 5-5/10", 10)


# --- ETag / If-Range ----------------------------------------------------------------------


@pytest.mark.parametrize("etag", ['"abc"', '""', '"a-b_c/d"', ' "x" ', '"\x80\xff"'])
def test_strong_etags(etag):
    assert is_strong_etag(etag)


@pytest.mark.parametrize(
    "etag",
    [None, "", 'W/"abc"', 'w/"abc"', "abc", '"abc', 'abc"', '"a"b"', '"a b"', 'W/ "abc"', '"abc"W/'],
)
def test_not_strong_etags(etag):
    assert not is_strong_etag(etag)


LM = "Wed, 21 Oct 2015 07:28:00 GMT"


def test_if_range_prefers_strong_etag():
    assert if_range_value('"v1"', LM) == '"v1"'
    assert if_range_value(' "v1" ', None) == '"v1"'


def test_if_range_never_weak_etag():
    assert if_range_value('W/"v1"', LM) == LM
    assert if_range_value('W/"v1"', None) is None


def test_if_range_last_modified_and_none():
    assert if_range_value(None, LM) == LM
    assert if_range_value(None, None) is None
    assert if_range_value("garbage", "not a date") is None
    assert if_range_value(None, "") is None


def test_if_range_last_modified_needs_one_second_before_date():
    assert if_range_value(None, LM, date="Wed, 21 Oct 2015 07:28:01 GMT") == LM
    assert if_range_value(None, LM, date="Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert if_range_value(None, LM, date="Wed, 21 Oct 2015 07:27:00 GMT") is None
    assert if_range_value(None, LM, date="nonsense") is None
    # The date rule does not concern strong ETags.
    assert if_range_value('"v1"', LM, date=LM) == '"v1"'


# --- properties ---------------------------------------------------------------------------


def _covered(spans, size):
    cov = bytearray(size)
    for s in spans:
        for i in range(s.start, min(s.end, size)):
            cov[i] = 1
    return cov


if given is not None:
    spans_st = st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 60)).map(lambda t: Span(t[0], t[0] + t[1])),
        max_size=12,
    )

    @settings(max_examples=300, deadline=None)
    @given(size=st.integers(0, 300), done=spans_st)
    def test_missing_is_exact_complement(size, done):
        gaps = missing(size, done)
        cov = _covered(done, size)
        gap_cov = _covered(gaps, size)
        assert all(cov[i] != gap_cov[i] for i in range(size))
        assert all(len(g) > 0 and g.end <= size for g in gaps)
        # Sorted, disjoint and not touching (two touching gaps would be one gap).
        assert all(a.end < b.start for a, b in zip(gaps, gaps[1:]))

    @settings(max_examples=300, deadline=None)
    @given(
        size=st.integers(0, 300),
        done=spans_st,
        chunk=st.integers(1, 64),
        threshold=st.integers(0, 300),
    )
    def test_plan_covers_missing_bytes_on_grid(size, done, chunk, threshold):
        pieces = plan(size, done, chunk, threshold)
        assert merge(pieces) == missing(size, done)
        assert all(a.end <= b.start for a, b in zip(pieces, pieces[1:]))
        if size > threshold:
            for p in pieces:
                assert 0 < len(p) <= chunk
                assert p.start // chunk == (p.end - 1) // chunk  # never crosses a grid line
        else:
            assert pieces == missing(size, done)

    @settings(max_examples=200, deadline=None)
    @given(spans=spans_st, gap=st.integers(0, 20))
    def test_coalesce_covers_input_and_respects_gap(spans, gap):
        out = coalesce(spans, gap)
        size = 400
        cov, out_cov = _covered(spans, size), _covered(out, size)
        assert all(out_cov[i] for i in range(size) if cov[i])
        assert all(b.start - a.end > gap for a, b in zip(out, out[1:]))

    @settings(max_examples=200, deadline=None)
    @given(start=st.integers(0, 10**12), length=st.integers(1, 10**9), extra=st.integers(0, 10**9))
    def test_range_header_round_trips_through_content_range(start, length, extra):
        span = Span(start, start + length)
        first, last = range_header(span).removeprefix("bytes=").split("-")
        total = span.end + extra
        assert parse_content_range(f"bytes {first}-{last}/{total}") == (span.start, span.end, total)
        assert check_partial(span, f"bytes {first}-{last}/{total}", total) == span

else:  # pragma: no cover

    @pytest.mark.skip(reason="hypothesis not installed")
    def test_properties_need_hypothesis():
        pass
