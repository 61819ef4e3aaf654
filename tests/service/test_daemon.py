"""The service: in-process and as a subprocess, against a real upstream on 127.0.0.1 or file://.

A fake ``$NOTIFY_SOCKET`` receives READY/STATUS/WATCHDOG/STOPPING; a go.sum renamed into the
requests directory becomes a finished mirror job; SIGTERM in the middle of a download leaves
state that the next start resumes; SIGHUP with a broken config keeps the old one and logs why.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
import trio

from airsync import config, sample
from airsync.service import sdnotify
from airsync.service.daemon import Daemon
from airsync.service.jobdb import JobDB
from tests.helpers.daemonkit import Notify, Service, Unserved, drop_request, job_states, wait_for, write_config
from tests.helpers.faultserver import FOREVER, Fault, FaultServer


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    root = tmp_path / "up"
    sample.build_proxy_tree(root, sample.demo_modules())
    return root


def gosum() -> str:
    return sample.gosum_lines(sample.demo_modules())


def run_daemon(conf, body, env: dict | None = None):
    """Run ``body(daemon)`` while the daemon serves in the same trio loop; stop it after."""
    async def main():
        d = Daemon(conf, sdnotify.Notifier(env or {}))
        async with trio.open_nursery() as n:
            await n.start(d.serve)
            try:
                with trio.fail_after(60):
                    await body(d)
            finally:
                d.stop()
        return d

    return trio.run(main)


async def until(cond, timeout: float = 30):
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.05)


def test_in_process_request_file_becomes_a_finished_mirror_job(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))
    notify = Notify(tmp_path / "notify")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"}

    async def body(d: Daemon):
        await until(lambda: notify.has("READY=1"), 5)
        drop_request(conf.requests_dir, "go.sum", gosum())
        await until(lambda: any(j.state.value == "done" for j in d.queue.jobs.values()))
        await until(lambda: notify.has("WATCHDOG=1"))

    d = run_daemon(conf, body, env)
    assert notify.has("STOPPING=1") and notify.has("STATUS=")
    (job,) = d.queue.jobs.values()
    assert job.source == "request:go.sum" and job.result["fetched"] == 24 and job.error is None
    assert (tmp_path / "mirror/example.com/lib/strs/@v/list").exists()
    assert (conf.requests_dir / ".done/go.sum").exists() and not (conf.requests_dir / "go.sum").exists()
    db = JobDB(conf.state_db)
    assert [s for s, _, _ in db.transitions(job.id)] == ["queued", "running", "done"]
    db.close()
    assert not conf.control_socket.exists()  # removed on the way out
    notify.close()


def test_half_written_and_temporary_files_are_not_read(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri(), debounce=0.5))
    lines = gosum().splitlines(keepends=True)

    async def body(d: Daemon):
        req = conf.requests_dir
        (req / "go.sum.tmp").write_text("garbage that is never read\n")
        (req / ".hidden.sum").write_text("garbage\n")
        with open(req / "go.sum", "w") as f:  # written in place, slowly
            for line in lines:
                f.write(line)
                f.flush()
                await trio.sleep(0.05)
        await until(lambda: any(j.state.value == "done" for j in d.queue.jobs.values()))
        await trio.sleep(1)  # nothing more comes

    d = run_daemon(conf, body)
    (job,) = d.queue.jobs.values()  # one job, from the whole file
    assert job.result["input_problems"] == [] and job.result["fetched"] == 24


def test_bad_request_file_fails_and_is_set_aside(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))

    async def body(d: Daemon):
        drop_request(conf.requests_dir, "mods.txt", "not a module\n")
        await until(lambda: any(j.state.value == "failed" for j in d.queue.jobs.values()))

    d = run_daemon(conf, body)
    (job,) = d.queue.jobs.values()
    assert "mods.txt:1:" in job.error
    assert (conf.requests_dir / ".failed/mods.txt").exists()


def test_config_lists_and_sync_now(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri(), modules=["example.com/tools@v0.3.1"]))

    async def body(d: Daemon):
        await until(lambda: any(j.state.value == "done" for j in d.queue.jobs.values()))
        (again,) = d.sync_now()
        assert again.source == "sync-now"
        await until(lambda: d.queue.get(again.id).state.value == "done")

    d = run_daemon(conf, body)
    first, second = sorted(d.queue.jobs.values(), key=lambda j: j.id)
    assert first.result["fetched"] == 3 and second.result["fetched"] == 0 and second.result["skipped"] == 3
    assert first.result["unpinned"] == ["example.com/tools@v0.3.1"]  # nothing vouched for it


def test_subprocess_lifecycle_status_and_reload(tmp_path, upstream):
    cfg = write_config(tmp_path, upstream.as_uri())
    svc = Service(tmp_path, cfg, watchdog_usec=400_000)
    try:
        wait_for(lambda: svc.notify.has("WATCHDOG=1"), 10, "a watchdog ping")
        assert svc.notify.has("STATUS=idle")
        assert svc.socket.stat().st_mode & 0o777 == 0o660
        drop_request(tmp_path / "requests", "go.sum", gosum())
        wait_for(lambda: [j for j in job_states(svc.socket).values() if j["state"] == "done"], 30, "a finished job")

        r = svc.airsync("status", "--socket", str(svc.socket))
        assert r.returncode == 0, r.stderr
        assert "healthy" in r.stdout and "mirror" in r.stdout and "done" in r.stdout and "go.sum" in r.stdout
        r = svc.airsync("status", "--json", "--socket", str(svc.socket))
        status = json.loads(r.stdout)
        assert status["daemon"]["healthy"] and status["jobs"][0]["result"]["fetched"] == 24
        r = svc.airsync("status", "--watch", "--count", "2", "--interval", "0.1", "--socket", str(svc.socket))
        assert r.returncode == 0 and "done" in r.stdout

        # A broken config on SIGHUP: logged, the old one kept, the service still works.
        good = cfg.read_text()
        cfg.write_text(good + "bogus_key = 1\n")
        svc.signal(signal.SIGHUP)
        wait_for(lambda: "config reload failed" in svc.log.read_text(), 10, "the reload error in the log")
        assert "unknown key daemon.bogus_key" in svc.log.read_text()
        status = json.loads(svc.airsync("status", "--json", "--socket", str(svc.socket)).stdout)
        assert "daemon.bogus_key" in status["daemon"]["reload_error"] and status["daemon"]["reloads"] == 0
        r = svc.airsync("sync-now", "--socket", str(svc.socket))
        assert r.returncode == 0 and "nothing to refresh" in r.stdout
        cfg.write_text(good.replace("[daemon]", '[daemon]\nmodules = ["example.com/tools@v0.3.1"]'))
        svc.signal(signal.SIGHUP)
        wait_for(lambda: json.loads(svc.airsync("status", "--json", "--socket", str(svc.socket)).stdout)
                 ["daemon"]["reloads"] == 1, 10, "the reload")
        wait_for(lambda: any(j["source"] == "config" and j["state"] == "done"
                             for j in job_states(svc.socket).values()), 30, "the config's job")
    finally:
        code = svc.stop()
    assert code == 0, svc.log.read_text()
    assert svc.notify.has("STOPPING=1")
    assert "Traceback" not in svc.log.read_text()


def test_status_without_a_daemon(tmp_path):
    import subprocess
    import sys

    from tests.helpers.daemonkit import Service as _  # noqa: F401  (the helpers import cleanly)

    for args in (["status"], ["status", "--json"], ["sync-now"], ["jobs", "cancel", "1"],
                 ["usb-attach", str(tmp_path)]):
        r = subprocess.run([sys.executable, "-m", "airsync", *args, "--socket", str(tmp_path / "none.sock")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, args
        assert "daemon is not running" in r.stderr and "systemctl status airsync" in r.stderr
        assert "Traceback" not in r.stderr


def test_a_second_daemon_does_not_take_the_socket(tmp_path, upstream):
    cfg = write_config(tmp_path, upstream.as_uri())
    svc = Service(tmp_path, cfg)
    try:
        r = svc.airsync("run", "--config", str(cfg), timeout=60)
        assert r.returncode == 2 and "another airsync daemon is listening" in r.stderr
        assert svc.airsync("status", "--socket", str(svc.socket)).returncode == 0
    finally:
        assert svc.stop() == 0


def test_bad_config_exits_2_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[daemon]\nrefresh_interval = 'often'\n")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "airsync", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{cfg}: bad daemon.refresh_interval" in r.stderr and "Traceback" not in r.stderr


BIG = "example.com/big"
BIG_ZIP = f"{BIG}/@v/v1.0.0.zip"


def _stalled_upstream(tmp_path, seed: int) -> Path:
    up = tmp_path / "up"
    sample.build_proxy_tree(up, [sample.big_module(BIG, "v1.0.0", 24 << 20, seed=seed)])
    return up


def _download_in_flight(svc, tmp_path) -> dict:
    """Ask for the big module and wait until its download is surely under way (every stream
    of it stalls mid-body) and its received bytes reached a checkpoint; the running job."""
    drop_request(tmp_path / "requests", "big.txt", f"{BIG}@v1.0.0\n")

    def in_flight():
        jobs = [j for j in job_states(svc.socket).values() if j["state"] == "running"]
        return jobs and jobs[0]["progress"]["bytes"] >= 3 << 20 and jobs[0]

    job = wait_for(in_flight, 60, "a download in flight")
    time.sleep(0.5)
    return job


def _restart_and_finish(tmp_path, cfg, srv, up) -> tuple[dict, dict[int, str]]:
    """Start the service again with the upstream healthy; the job that finished the download
    (it must have resumed, fetching only what was missing) and every job's state."""
    srv.clear_faults()
    srv.reset_counters()
    svc = Service(tmp_path, cfg)
    try:
        done = wait_for(lambda: [j for j in job_states(svc.socket).values() if j["state"] == "done"],
                        60, "the resumed job")
        states = {j["id"]: j["state"] for j in job_states(svc.socket).values()}
    finally:
        assert svc.stop() == 0
    assert done[0]["result"]["resumed_bytes"] >= 2 << 20
    assert srv.total_bytes() < (up / BIG_ZIP).stat().st_size  # only what was missing crossed again
    assert (tmp_path / "mirror" / BIG_ZIP).read_bytes() == (up / BIG_ZIP).read_bytes()
    return done[0], states


