"""The control API and USB jobs, through the real client over the real unix socket.

The daemon serves in-process; the CLI-facing ``controlclient.Client`` runs in a worker thread (it is
synchronous, like the CLI). USB jobs go to a directory standing in for a mount point, and
(as root, like CI) to a FAT file system mounted with fusefat, including a stick pulled mid-sync.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from airsync import config, sample
from airsync.carry import manifest
from airsync.carry.verify import verify_medium
from airsync.service import marker, sdnotify
from airsync.service.controlclient import Client, ControlError
from airsync.service.daemon import Daemon
from tests.helpers.daemonkit import Service, Unserved, drop_request, job_states, wait_for, write_config
from tests.helpers.fat import need_tool


@pytest.fixture
def setup(tmp_path: Path):
    up = tmp_path / "up"
    sample.build_proxy_tree(up, sample.demo_modules())
    manifest.keygen(tmp_path / "k")
    conf = config.load_daemon(write_config(tmp_path, up.as_uri()))
    return conf


def serve_and(conf, body):
    """Run the daemon with a mirrored go.sum, then ``body(daemon, call)`` where ``call(fn, *a)``
    runs a Client method in a thread."""
    async def main():
        d = Daemon(conf, sdnotify.Notifier({}))
        client = Client(conf.control_socket)

        async def call(fn, *args, **kw):
            return await trio.to_thread.run_sync(lambda: fn(client, *args, **kw))

        async with trio.open_nursery() as n:
            await n.start(d.serve)
            try:
                with trio.fail_after(90):
                    drop_request(conf.requests_dir, "go.sum", sample.gosum_lines(sample.demo_modules()))
                    while not any(j.state.value == "done" for j in d.queue.jobs.values()):
                        await trio.sleep(0.05)
                    await body(d, call)
            finally:
                client.__exit__()
                d.stop()
        return d

    return trio.run(main)


def marked_sticks(tmp_path: Path, *names: str) -> list[Path]:
    """Directories standing in for mounted media, each prepared with usb-init's marker."""
    sticks = []
    for name in names:
        s = tmp_path / "media" / name
        s.mkdir(parents=True)
        marker.write(s, name)
        sticks.append(s)
    return sticks


async def finished(d: Daemon, job_id: int) -> None:
    with trio.fail_after(60):
        while not d.queue.get(job_id).state.terminal:
            await trio.sleep(0.05)


def test_api_errors_are_json_with_status_codes(setup):
    conf = setup

    async def body(d, call):
        def raw(c: Client, method: str, url: str, body: object = None, content: bytes | None = None):
            status, answer = c.request(method, url, json.dumps(body).encode() if body is not None else content)
            return status, json.loads(answer)

        status, answer = await call(raw, "POST", "/v1/jobs/999/cancel")
        assert status == 404 and answer == {"error": "no job 999"}
        status, answer = await call(raw, "GET", "/v1/jobs/abc")
        assert status == 404
        status, answer = await call(raw, "POST", "/v1/jobs/1/cancel")
        assert status == 409 and "already done" in answer["error"]
        status, answer = await call(raw, "POST", "/v1/usb-attach", content=b"not json")
        assert status == 400
        status, answer = await call(raw, "POST", "/v1/usb-attach", {"path": 3})
        assert status == 400
        status, answer = await call(raw, "GET", "/v1/jobs/1")
        assert status == 200 and answer["job"]["state"] == "done"
        status, answer = await call(raw, "GET", "/v1/jobs")
        assert [j["id"] for j in answer["jobs"]] == [1]
        status, answer = await call(raw, "GET", "/v2/status")
        assert status == 404 and "error" in answer  # JSON, not Starlette's plain text
        status, answer = await call(raw, "GET", "/v1/sync-now")
        assert status == 405 and "error" in answer
        status, answer = await call(raw, "POST", "/v1/usb-attach", {"path": "/media/a\0b"})
        assert status == 422 and "NUL" in answer["error"]

    serve_and(conf, body)


