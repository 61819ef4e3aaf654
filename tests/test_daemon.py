"""The service: in-process and as a subprocess, against a real upstream on 127.0.0.1 or file://.

A fake ``$NOTIFY_SOCKET`` receives READY/STATUS/WATCHDOG/STOPPING; a go.sum renamed into the
requests directory becomes a finished mirror job; SIGTERM in the middle of a download leaves
state that the next start resumes; SIGHUP with a broken config keeps the old one and logs why.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import trio

from airsync import config, sample, sdnotify
from airsync.daemon import Daemon
from airsync.jobdb import JobDB
from daemonkit import Notify, Service, drop_request, job_states, wait_for, write_config
from faultserver import FOREVER, Fault, FaultServer


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
    from daemonkit import Service as _  # noqa: F401  (the helpers import cleanly)
    import subprocess
    import sys

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


@pytest.mark.e2e
def test_sigterm_mid_download_then_the_next_start_resumes(tmp_path):
    up = tmp_path / "up"
    sample.build_proxy_tree(up, [sample.big_module(BIG, "v1.0.0", 24 << 20, seed=5)])
    with FaultServer(up) as srv:
        # Every stream of the big zip stalls mid-body: a download is surely in flight at SIGTERM.
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=(2 << 20) + 999, stall_seconds=60))
        cfg = write_config(tmp_path, srv.url)
        svc = Service(tmp_path, cfg)
        try:
            drop_request(tmp_path / "requests", "big.txt", f"{BIG}@v1.0.0\n")

            def in_flight():
                jobs = [j for j in job_states(svc.socket).values() if j["state"] == "running"]
                return jobs and jobs[0]["progress"]["bytes"] >= 3 << 20 and jobs[0]

            job = wait_for(in_flight, 60, "a download in flight")
            time.sleep(0.5)  # let the received bytes reach a checkpoint
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

        srv.clear_faults()
        srv.reset_counters()
        svc = Service(tmp_path, cfg)
        try:
            done = wait_for(lambda: [j for j in job_states(svc.socket).values() if j["state"] == "done"],
                            60, "the resumed job")
        finally:
            assert svc.stop() == 0
        assert done[0]["result"]["resumed_bytes"] >= 2 << 20
        size = (up / BIG_ZIP).stat().st_size
        assert srv.total_bytes() < size  # only what was missing crossed again
        assert (tmp_path / "mirror" / BIG_ZIP).read_bytes() == (up / BIG_ZIP).read_bytes()


def test_kill_9_mid_download_then_the_next_start_resumes(tmp_path):
    up = tmp_path / "up"
    sample.build_proxy_tree(up, [sample.big_module(BIG, "v1.0.0", 24 << 20, seed=6)])
    with FaultServer(up) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=(2 << 20) + 999, stall_seconds=60))
        cfg = write_config(tmp_path, srv.url)
        svc = Service(tmp_path, cfg)
        try:
            drop_request(tmp_path / "requests", "big.txt", f"{BIG}@v1.0.0\n")

            def in_flight():
                jobs = [j for j in job_states(svc.socket).values() if j["state"] == "running"]
                return jobs and jobs[0]["progress"]["bytes"] >= 3 << 20 and jobs[0]

            job = wait_for(in_flight, 60, "a download in flight")
            time.sleep(0.5)  # let the received bytes reach a checkpoint
            svc.proc.kill()  # no STOPPING, no clean-up: the socket file and a "running" row stay behind
            svc.proc.wait(timeout=10)
        finally:
            svc.close()
        assert svc.socket.exists()

        srv.clear_faults()
        srv.reset_counters()
        svc = Service(tmp_path, cfg)  # a stale socket file does not stop the next start
        try:
            done = wait_for(lambda: [j for j in job_states(svc.socket).values() if j["state"] == "done"],
                            60, "the resumed job")
            states = {j["id"]: j["state"] for j in job_states(svc.socket).values()}
        finally:
            assert svc.stop() == 0
        assert states[job["id"]] == "interrupted"  # what the killed process left as running
        assert done[0]["result"]["resumed_bytes"] >= 2 << 20
        assert srv.total_bytes() < (up / BIG_ZIP).stat().st_size
        assert (tmp_path / "mirror" / BIG_ZIP).read_bytes() == (up / BIG_ZIP).read_bytes()