@pytest.mark.e2e
def test_sigterm_mid_download_then_the_next_start_resumes(tmp_path):
    up = _stalled_upstream(tmp_path, seed=5)
    with FaultServer(up) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=(2 << 20) + 999, stall_seconds=60))
        cfg = write_config(tmp_path, srv.url)
        svc = Service(tmp_path, cfg)
        try:
            job = _download_in_flight(svc, tmp_path)
            started = time.monotonic()
            code = svc.stop(timeout=30)
            assert code == 0, svc.log.read_text()
            assert time.monotonic() - started < 15  # bounded
        finally:
            svc.close()
        assert svc.notify.has("STOPPING=1")
        db = JobDB(tmp_path / "state/daemon.db")
        jobs, _ = db.load(10)
        db.close()
        assert [(j.id, j.state.value) for j in jobs] == [(job["id"], "interrupted")]
        assert not (tmp_path / "mirror" / BIG_ZIP).exists()
        assert (tmp_path / "requests/big.txt").exists()  # still pending: the next start queues it
        _restart_and_finish(tmp_path, cfg, srv, up)


def test_kill_9_mid_download_then_the_next_start_resumes(tmp_path):
    up = _stalled_upstream(tmp_path, seed=6)
    with FaultServer(up) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=(2 << 20) + 999, stall_seconds=60))
        cfg = write_config(tmp_path, srv.url)
        svc = Service(tmp_path, cfg)
        try:
            job = _download_in_flight(svc, tmp_path)
            svc.proc.kill()  # no STOPPING, no clean-up: the socket file and a "running" row stay behind
            svc.proc.wait(timeout=10)
        finally:
            svc.close()
        assert svc.socket.exists()
        # A stale socket file does not stop the next start.
        _, states = _restart_and_finish(tmp_path, cfg, srv, up)
        assert states[job["id"]] == "interrupted"  # what the killed process left as running


