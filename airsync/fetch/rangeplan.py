"""Planning and checking HTTP Range requests for resumable downloads.

A download is described by the spans of the file already on disk (``done``, byte ranges whose
data is fsynced); this module works out which spans are still missing, cuts them into requests
aligned to a fixed chunk grid, builds the ``Range``/``If-Range`` request headers and validates a
206 answer's ``Content-Range`` before a single byte of its body is trusted. It is pure: no
sockets, no files, no clocks; callers hand in sizes, spans and header values.

Conventions: a ``Span`` is half-open, ``[start, end)``, as everywhere in Python; HTTP byte ranges
are inclusive (``bytes=0-99`` is 100 bytes) and the conversion happens only in
``range_header`` and ``parse_content_range``. Bad data (spans, header values) raises
``ValueError``; bad tuning settings (chunk size, thresholds, gaps) raise ``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timezone

from airsync.errors import ConfigError

__all__ = [
    "Span",
    "missing",
    "merge",
    "cut",
    "plan",
    "coalesce",
    "range_header",
    "parse_content_range",
    "parse_unsatisfied_range",
    "check_partial",
    "is_strong_etag",
    "if_range_value",
]


@dataclass(frozen=True, order=True)
class Span:
    """The bytes ``[start, end)`` of a file; ``end`` is exclusive, so ``len(span) == end - start``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        # bool is an int subclass; Span(True, 2) is always a bug upstream of here.
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Span.{name} must be an int, got {value!r}")
        if self.start < 0:
            raise ValueError(f"Span start must not be negative: {self.start}")
        if self.start > self.end:
            raise ValueError(f"Span start {self.start} is after its end {self.end}")

    def __len__(self) -> int:
        return self.end - self.start


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"file size must not be negative: {size}")


