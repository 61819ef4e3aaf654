"""kill -9 in the middle of a download, then a rerun: how many bytes crossed the wire twice?

The CLI runs as a subprocess against our fault server (which counts the body bytes it sends);
a rate limit keeps the first run slow enough to be killed mid-file. The rerun must converge to
the same bytes as the upstream, publish nothing partial, and refetch only what was not yet
durable when the process died (bounded by the checkpoint interval). The server stalls every
stream mid-body before the kill, so that bytes parked in socket buffers do not blur the count;
the benchmark (scripts/bench_mirror.py) measures kills at random moments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airsync import sample
from airsync.fetch.fetcher import FetchSettings
from tests.helpers.faultserver import FOREVER, Fault, FaultServer

BIG = "example.com/big"
BIG_ZIP = f"{BIG}/@v/v1.0.0.zip"
SIZE = 48 << 20


def _mirror_cmd(mirror: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "airsync", "--log-format", "json", "mirror",
        "--module", f"{BIG}@v1.0.0", "--to", str(mirror), "--upstream", url, "--no-progress",
        "--read-timeout", "120", "--sumdb", "off", *extra,
    ]


def published_files(mirror: Path) -> list[str]:
    return sorted(
        str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file() and ".airsync" not in p.parts
    )


@pytest.mark.e2e
@pytest.mark.parametrize("stall_after", [(2 << 20) + 12345, (5 << 20) + 777])
def test_kill9_mid_download_then_resume(tmp_path: Path, stall_after: int):
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, [sample.big_module(BIG, "v1.0.0", SIZE, seed=3)])
    size = (upstream / BIG_ZIP).stat().st_size
    mirror = tmp_path / "mirror"
    with FaultServer(upstream) as srv:
        # Every stream of the big zip stops mid-body, so the client has read every byte the
        # server sent by the time it is killed: the server's byte count is then the truth.
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=stall_after, stall_seconds=60))
        proc = subprocess.Popen(_mirror_cmd(mirror, srv.url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "download never settled"
            sent = srv.bytes_sent.get("/" + BIG_ZIP, 0)
            if sent != last:
                last, stable_since = sent, time.monotonic()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()
        first = srv.bytes_sent["/" + BIG_ZIP]
        assert first > 2 * stall_after  # several streams were in flight
        # Nothing unverified or partial is visible in the tree after the kill.
        assert BIG_ZIP not in published_files(mirror)

        srv.clear_faults()
        srv.reset_counters()
        r = subprocess.run(_mirror_cmd(mirror, srv.url), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout
        second = srv.bytes_sent["/" + BIG_ZIP]

    assert (mirror / BIG_ZIP).read_bytes() == (upstream / BIG_ZIP).read_bytes()
    assert list((mirror / ".airsync" / "partial").iterdir()) == []
    assert "resumed" in r.stdout
    refetched = first + second - size
    print(f"killed after {first} bytes sent; rerun fetched {second}; refetched {refetched} "
          f"({100 * refetched / size:.2f}% of {size})")
    # Only bytes not yet covered by a checkpoint (fsync + record, every 1 MiB per file) may
    # cross twice: anything more means durable progress was lost.
    assert 0 <= refetched <= FetchSettings().checkpoint


@pytest.mark.e2e
def test_a_second_run_on_the_same_mirror_is_refused(tmp_path: Path):
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, [sample.big_module(BIG, "v1.0.0", 4 << 20, seed=3)])
    mirror = tmp_path / "mirror"
    with FaultServer(upstream) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=100_000, stall_seconds=30))
        first = subprocess.Popen(_mirror_cmd(mirror, srv.url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not srv.bytes_sent.get("/" + BIG_ZIP):
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.02)
            r = subprocess.run(_mirror_cmd(mirror, srv.url), capture_output=True, text=True, timeout=60)
        finally:
            first.kill()
            first.wait(timeout=10)
    assert r.returncode == 1
    assert f"in use by another airsync process (pid {first.pid})" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture
def small_tmpfs(mount_tmpfs):
    return mount_tmpfs("8m")


@pytest.mark.e2e
def test_full_mirror_disk_stops_the_job_cleanly(tmp_path: Path, small_tmpfs: Path):
    upstream = tmp_path / "upstream"
    modules = [sample.big_module(BIG, "v1.0.0", 16 << 20, seed=3)] + sample.demo_modules()
    sample.build_proxy_tree(upstream, modules)
    mirror = small_tmpfs / "mirror"
    go_sum = tmp_path / "go.sum"
    go_sum.write_text("example.com/kept v1.0.0 h1:kept=\n")
    with FaultServer(upstream) as srv:
        cmd = _mirror_cmd(mirror, srv.url) + ["--module", "example.com/lib/strs@v1.1.0", "--write-go-sum", str(go_sum)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "STOPPED: mirror disk error" in r.stdout and "No space left on device" in r.stdout
    # A job that stopped does not write a go.sum of what it did not finish.
    assert go_sum.read_text() == "example.com/kept v1.0.0 h1:kept=\n" and "left as it was" in r.stderr
    # Nothing partial became visible: every published module file equals the upstream's
    # (a mirror's @v/list and @latest name only the versions it holds, so they may differ).
    for rel in published_files(mirror):
        if not rel.endswith(("/@v/list", "/@latest")):
            assert (mirror / rel).read_bytes() == (upstream / rel).read_bytes(), rel
    assert BIG_ZIP not in published_files(mirror)