def test_usb_job_to_a_directory(setup, tmp_path):
    conf = setup
    stick = tmp_path / "media" / "sdb1"
    stick.mkdir(parents=True)

    async def body(d, call):
        with pytest.raises(ControlError, match="not an airsync medium; refusing"):
            await call(Client.usb_attach, str(stick), "sdb1")
        assert not any(stick.iterdir())  # nothing written to a stick without the marker
        marker.write(stick, "stick-a")
        answer = await call(Client.usb_attach, str(stick), "sdb1")
        assert answer["new"] and answer["job"]["kind"] == "usb" and answer["job"]["label"] == "stick-a, sdb1"
        await finished(d, answer["job"]["id"])
        job = d.queue.get(answer["job"]["id"])
        assert job.state.value == "done", job.error
        assert job.result["written"] > 20
        again = await call(Client.usb_attach, str(stick), "sdb1")  # a no-op resync
        await finished(d, again["job"]["id"])
        assert d.queue.get(again["job"]["id"]).result["written"] == 0

    serve_and(conf, body)
    report = verify_medium(stick, manifest.load_verifier(tmp_path / "k.pub"))
    assert report.ok, report.lines()
    assert marker.read(stick).label == "stick-a"  # the marker stays, outside the manifest


def test_two_media_sync_side_by_side(setup, tmp_path):
    conf = setup
    sticks = marked_sticks(tmp_path, "a", "b")

    async def body(d, call):
        answers = [await call(Client.usb_attach, str(s), s.name) for s in sticks]
        ids = [a["job"]["id"] for a in answers]
        # Both may start at once: syncs share the mirror (a mirror job would not).
        assert {d.queue.get(i).state.value for i in ids} <= {"queued", "running", "done"}
        for i in ids:
            await finished(d, i)
            assert d.queue.get(i).state.value == "done", d.queue.get(i).error

    serve_and(conf, body)
    for s in sticks:
        report = verify_medium(s, manifest.load_verifier(tmp_path / "k.pub"))
        assert report.ok, report.lines()


def test_cancel_a_queued_job_and_a_missing_signing_key(setup, tmp_path):
    conf = setup
    (tmp_path / "k.key").unlink()
    sticks = marked_sticks(tmp_path, "a", "b")

    async def body(d, call):
        # The second may already run beside the first (syncs share the mirror); cancel it if queued.
        first = await call(Client.usb_attach, str(sticks[0]), "a")
        second = await call(Client.usb_attach, str(sticks[1]), "b")
        if d.queue.get(second["job"]["id"]).state.value == "queued":
            cancelled = await call(Client.cancel, str(second["job"]["id"]))
            assert cancelled["state"] == "cancelled"
        await finished(d, first["job"]["id"])
        job = d.queue.get(first["job"]["id"])
        assert job.state.value == "failed" and "signing key" in job.error and "k.key" in job.error

    serve_and(conf, body)