def merge(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans`` as sorted, disjoint, non-touching, non-empty spans."""
    result: list[Span] = []
    # Empty spans cover nothing; keeping them would let [5,5) glue [0,5) to nothing visible.
    for span in sorted(s for s in spans if len(s)):
        if result and span.start <= result[-1].end:
            last = result[-1]
            if span.end > last.end:
                result[-1] = Span(last.start, span.end)
        else:
            result.append(span)
    return result


def missing(size: int, done: Iterable[Span]) -> list[Span]:
    """The gaps of ``[0, size)`` not covered by ``done``, sorted.

    ``done`` may be unsorted, overlap, or reach past ``size`` (a file that shrank upstream, or
    a stale record); whatever lies outside ``[0, size)`` is ignored.
    """
    _check_size(size)
    gaps: list[Span] = []
    pos = 0
    for span in merge(done):
        if span.start >= size:
            break
        if span.start > pos:
            gaps.append(Span(pos, span.start))
        pos = max(pos, span.end)
    if pos < size:
        gaps.append(Span(pos, size))
    return gaps


def cut(spans: Iterable[Span], chunk_size: int) -> list[Span]:
    """Cut each span at every multiple of ``chunk_size``, so no piece crosses the chunk grid.

    Pieces of a resumed download then coincide with the pieces an earlier run planned, which
    lets a per-chunk record (done flag, hash) stay meaningful across runs.
    """
    if chunk_size <= 0:
        raise ConfigError(f"chunk size must be positive, got {chunk_size}")
    pieces: list[Span] = []
    for span in spans:
        pos = span.start
        while pos < span.end:
            # Next grid line strictly after pos.
            boundary = (pos // chunk_size + 1) * chunk_size
            end = min(boundary, span.end)
            pieces.append(Span(pos, end))
            pos = end
    return pieces


def plan(size: int, done: Iterable[Span], chunk_size: int, split_threshold: int) -> list[Span]:
    """The spans still to fetch for a file of ``size`` bytes, ``done`` already on disk.

    Files of at most ``split_threshold`` bytes are fetched gap by gap (one request per gap,
    because a request costs more than a small file); larger ones are cut into pieces of at most
    ``chunk_size`` bytes aligned to multiples of ``chunk_size`` (see ``cut``).
    """
    _check_size(size)
    if chunk_size <= 0:
        raise ConfigError(f"chunk size must be positive, got {chunk_size}")
    if split_threshold < 0:
        raise ConfigError(f"split threshold must not be negative, got {split_threshold}")
    gaps = missing(size, done)
    if size <= split_threshold:
        return gaps
    return cut(gaps, chunk_size)


def coalesce(spans: Iterable[Span], max_gap: int) -> list[Span]:
    """Join spans separated by at most ``max_gap`` bytes (touching spans always join).

    Refetching a few bytes already on disk is cheaper than another request. Meant for gaps
    (``missing``) before ``cut``: applied to ``plan``'s output it would glue the aligned pieces
    back together, since those touch.
    """
    if max_gap < 0:
        raise ConfigError(f"maximum gap must not be negative, got {max_gap}")
    result: list[Span] = []
    for span in merge(spans):
        if result and span.start - result[-1].end <= max_gap:
            result[-1] = Span(result[-1].start, span.end)
        else:
            result.append(span)
    return result


def range_header(span: Span) -> str:
    """The ``Range`` request value for ``span``: ``bytes=start-last`` with ``last`` inclusive."""
    if not len(span):
        # bytes=5-4 is an invalid range; RFC 9110 lets servers ignore it and send the whole file.
        raise ValueError(f"cannot request an empty span {span}")
    return f"bytes={span.start}-{span.end - 1}"


# RFC 9110 §14.4: Content-Range = range-unit SP ( range-resp / unsatisfied-range ). Digits are
# ASCII only: int() alone would also take "١٢", "1_000" and "+5".
_RANGE_RESP = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([0-9]+)-([0-9]+)/([0-9]+|\*)", re.ASCII)
_UNSATISFIED = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) \*/([0-9]+)", re.ASCII)
_OWS = " \t"


def _check_unit(unit: str, value: str) -> None:
    # Range units are case-insensitive (RFC 9110 §14.1); bytes is the only one we ask for.
    if unit.lower() != "bytes":
        raise ValueError(f"Content-Range unit is not bytes: {value!r}")


def parse_content_range(value: str) -> tuple[int, int, int | None]:
    """Parse a 206 ``Content-Range`` value into ``(start, end_exclusive, total or None)``.

    ``total`` is None for ``*`` (length unknown). The unsatisfied form ``bytes */N`` belongs to
    416 answers and is rejected here (see ``parse_unsatisfied_range``), as is anything the
    RFC 9110 grammar does not allow, including last < first and total <= last.
    """
    if not isinstance(value, str):
        raise ValueError(f"Content-Range must be a string, got {value!r}")
    # Field values come without surrounding OWS by definition; a lax client may leave it in.
    text = value.strip(_OWS)
    m = _RANGE_RESP.fullmatch(text)
    if not m:
        if _UNSATISFIED.fullmatch(text):
            raise ValueError(f"Content-Range {value!r} is the unsatisfied-range form (a 416 answer)")
        raise ValueError(f"malformed Content-Range {value!r}")
    unit, first, last, complete = m.groups()
    _check_unit(unit, value)
    start, last_pos = int(first), int(last)
    total = None if complete == "*" else int(complete)
    if last_pos < start:
        raise ValueError(f"Content-Range {value!r} ends before it starts")
    if total is not None and total <= last_pos:
        raise ValueError(f"Content-Range {value!r} reaches past the complete length")
    return start, last_pos + 1, total


def parse_unsatisfied_range(value: str) -> int:
    """The complete length from a 416 answer's ``Content-Range: bytes */N``."""
    if not isinstance(value, str):
        raise ValueError(f"Content-Range must be a string, got {value!r}")
    m = _UNSATISFIED.fullmatch(value.strip(_OWS))
    if not m:
        raise ValueError(f"not an unsatisfied-range Content-Range: {value!r}")
    _check_unit(m.group(1), value)
    return int(m.group(2))


def check_partial(span_asked: Span, content_range: str, known_size: int | None) -> Span:
    """Validate a 206 answer to a request for ``span_asked``; return the span it delivers.

    The body is trusted only if it starts exactly where we asked (anything else would be written
    at the wrong offset), ends no later than we asked (a shorter answer is legal, the rest is
    planned again), and, when both are known, describes a file of the size we expect (another
    size means another file: start over rather than splice).
    """
    if not len(span_asked):
        raise ValueError(f"asked for an empty span {span_asked}")
    start, end, total = parse_content_range(content_range)
    if start != span_asked.start:
        raise ValueError(
            f"206 starts at byte {start}, asked for {span_asked.start} (Content-Range {content_range!r})"
        )
    if end > span_asked.end:
        raise ValueError(
            f"206 ends at byte {end}, past the asked end {span_asked.end} (Content-Range {content_range!r})"
        )
    if known_size is not None and total is not None and total != known_size:
        raise ValueError(
            f"206 says the file has {total} bytes, expected {known_size} (Content-Range {content_range!r})"
        )
    return Span(start, end)


# RFC 9110 §8.8.3: entity-tag = [ W/ ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
_STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')


def is_strong_etag(etag: str | None) -> bool:
    """True for a well-formed strong entity tag (``"abc"``); False for ``W/"abc"``, bare or junk.

    ``W/`` is case-sensitive in the grammar, so ``w/"abc"`` is malformed, not strong.
    """
    if etag is None:
        return False
    return _STRONG_ETAG.fullmatch(etag.strip(_OWS)) is not None


def http_date(value: str) -> float | None:
    """An HTTP-date (any of the three RFC 9110 forms) as a POSIX timestamp, or None."""
    import email.utils  # here: the email package is 2 ms of every mirror's start-up

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # asctime dates and "-0000" carry no zone; HTTP dates are always GMT.
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def if_range_value(etag: str | None, last_modified: str | None, date: str | None = None) -> str | None:
    """The ``If-Range`` value to resume with, or None when there is no safe validator.

    A strong ETag wins; a weak one is never sent (RFC 9110 §13.1.5 forbids it, and servers that
    weaken tags, e.g. when compressing, would answer 200 every time). Otherwise Last-Modified,
    if it is a valid HTTP-date. When the response's ``Date`` is passed, Last-Modified must be at
    least one second older to count as a strong validator (§8.8.2.2): a file changed twice within
    its last-modified second would otherwise pass the check with mixed bytes.

    Deviation from §13.1.5: the RFC also asks for no date when the server sent any ETag, even a
    weak one. We still send Last-Modified then: whether a date is a strong validator does not
    depend on the ETag, and resuming beats refetching a module zip from byte 0.
    """
    if is_strong_etag(etag):
        assert etag is not None
        return etag.strip(_OWS)
    if last_modified is None:
        return None
    modified = http_date(last_modified)
    if modified is None:
        return None
    if date is not None:
        sent = http_date(date)
        if sent is None or modified > sent - 1:
            return None
    return last_modified.strip(_OWS)
