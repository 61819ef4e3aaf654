"""What ``airsync status`` draws, from the control API's ``/v1/status`` answer.

Pure: a status dict in, a rich renderable out (the CLI prints it once, or redraws it with
``rich.live`` for ``--watch``). One line of daemon health, a table of jobs (kind, target,
state, files done/total, bytes, rate, ETA, last error; with progress bars when watching), and
under it the details a mirror job's summary has: the module versions no go.sum line pins, and
those whose checksum-database record could not be carried.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from airsync.units import human_bytes

STATE_STYLE = {"running": "cyan", "queued": "blue", "done": "green", "failed": "red",
               "cancelled": "yellow", "interrupted": "yellow"}
DETAIL_JOBS = 5  # finished jobs whose lists are shown
DETAIL_ITEMS = 5  # entries of each list shown


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def vulndb_age(modified: float, now: float) -> str:
    """'vulnerability database from 2026-12-01, 4 days old' (``modified``: its db.json time, epoch seconds)."""
    day = time.strftime("%Y-%m-%d", time.gmtime(modified))
    days = int(max(0.0, now - modified) // 86400)
    return f"vulnerability database from {day}, {days} day{'' if days == 1 else 's'} old"


def health_line(d: dict[str, Any], now: float | None = None) -> Text:
    now = time.time() if now is None else now
    if d.get("stopping"):
        head = Text("stopping", style="yellow")
    elif d.get("healthy"):
        head = Text("healthy", style="green")
    else:
        head = Text(f"UNHEALTHY: {d.get('problem') or 'supervisor stalled'}", style="bold red")
    t = Text("airsync daemon ")
    t.append(head)
    t.append(f"  pid {d['pid']}  up {_duration(d['uptime'])}  {d['running']} running, {d['queued']} queued"
             f"  mirror {d['mirror']}")
    if d.get("next_refresh"):
        t.append(f"  next refresh in {_duration(max(0.0, d['next_refresh'] - now))}")
    if d.get("vulndb_modified") is not None:
        t.append(f"\n{vulndb_age(d['vulndb_modified'], now)}")
    for note in d.get("notes") or ():
        t.append(f"\n{note}", style="yellow")
    if d.get("reload_error"):
        t.append(f"\nlast reload failed, running on the previous config: {d['reload_error']}", style="red")
    return t


def _files(job: dict[str, Any]) -> str:
    p = job.get("progress")
    r = job.get("result") or {}
    if p is not None and job["kind"] == "bundle":
        return ""  # counted in bytes (of the parts), shown in the bytes and progress columns
    if p is not None:
        return f"{p['files_done']}/{p['files_total'] if p['files_total'] is not None else '?'}"
    if job["kind"] == "mirror" and "fetched" in r:
        return f"{r['fetched']} new, {r['skipped']} had"
    if job["kind"] == "bundle" and "parts" in r:
        return f"{r['files']} in {r['parts']} part(s)"
    if job["kind"] == "usb" and "written" in r:
        return f"{r['written']} written, {r['unchanged']} had"
    return ""


def jobs_table(jobs: list[dict[str, Any]], bars: bool = False) -> Table:
    t = Table(show_edge=False, pad_edge=False, expand=False)
    for col in ("id", "kind", "target", "state", "files", "bytes", "rate", "ETA", "last error"):
        t.add_column(col, overflow="fold", justify="right" if col in ("id", "bytes", "rate", "ETA") else "left")
    if bars:
        t.add_column("progress", width=22)
    for job in jobs:
        p = job.get("progress")
        r = job.get("result") or {}
        target = job["target"] + (f" ({job['label']})" if job.get("label") and job["kind"] == "usb" else "")
        if job["kind"] == "mirror":
            target = job.get("label") or job["source"]
        done_bytes = p["bytes"] if p else r.get("bytes")
        state = job["state"] + (" (cancelling)" if p and p.get("cancelling") else "")
        # Text, never str: a plain string is read as rich markup, and labels, targets and errors
        # are the user's ("[/x]" raised MarkupError, "[red]x" was drawn red).
        row: list[RenderableType] = [
            Text(str(job["id"])), Text(job["kind"]), Text(target), Text(state, style=STATE_STYLE.get(job["state"], "")),
            Text(_files(job)), Text(human_bytes(done_bytes) if done_bytes is not None else ""),
            Text(f"{human_bytes(p['rate'])}/s" if p and p["rate"] else ""),
            Text(_duration(p.get("eta")) if p else ""),
            Text(job.get("error") or "", style="red"),
        ]
        if bars:
            if p and p.get("files_total"):
                row.append(ProgressBar(total=max(p["files_total"], 1), completed=p["files_done"], width=20))
            elif p and p.get("bytes_total"):
                row.append(ProgressBar(total=p["bytes_total"], completed=p["bytes"], width=20))
            elif p:
                row.append(ProgressBar(total=None, width=20))
            else:
                row.append("")
        t.add_row(*row)
    return t


def _listing(title: str, items: list[str], total: int | None = None) -> str:
    """``total``: how many there were, when ``items`` keeps only the first ones."""
    total = max(total or 0, len(items))
    more = f" and {total - min(len(items), DETAIL_ITEMS)} more" if total > DETAIL_ITEMS else ""
    return f"{title} ({total}): {', '.join(items[:DETAIL_ITEMS])}{more}"


def details(jobs: list[dict[str, Any]]) -> list[Text]:
    """What recent mirror jobs could not vouch for, and input files with bad lines."""
    lines: list[Text] = []
    shown = 0
    for job in jobs:
        r = job.get("result") or {}
        parts = []
        if r.get("unpinned"):
            parts.append(_listing("not hash-pinned by any go.sum", r["unpinned"], r.get("unpinned_count")))
        if r.get("not_carried"):
            parts.append(_listing("checksum database not carried for", r["not_carried"], r.get("not_carried_count")))
        if r.get("input_problems"):
            parts.append(_listing("input problems", r["input_problems"], r.get("input_problem_count")))
        if r.get("unknown"):
            parts.append(_listing("files on the medium that are not ours (left alone)", r["unknown"],
                                  r.get("unknown_count")))
        if parts and shown < DETAIL_JOBS:
            shown += 1
            for part in parts:
                lines.append(Text(f"job {job['id']}: {part}", style="yellow"))
    return lines


def render(status: dict[str, Any], bars: bool = False) -> RenderableType:
    jobs = status["jobs"]
    parts: list[RenderableType] = [health_line(status["daemon"])]
    parts.append(jobs_table(jobs, bars) if jobs else Text("no jobs yet"))
    parts += details(jobs)
    return Group(*parts)