# -- what a reviewer broke it with ------------------------------------------------------------

def test_a_request_file_name_that_is_not_utf8_is_left_alone(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))
    conf.requests_dir.mkdir(parents=True)
    bad = os.fsencode(conf.requests_dir) + b"/early\xff.sum"
    open(bad, "w").close()  # there at start: found by the listing

    async def body(d: Daemon):
        await trio.sleep(0.5)  # the watch has started: this one arrives as an event
        open(os.fsencode(conf.requests_dir) + b"/late\xfe.sum", "w").close()
        await trio.sleep(1)
        drop_request(conf.requests_dir, "go.sum", gosum())
        await until(lambda: any(j.state.value == "done" for j in d.queue.jobs.values()))
        assert "idle" in d.status_line()

    d = run_daemon(conf, body)  # before: watchfiles' "Unable to decode path" ended the service
    assert [j.label for j in d.queue.jobs.values()] == ["go.sum"]
    assert os.path.exists(bad)


def test_fifos_and_symlinks_in_the_requests_directory_are_not_read(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))
    conf.requests_dir.mkdir(parents=True)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "elsewhere.sum").write_text(gosum())

    def unblock():  # before the fix the service hung in a read of the FIFO: end it, so the test fails
        time.sleep(8)
        try:
            os.close(os.open(conf.requests_dir / "pipe.txt", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    threading.Thread(target=unblock, daemon=True).start()

    async def body(d: Daemon):
        await trio.sleep(0.5)
        os.rename(fifo, conf.requests_dir / "pipe.txt")
        os.symlink(tmp_path / "elsewhere.sum", conf.requests_dir / "link.sum")
        await trio.sleep(1)
        drop_request(conf.requests_dir, "go.sum", gosum())
        with trio.fail_after(5):
            await until(lambda: any(j.state.value == "done" for j in d.queue.jobs.values()))
        await trio.sleep(0.5)

    d = run_daemon(conf, body)
    assert [j.label for j in d.queue.jobs.values()] == ["go.sum"]
    # Set aside unread (before: they stayed forever, with no log and no job).
    failed = conf.requests_dir / ".failed"
    assert (failed / "link.sum").is_symlink() and os.readlink(failed / "link.sum") == str(tmp_path / "elsewhere.sum")
    assert stat.S_ISFIFO(os.lstat(failed / "pipe.txt").st_mode)
    assert not os.path.lexists(conf.requests_dir / "pipe.txt") and not os.path.lexists(conf.requests_dir / "link.sum")
    assert (tmp_path / "elsewhere.sum").read_text() == gosum()


def test_fifos_symlinks_and_directories_are_set_aside_with_a_logged_reason(tmp_path, upstream):
    from structlog.testing import capture_logs

    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))
    req = conf.requests_dir
    req.mkdir(parents=True)
    os.mkfifo(req / "early.sum")  # there at start: found by the first listing
    (req / "dir.mod").mkdir()
    (req / ".hidden").mkdir()  # dot-entries and *.tmp are someone's work: left alone
    os.mkfifo(req / "x.tmp")

    async def body(d: Daemon):
        await trio.sleep(0.5)
        os.mkfifo(req / "late.txt")  # arrives as an event
        os.symlink(upstream, req / "up.mod")
        await until(lambda: all(os.path.lexists(req / ".failed" / n)
                                for n in ("early.sum", "dir.mod", "late.txt", "up.mod")), 10)
        assert d.sync_now() == []

    with capture_logs() as logged:
        d = run_daemon(conf, body)
    assert not d.queue.jobs
    assert (req / ".hidden").is_dir() and os.path.lexists(req / "x.tmp")
    reasons = {os.path.basename(e["file"]): e["event"] for e in logged if "moved to .failed/" in e.get("event", "")}
    assert set(reasons) == {"early.sum", "dir.mod", "late.txt", "up.mod"}, logged
    assert "a FIFO" in reasons["early.sum"] and "a directory" in reasons["dir.mod"] and "a symlink" in reasons["up.mod"]