def test_cli_usb_init_and_attach_against_the_subprocess_service(setup, tmp_path):
    cfg = setup.path
    stick = tmp_path / "media" / "sdc1"
    stick.mkdir(parents=True)
    svc = Service(tmp_path, cfg)
    try:
        drop_request(tmp_path / "requests", "go.sum", sample.gosum_lines(sample.demo_modules()))
        wait_for(lambda: any(j["state"] == "done" for j in job_states(svc.socket).values()), 30, "the mirror job")
        r = svc.airsync("usb-attach", str(stick), "--label", "sdc1", "--socket", str(svc.socket))
        assert r.returncode == 1 and "not an airsync medium" in r.stderr and "airsync usb-init" in r.stderr
        r = svc.airsync("usb-init", str(stick), "--label", "blue")
        assert r.returncode == 0 and "label 'blue'" in r.stdout
        r = svc.airsync("usb-init", str(stick))
        assert r.returncode == 1 and "already is a medium" in r.stderr
        r = svc.airsync("usb-attach", str(stick), "--label", "sdc1", "--socket", str(svc.socket))
        assert r.returncode == 0, r.stderr
        # As sync-now prints its jobs (before: a bare id); the label is the marker's, then the unit's.
        m = re.fullmatch(rf"job (\d+): usb blue, sdc1 at {re.escape(str(stick))} \((queued|running)\)\n", r.stdout)
        assert m, r.stdout
        job_id = int(m[1])
        job = wait_for(lambda: (j := job_states(svc.socket)[job_id])["state"] in ("done", "failed") and j, 60, "sync")
        assert job["state"] == "done", job["error"]
        r = svc.airsync("jobs", "cancel", str(job_id), "--socket", str(svc.socket))
        assert r.returncode == 1 and "already done" in r.stderr
        r = svc.airsync("jobs", "cancel", "abc", "--socket", str(svc.socket))  # before: "no job abc", exit 1
        assert r.returncode == 2 and "'abc' is not a job id" in r.stderr, r.stderr
        r = svc.airsync("usb-attach", "--quiet", str(stick), "--socket", str(svc.socket))  # for scripts
        assert r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout) > job_id, r.stdout
        again = int(r.stdout)
        wait_for(lambda: job_states(svc.socket)[again]["state"] in ("done", "failed"), 60, "the resync")
        r = svc.airsync("status", "--socket", str(svc.socket))
        assert "usb" in r.stdout and "sdc1" in r.stdout
        for json_flag in (["--json"], []):  # airsync status | head: the reader went away
            read, write = os.pipe()
            os.close(read)
            r = subprocess.run([sys.executable, "-m", "airsync", "status", *json_flag, "--socket", str(svc.socket)],
                               stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
            os.close(write)
            assert r.returncode == 1 and r.stderr == "", r.stderr  # quietly, as rich does
    finally:
        assert svc.stop() == 0


@pytest.mark.e2e
def test_usb_jobs_on_fat_including_a_pulled_stick(tmp_path, fat):  # noqa: F811
    mnt, state, mount, img = fat
    up = tmp_path / "up"
    sample.build_proxy_tree(up, [sample.big_module("example.com/big", "v1.0.0", 40 << 20, seed=9)])
    manifest.keygen(tmp_path / "k")
    cfg = write_config(tmp_path, up.as_uri())
    svc = Service(tmp_path, cfg)
    try:
        drop_request(tmp_path / "requests", "mods.txt", "example.com/big@v1.0.0\n")
        wait_for(lambda: any(j["state"] == "done" for j in job_states(svc.socket).values()), 60, "the mirror job")
        assert svc.airsync("usb-init", str(mnt)).returncode == 0
        r = svc.airsync("usb-attach", "--quiet", str(mnt), "--socket", str(svc.socket))
        job_id = int(r.stdout.strip())
        staging = mnt / ".airsync-partial"
        wait_for(lambda: staging.is_dir() and any(p.name.endswith(".part") and p.stat().st_size > (4 << 20)
                                                  for p in staging.iterdir()), 60, "the copy to get going",
                 interval=0.02)
        state["proc"].send_signal(signal.SIGKILL)  # the stick is pulled
        job = wait_for(lambda: (j := job_states(svc.socket)[job_id])["state"] != "running" and j, 60, "the failure")
        assert job["state"] == "failed" and "run the sync again" in job["error"]
        subprocess.run(["fusermount", "-u", "-z", str(mnt)], capture_output=True)
        state["proc"].wait(timeout=10)
        subprocess.run([need_tool("fsck.vfat"), "-a", "-w", str(img)], capture_output=True)
        state["proc"] = mount()  # plugged in again: the template unit attaches it again
        wait_for(lambda: marker.read(mnt) and os.statvfs(mnt), 10, "the remounted stick to answer")
        r = svc.airsync("usb-attach", "--quiet", str(mnt), "--socket", str(svc.socket))
        job_id = int(r.stdout.strip())
        job = wait_for(lambda: (j := job_states(svc.socket)[job_id])["state"] not in ("queued", "running") and j,
                       120, "the resumed sync")
        assert job["state"] == "done", job["error"]
    finally:
        assert svc.stop() == 0
    r = subprocess.run([sys.executable, "-m", "airsync", "verify", str(mnt), "--key", str(tmp_path / "k.pub")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_status_with_a_job_named_after_a_file_that_is_not_utf8(setup):
    conf = setup

    async def body(d, call):
        d.submit_mirror("request:bad\udcff.sum", "request:bad\udcff.sum", label="bad\udcff.sum")
        d.next_refresh = float("inf")
        status = await call(Client.status)  # before: 500 (JSONResponse cannot encode it)
        assert any(j["label"] == "bad\\xff.sum" for j in status["jobs"])
        assert status["daemon"]["next_refresh"] is None

    serve_and(conf, body)


def test_one_medium_by_two_paths_is_one_job(setup, tmp_path):
    stick = tmp_path / "media" / "sdb1"
    stick.mkdir(parents=True)
    marker.write(stick, "blue")
    os.symlink(stick, tmp_path / "media" / "link")
    bind = tmp_path / "media" / "copy"  # a bind mount stands in as a copy: same marker, other path
    bind.mkdir()
    (bind / marker.MARKER).write_bytes((stick / marker.MARKER).read_bytes())
    with Unserved(setup) as d:
        first, new = d.usb_attach(str(stick), "")
        assert new and first.target == str(stick)
        for other in (tmp_path / "media/sdb1/../sdb1", tmp_path / "media/link", bind):
            job, new = d.usb_attach(str(other), "")
            assert job.id == first.id and not new, other


def test_a_medium_that_overlaps_the_services_directories_is_refused(setup, tmp_path):
    conf = setup
    inside = conf.mirror_dir / "sub"
    inside.mkdir(parents=True)
    marker.write(inside, "nested")
    marker.write(tmp_path, "everything")  # contains the mirror, requests and state
    with Unserved(conf) as d:
        for target, what in ((inside, "the mirror"), (tmp_path, "the mirror")):
            with pytest.raises(config.ConfigError, match=f"overlaps {what}") as e:
                d.usb_attach(str(target), "")
            assert "marker" not in str(e.value)  # marked: only the overlap is wrong
        unmarked = conf.state_db.parent / "stick"
        unmarked.mkdir(parents=True)
        with pytest.raises(config.ConfigError, match="overlaps the state directory") as e:
            d.usb_attach(str(unmarked), "")
        assert "nor is it an airsync medium" in str(e.value) and "usb-init" in str(e.value)  # both, at once
        assert not d.queue.jobs


def test_an_interrupted_sync_resumes_at_start_if_its_medium_is_still_there(setup, tmp_path):
    from airsync.service.jobdb import JobDB
    from airsync.service.jobs import Job, Kind, State, usb_claims

    conf = setup
    there, gone = tmp_path / "media/there", tmp_path / "media/gone"
    for s in (there, gone):
        s.mkdir(parents=True)
    kept = marker.write(there, "there")
    marker.write(gone, "other")  # another stick is mounted where the interrupted one was
    db = JobDB(conf.state_db)
    for i, (target, mid) in enumerate(((there, kept.id), (gone, "0123456789abcdef")), 1):
        db.save(Job(i, Kind.USB, str(target), "usb-attach", f"usb:{mid}", usb_claims(mid), 1.0, label=target.name,
                    state=State.INTERRUPTED, finished=2.0, error="the service stopped"), 2.0)
    db.close()

    async def main():
        d = Daemon(conf, sdnotify.Notifier({}))
        async with trio.open_nursery() as n:
            await n.start(d.serve)
            with trio.fail_after(20):
                while not any(j.source == "resume" and j.state.terminal for j in d.queue.jobs.values()):
                    await trio.sleep(0.05)
            await trio.sleep(0.5)
            d.stop()
        return d

    d = trio.run(main)
    (resumed,) = [j for j in d.queue.jobs.values() if j.source == "resume"]
    assert resumed.target == str(there) and resumed.key == f"usb:{kept.id}" and resumed.label == "there"


class FakeClient:
    """Stands in for ``controlclient.Client`` in the CLI's handlers: canned answers, no service."""

    def __init__(self, **answers) -> None:
        self.answers = answers

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def cancel(self, job_id):
        return self.answers["cancel"]

    def usb_attach(self, path, label):
        return self.answers["usb_attach"]


def test_cli_says_what_cancelling_did(monkeypatch, capsys):
    from airsync.service import commands

    job = {"id": 7, "kind": "usb", "target": "/run/airsync-media/sdb1", "label": "blue, sdb1"}
    args = argparse.Namespace(id=7, socket="/nonexistent")
    monkeypatch.setattr(commands, "_client", lambda _a: FakeClient(cancel={**job, "state": "cancelled"}))
    assert commands.cmd_jobs_cancel(args) == 0
    assert capsys.readouterr().out == "job 7 (usb blue, sdb1): cancelled (it had not started)\n"
    monkeypatch.setattr(commands, "_client", lambda _a: FakeClient(cancel={**job, "state": "running"}))
    assert commands.cmd_jobs_cancel(args) == 0
    assert "stopping (it ends at a safe point; a rerun resumes)" in capsys.readouterr().out


def test_cli_usb_attach_prints_the_job_or_only_its_id(monkeypatch, capsys):
    from airsync.service import commands

    job = {"id": 7, "kind": "usb", "target": "/run/airsync-media/sdb1", "label": "blue, sdb1", "state": "queued"}
    monkeypatch.setattr(commands, "_client", lambda _a: FakeClient(usb_attach={"job": job, "new": True}))
    args = argparse.Namespace(path="/run/airsync-media/sdb1", label="sdb1", socket="/x", quiet=False)
    assert commands.cmd_usb_attach(args) == 0
    assert capsys.readouterr().out == "job 7: usb blue, sdb1 at /run/airsync-media/sdb1 (queued)\n"
    assert commands.cmd_usb_attach(argparse.Namespace(**{**vars(args), "quiet": True})) == 0
    assert capsys.readouterr().out == "7\n"


@pytest.mark.parametrize("text", ["abc", "0", "-1", "1.5", "", "\u0663"])
def test_a_job_id_that_is_no_number_is_a_usage_error(text, capsys):
    from airsync.cli import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["jobs", "cancel", "--", text])
    assert e.value.code == 2 and "is not a job id" in capsys.readouterr().err


def test_status_note_for_a_missing_signing_key(setup, tmp_path):
    from structlog.testing import capture_logs

    conf = setup
    key = tmp_path / "k.key"
    from airsync.service.lifecycle import config_warnings

    assert config_warnings(conf) == []
    key.rename(tmp_path / "k.key.away")

    async def body(d, call):
        status = await call(Client.status)
        assert status["daemon"]["healthy"]  # mirror jobs still work: not a reason to stop
        (note,) = status["daemon"]["notes"]
        assert f"signing key {key} missing: USB jobs will fail" in note
        (tmp_path / "k.key.away").rename(key)  # fixed: the note goes at once
        assert (await call(Client.status))["daemon"]["notes"] == []
        key.rename(tmp_path / "k.key.away")
        d.reload()

    with capture_logs() as logged:
        serve_and(conf, body)
    warned = [e for e in logged if e["log_level"] == "warning" and "USB jobs will fail" in e.get("problem", "")]
    assert len(warned) == 2, logged  # at start and at the reload
