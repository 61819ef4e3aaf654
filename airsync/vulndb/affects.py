"""Which module versions an OSV entry covers, decided as govulncheck decides it.

An entry's ``affected[]`` names a module and SEMVER ranges of events, ``introduced`` and
``fixed``, with versions written without the leading ``v`` (``"1.2.3"``, ``"0"`` for the
beginning of time). A range is the union of half-open intervals [introduced, fixed): the events
are sorted by version (``"0"`` first) and walked, each ``introduced`` opening and each ``fixed``
closing. An affected module with no ranges, or with no SEMVER range among them, covers every
version (golang.org/x/vuln internal/semver ``Affects``). Versions compare by semver precedence
(``airsync.goproxy.semver``: build metadata such as ``+incompatible`` ignored, an invalid version
lowest); module versions carry their ``v``, Go's own may be written ``go1.21.3``.

``fixed_version`` is the fix to upgrade to: the highest ``fixed`` of the SEMVER ranges, unless a
later ``introduced`` re-opens it (x/vuln ``NonSupersededFix``). Pure.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from airsync.goproxy import semver

__all__ = ["canonical", "less", "contains", "affects", "fixed_version"]

Events = Sequence[tuple[str, str]]


def canonical(v: str) -> str:
    """'1.2.3', 'v1.2.3' and 'go1.2.3' all as 'v1.2.3'."""
    v = v.removeprefix("v").removeprefix("go")
    return "v" + v


def less(a: str, b: str) -> bool:
    return semver.compare(canonical(a), canonical(b)) < 0


def _event_order(x: tuple[str, str], y: tuple[str, str]) -> int:
    if x == ("introduced", "0"):
        return 0 if y == x else -1
    if y == ("introduced", "0"):
        return 1
    return semver.compare(canonical(x[1]), canonical(y[1]))


def contains(events: Events, version: str) -> bool:
    """Is ``version`` inside the SEMVER range of ``events``?"""
    if not events:
        return True
    affected = False
    for kind, v in sorted(events, key=functools.cmp_to_key(_event_order)):  # stable, as Go's SliceStable
        if not affected and kind == "introduced":
            affected = v == "0" or not less(version, v)
        elif affected and kind == "fixed":
            affected = less(version, v)
    return affected


def affects(ranges: Sequence[Events], version: str) -> bool:
    """Do the SEMVER ``ranges`` of one affected module cover ``version``? With none (whether or
    not it had ranges of other types) every version is covered."""
    if not ranges:
        return True
    return any(contains(r, version) for r in ranges)


def fixed_version(ranges: Sequence[Events]) -> str:
    """The fix that is not superseded by a later introduction; '' when there is none."""
    latest = ""
    for events in ranges:
        for kind, v in events:
            if kind == "fixed" and (latest == "" or less(latest, v)):
                latest = v
        for kind, v in events:
            if kind == "introduced" and v != "0" and latest and less(latest, v):
                latest = ""
                break
    return latest