def test_read_request_refuses_what_is_no_regular_file(tmp_path):
    from airsync.service.intake import MAX_REQUEST, RequestFileError, read_request

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(RequestFileError, match="not a regular file"):
        read_request(tmp_path / "fifo", "modules")  # at once: never blocks
    (tmp_path / "real").write_text("example.com/a@v1.0.0\n")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(RequestFileError, match="a symlink"):
        read_request(tmp_path / "link", "modules")
    with open(tmp_path / "big", "wb") as f:
        f.truncate(MAX_REQUEST + 1)
    with pytest.raises(RequestFileError, match="at most"):
        read_request(tmp_path / "big", "modules")
    assert len(read_request(tmp_path / "real", "modules").modules) == 1


def test_large_bad_files_are_kept_short_and_set_aside(tmp_path, upstream):
    from airsync.service.intake import MAX_REQUEST
    from airsync.service.work import MAX_PROBLEMS

    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))

    async def body(d: Daemon):
        drop_request(conf.requests_dir, "bad.txt", "not a module\n" * 30_000)
        with open(conf.requests_dir / "huge.txt.tmp", "wb") as f:
            f.truncate(MAX_REQUEST + 1)
        os.replace(conf.requests_dir / "huge.txt.tmp", conf.requests_dir / "huge.txt")
        await until(lambda: len([j for j in d.queue.jobs.values() if j.state.value == "failed"]) == 2)

    d = run_daemon(conf, body)
    jobs = {j.label: j for j in d.queue.jobs.values()}
    bad = jobs["bad.txt"].result
    assert len(bad["input_problems"]) == MAX_PROBLEMS and bad["input_problem_count"] == 30_000
    assert "at most" in jobs["huge.txt"].error
    assert (conf.requests_dir / ".failed/bad.txt").exists() and (conf.requests_dir / ".failed/huge.txt").exists()


