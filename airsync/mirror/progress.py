"""Live progress on a terminal and the final summary of a mirror job.

The display only reads the job's ``Stats`` counters a few times a second: downloads never wait
for it. Off a terminal there is no display; the structured log and the summary say it all.
"""

from __future__ import annotations

import sys
import time

from typing import TYPE_CHECKING

import trio

from airsync.fetch.fetcher import Stats
from airsync.mirror.job import Summary
from airsync.units import count, human_bytes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = ["show", "summary_text"]


def _line(stats: Stats, elapsed: float, rate: float) -> Text:
    from rich.text import Text

    done = stats.files_done + stats.files_skipped + stats.files_failed
    total = max(stats.files_total, 1)
    width = 30
    filled = int(width * done / total)
    eta = ""
    if rate > 0 and 0 < done < total and elapsed > 1:
        # Files not yet started have unknown sizes, so take the larger of the byte-based and
        # the file-count-based estimates.
        left = stats.bytes_expected - stats.bytes_received - stats.bytes_resumed
        eta = f"  ETA {max(left / rate, elapsed * (total - done) / done, 0.0):.0f}s"
    return Text(
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{stats.files_total} files  "
        f"{human_bytes(stats.bytes_received)}  {human_bytes(rate)}/s  "
        f"retries {stats.retries}  failed {stats.files_failed}{eta}"
    )


async def show(stats: Stats, console: Console | None = None) -> None:
    """Redraw until cancelled."""
    # rich is imported only where progress is drawn: the summary alone needs none of it.
    from rich.console import Console
    from rich.live import Live

    console = console or Console(file=sys.stderr)
    start = time.monotonic()
    last_t, last_b, rate = start, 0, 0.0
    with Live(_line(stats, 0, 0), console=console, refresh_per_second=8, transient=True) as live:
        while True:
            await trio.sleep(0.25)
            now = time.monotonic()
            # Smooth the rate so that one burst does not make the ETA jump around.
            inst = (stats.bytes_received - last_b) / max(now - last_t, 1e-6)
            rate = inst if rate == 0 else 0.7 * rate + 0.3 * inst
            last_t, last_b = now, stats.bytes_received
            live.update(_line(stats, now - start, rate))


def summary_text(s: Summary) -> str:
    mb = s.bytes / 1e6
    rate = mb / s.seconds if s.seconds > 0 else 0.0
    lines = [
        f"airsync mirror: fetched {count(s.fetched, 'file')} ({human_bytes(s.bytes)}, {rate:.1f} MB/s) "
        f"in {s.seconds:.1f}s; skipped {s.skipped} already mirrored; failed {len(s.failures)}; "
        f"retries {s.retries}"
        + (f"; resumed {human_bytes(s.resumed_bytes)} from an earlier run" if s.resumed_bytes else "")
    ]
    if s.sumdb_carried:
        lines.append(f"checksum database: proved and carried {s.sumdb_carried} new record(s)")
    if s.fatal:
        lines.append(f"STOPPED: {s.fatal}")
    for f in s.failures:
        lines.append(f"  FAILED {f.file}: {f.message}")
    if s.not_carried:
        lines.append(
            f"warning: the checksum database was not carried for {len(s.not_carried)} module version(s) "
            "(it could not be reached; go.sum pins them): " + ", ".join(s.not_carried[:20])
            + (" ..." if len(s.not_carried) > 20 else "")
        )
    if s.unpinned:
        lines.append(
            f"warning: {len(s.unpinned)} module version(s) are not hash-pinned by any go.sum line "
            "(nothing vouched for their bytes): " + ", ".join(s.unpinned[:20])
            + (" ..." if len(s.unpinned) > 20 else "")
        )
    return "\n".join(lines)
