"""What the service shows of itself: the control API's JSON views and systemd's status line.

Built on demand from the jobs (``jobs.Job``) and what memory knows of the running ones
(``runner.Live``); the client side that draws them for people is ``statusview``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airsync.service.jobs import Job, JobQueue
from airsync.service.runner import Live


def job_view(job: Job, live: Live | None) -> dict[str, Any]:
    d = job.as_dict()
    del d["claims"], d["key"]
    d["progress"] = live.view() if live is not None else None
    return d


def status_line(queue: JobQueue, live: Mapping[int, Live]) -> str:
    running, queued = queue.running(), queue.queued()
    if not running and not queued:
        return "idle; waiting for requests and media"
    line = f"{len(running)} running, {len(queued)} queued"
    for job in running[:1]:
        one = live.get(job.id)
        p = one.view() if one else {}
        files = f"{p.get('files_done', 0)}/{p.get('files_total') or '?'} files"
        line += f"; job {job.id} {job.kind.value} {job.label or job.target}: {files}, {p.get('rate', 0) / 2**20:.1f} MiB/s"
    return line
