"""service.views: the control API's job views and systemd's status line."""

from __future__ import annotations

from airsync.service.jobs import JobQueue, Kind, State, mirror_claims, usb_claims
from airsync.service.runner import Live
from airsync.service.views import job_view, status_line


def test_status_line_names_the_first_running_job_and_its_progress():
    q = JobQueue()
    assert status_line(q, {}) == "idle; waiting for requests and media"
    job, _ = q.submit(Kind.MIRROR, "/m", "config", "config", mirror_claims(), 1.0, label="go.sum")
    q.submit(Kind.USB, "/media/a", "usb-attach", "usb:a", usb_claims("a"), 2.0)
    q.move(job.id, State.RUNNING, 3.0)
    live = Live(files_done=3, files_total=10)
    assert status_line(q, {job.id: live}) == "1 running, 1 queued; job 1 mirror go.sum: 3/10 files, 0.0 MiB/s"
    assert status_line(q, {}).endswith("0/? files, 0.0 MiB/s")


def test_job_view_hides_internals_and_shows_progress_only_while_running():
    q = JobQueue()
    job, _ = q.submit(Kind.USB, "/media/a", "usb-attach", "usb:a", usb_claims("a"), 1.0)
    view = job_view(job, None)
    assert "claims" not in view and "key" not in view and view["progress"] is None
    assert view["kind"] == "usb" and view["state"] == "queued"
    view = job_view(job, Live(bytes_done=5, bytes_total=10))
    assert view["progress"]["bytes"] == 5 and view["progress"]["bytes_total"] == 10