def test_sync_now_waits_for_a_file_to_settle_and_an_empty_file_is_set_aside(tmp_path, upstream):
    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri(), debounce=0.3))

    async def body(d: Daemon):
        drop_request(conf.requests_dir, "empty.txt", "# only a comment\n")
        await until(lambda: (conf.requests_dir / ".failed/empty.txt").exists())
        await trio.sleep(2.5)  # a listing after the move: nothing comes back
        with open(conf.requests_dir / "half.txt", "w") as f:  # still being written
            f.write("example.com/to")
            f.flush()
            assert d.sync_now() == []  # not read half-written
        assert d.sync_now() == []  # written, but not settled yet

    d = run_daemon(conf, body)
    (job,) = d.queue.jobs.values()
    assert job.state.value == "failed" and "nothing to mirror" in job.error
    assert not (conf.requests_dir / "empty.txt").exists()


def test_a_second_daemon_leaves_the_first_ones_jobs_alone(tmp_path, upstream):
    import dataclasses

    from airsync.errors import ConfigError
    from airsync.service.jobs import Job, Kind, State

    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))

    async def body(d: Daemon):
        d.ledger.db.save(Job(999, Kind.MIRROR, "/m", "request:x", "request:x", frozenset(), 1.0,
                      state=State.RUNNING, started=2.0), 2.0)
        with pytest.raises(ConfigError, match="another airsync daemon is listening"):
            Daemon(conf, sdnotify.Notifier({}))
        other = dataclasses.replace(conf, control_socket=tmp_path / "other.sock")
        with pytest.raises(ConfigError, match="another airsync daemon uses this state database"):
            Daemon(other, sdnotify.Notifier({}))
        db = JobDB(conf.state_db)
        (job,) = [j for j in db.load(10)[0] if j.id == 999]
        db.close()
        assert job.state.value == "running"

    run_daemon(conf, body)
    Unserved(conf).__exit__()  # stopped: the lock is free again


def test_submitting_survives_a_broken_job_database(tmp_path, upstream, monkeypatch):
    from airsync.service.jobdb import JobDBError

    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri()))
    with Unserved(conf) as d:
        def broken(job, at):
            raise JobDBError("disk full")

        monkeypatch.setattr(d.ledger.db, "save", broken)
        _, new = d.submit_mirror("request:x", "request:x")
        assert new and d.ledger.problem == "job database: disk full"


def test_reload_keeps_the_config_on_infinite_sizes_and_on_bugs(tmp_path, upstream, monkeypatch):
    cfg = write_config(tmp_path, upstream.as_uri())
    conf = config.load_daemon(cfg)
    with Unserved(conf) as d:
        cfg.write_text(cfg.read_text().replace("[mirror]", "[mirror]\nchunk_size = \"1e400\""))
        d.reload()
        assert d.conf is conf and "mirror.chunk_size" in d.reload_error

        def bug(path):
            raise RuntimeError("a bug")

        monkeypatch.setattr(config, "load_daemon", bug)
        d.reload()
        assert d.conf is conf and "a bug" in d.reload_error


def test_finished_jobs_are_forgotten_while_running(tmp_path, upstream):
    from airsync.service.jobs import Job, Kind, State

    conf = config.load_daemon(write_config(tmp_path, upstream.as_uri(), history=2))

    async def body(d: Daemon):
        for i in range(100, 110):
            d.queue.jobs[i] = Job(i, Kind.MIRROR, "/m", "x", f"x{i}", frozenset(), 1.0, state=State.DONE, finished=i)
        await until(lambda: len(d.queue.jobs) <= 2, 5)

    run_daemon(conf, body)
