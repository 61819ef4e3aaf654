"""The fetcher and mirror job against our fault-injecting server (real sockets, real files).

Small chunk sizes make a 3 MiB zip take the multi-range path; a fast retry policy keeps the
suite quick. Every test checks the published bytes against the upstream's, byte for byte.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
import trio

from airsync import sample
from airsync.fetch.fetcher import Fetcher, FetchSettings, Stats
from airsync.fetch.retry import RetryPolicy
from airsync.fetch.slots import ClientSlots
from airsync.goproxy import gosum, modpath, wants
from airsync.goproxy.upstream import parse_goproxy
from airsync.mirror.job import MirrorJob
from airsync.state import StateDB
from airsync.store import MirrorStore
from tests.helpers.faultserver import FOREVER, Fault, FaultServer

BIG = "example.com/big"
BIG_ZIP = f"{BIG}/@v/v1.0.0.zip"
SMALL_ZIP = "example.com/lib/strs/@v/v1.1.0.zip"

FAST = FetchSettings(
    concurrency=8,
    per_host=4,
    chunk_size=256 << 10,
    split_threshold=512 << 10,
    probe_size=64 << 10,
    checkpoint=128 << 10,
    read_timeout=1.0,
    file_deadline=60.0,
    retry=RetryPolicy(attempts=5, base=0.01, cap=0.05),
)


def _modules():
    return [sample.big_module(BIG, "v1.0.0", 3 << 20, seed=7)] + sample.demo_modules()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    sample.build_proxy_tree(root, _modules())
    return root


def plan_for(modules=None, pinned: bool = True):
    modules = modules if modules is not None else _modules()
    if pinned:
        lines, problems = gosum.parse_gosum(sample.gosum_lines(modules).encode(), "test.sum")
        assert not problems
        return wants.plan(lines, [], [])
    mvs = [(modpath.ModuleVersion(m.path, m.version), "test") for m in modules]
    return wants.plan([], [], mvs)


def run_job(mirror: Path, url: str, plan, settings: FetchSettings = FAST):
    job = MirrorJob(mirror, parse_goproxy(url), settings)
    return trio.run(job.run, plan)


def assert_same_tree(upstream: Path, mirror: Path, plan) -> None:
    for want in plan:
        for _ext, rel in want.files():
            assert (mirror / rel).read_bytes() == (upstream / rel).read_bytes(), rel


def test_happy_path_splits_large_files_into_ranges(upstream, tmp_path):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        s = run_job(tmp_path / "m", srv.url, plan)
        big_reqs = srv.requests_for("/" + BIG_ZIP)
        big_bytes = srv.bytes_sent["/" + BIG_ZIP]
    assert s.ok, s.failures
    assert_same_tree(upstream, tmp_path / "m", plan)
    size = (upstream / BIG_ZIP).stat().st_size
    assert all(r.range and r.range.startswith("bytes=") for r in big_reqs)
    assert len(big_reqs) >= size // FAST.chunk_size  # really split
    assert big_bytes == size  # no byte fetched twice
    assert s.fetched == sum(len(w.files()) for w in plan)


def test_second_run_makes_no_requests(upstream, tmp_path):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        assert run_job(tmp_path / "m", srv.url, plan).ok
        srv.reset_counters()
        s = run_job(tmp_path / "m", srv.url, plan)
        assert srv.requests == []
    assert s.ok and s.fetched == 0 and s.skipped == sum(len(w.files()) for w in plan)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(times=3, reset_after=30_000),
        Fault(times=3, truncate_after=30_000),
        Fault(times=2, status=500),
        Fault(times=2, status=503),
        Fault(times=1, status=502),
    ],
    ids=["reset", "truncate", "500", "503", "502"],
)
# Both clients: h11's, and httpx's (here for http2, which over http:// speaks HTTP/1.1).
@pytest.mark.parametrize("http2", [False, True], ids=["h11", "httpx"])
def test_transient_faults_are_retried(upstream, tmp_path, fault, http2):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        rule = srv.add_fault(BIG_ZIP, fault)
        s = run_job(tmp_path / "m", srv.url, plan, dataclasses.replace(FAST, http2=http2))
    assert rule.hits == fault.times
    assert s.ok, s.failures
    assert s.retries >= fault.times
    assert_same_tree(upstream, tmp_path / "m", plan)


def test_429_retry_after_is_honoured(upstream, tmp_path):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        srv.add_fault(SMALL_ZIP, Fault(times=1, status=429, retry_after=1))
        t0 = time.monotonic()
        s = run_job(tmp_path / "m", srv.url, plan)
        elapsed = time.monotonic() - t0
    assert s.ok, s.failures
    # Behaviour, not speed: the policy's own backoff is at most 0.05 s, so only the header explains this.
    assert elapsed >= 0.95


def test_stalled_body_times_out_and_resumes(upstream, tmp_path):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        rule = srv.add_fault(BIG_ZIP, Fault(times=2, stall_after=20_000, stall_seconds=20))
        t0 = time.monotonic()
        s = run_job(tmp_path / "m", srv.url, plan)
        elapsed = time.monotonic() - t0
    assert rule.hits == 2
    assert s.ok, s.failures
    assert elapsed < 15  # the 20 s stalls were abandoned after the 1 s read timeout
    assert_same_tree(upstream, tmp_path / "m", plan)


def test_server_that_ignores_range_is_streamed_whole(upstream, tmp_path):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        srv.add_fault("*", Fault(times=FOREVER, ignore_range=True))
        s = run_job(tmp_path / "m", srv.url, plan)
        big = srv.requests_for("/" + BIG_ZIP)
    assert s.ok, s.failures
    assert [r.status for r in big] == [200]
    assert_same_tree(upstream, tmp_path / "m", plan)


def test_persistent_5xx_fails_that_file_only(upstream, tmp_path):
    plan = plan_for()
    with FaultServer(upstream) as srv:
        srv.add_fault(SMALL_ZIP, Fault(times=FOREVER, status=503))
        s = run_job(tmp_path / "m", srv.url, plan)
    assert [f.file for f in s.failures] == [SMALL_ZIP]
    assert "503" in s.failures[0].message
    assert not (tmp_path / "m" / SMALL_ZIP).exists()
    assert (tmp_path / "m" / BIG_ZIP).exists()


def test_corrupted_bytes_are_rejected_and_kept_aside(upstream, tmp_path):
    plan = plan_for()
    mirror = tmp_path / "m"
    with FaultServer(upstream) as srv:
        srv.add_fault(SMALL_ZIP, Fault(times=FOREVER, corrupt=True))
        s = run_job(mirror, srv.url, plan)
        assert len(s.failures) == 1
        msg = s.failures[0].message
        assert "example.com/lib/strs@v1.1.0" in msg
        assert not (mirror / SMALL_ZIP).exists()
        rejected = list((mirror / ".airsync" / "rejected").iterdir())
        assert len(rejected) == 1
        # The list only names versions whose files are all present.
        assert "v1.1.0" not in (mirror / "example.com/lib/strs/@v/list").read_text() if (
            mirror / "example.com/lib/strs/@v/list"
        ).exists() else True
        srv.clear_faults()
        s2 = run_job(mirror, srv.url, plan)
    assert s2.ok and s2.fetched == 1
    assert_same_tree(upstream, mirror, plan)
    assert "v1.1.0" in (mirror / "example.com/lib/strs/@v/list").read_text().split()


def test_hash_mismatch_names_module_and_both_hashes(upstream, tmp_path):
    plan = plan_for()
    bad = next(w for w in plan if w.module.path == "example.com/lib/strs" and w.module.version == "v1.1.0")
    fake = "h1:" + "A" * 43 + "="
    plan = [w if w is not bad else wants.ModuleWant(**{**bad.__dict__, "zip_h1": frozenset([fake])}) for w in plan]
    with FaultServer(upstream) as srv:
        s = run_job(tmp_path / "m", srv.url, plan)
    (f,) = s.failures
    assert fake in f.message and sample.module_h1(_find(_modules(), bad.module)) in f.message
    assert "example.com/lib/strs@v1.1.0" in f.message


def _find(modules, mv):
    return next(m for m in modules if (m.path, m.version) == (mv.path, mv.version))


def test_resume_after_failure_fetches_only_the_rest(upstream, tmp_path):
    plan = plan_for()
    mirror = tmp_path / "m"
    size = (upstream / BIG_ZIP).stat().st_size
    with FaultServer(upstream) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=4))  # probe + 3 ranges are served...
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, status=500))  # ...then the upstream breaks
        s1 = run_job(mirror, srv.url, plan)
        assert [f.file for f in s1.failures] == [BIG_ZIP]
        first = srv.bytes_sent["/" + BIG_ZIP]
        db = StateDB(mirror / ".airsync" / "state.db")
        # Durable spans, and write notes (checked by hash on resume) where they reach further.
        reach = {r.start: r.end for r in db.spans(BIG_ZIP)}
        for n in db.written(BIG_ZIP):
            reach[n.start] = max(reach.get(n.start, n.start), n.end)
        recorded = sum(end - start for start, end in reach.items())
        db.close()
        assert recorded > 0
        srv.clear_faults()
        srv.reset_counters()
        s2 = run_job(mirror, srv.url, plan)
        second = srv.bytes_sent["/" + BIG_ZIP]
        second_ranges = [r.range for r in srv.requests_for("/" + BIG_ZIP)]
    assert s2.ok, s2.failures
    assert s2.resumed_bytes == recorded
    assert second == size - recorded  # only the gaps crossed the wire again
    assert all("bytes=0-" not in r for r in second_ranges)
    assert first + second - size <= first - recorded  # refetched only what was never made durable
    assert_same_tree(upstream, mirror, plan)


def test_torn_span_is_detected_on_resume(upstream, tmp_path):
    plan = plan_for()
    mirror = tmp_path / "m"
    with FaultServer(upstream) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=4))
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, status=500))
        run_job(mirror, srv.url, plan)
        # Simulate a torn write: bytes the database says are intact are not.
        store = MirrorStore(mirror)
        part = store.partial_path(BIG_ZIP)
        store.close()
        with open(part, "r+b") as f:
            f.seek(10)
            f.write(b"\xff" * 16)
        srv.clear_faults()
        s2 = run_job(mirror, srv.url, plan)
    assert s2.ok, s2.failures
    assert_same_tree(upstream, mirror, plan)


def test_file_changed_between_runs_restarts_instead_of_splicing(upstream, tmp_path):
    modules = _modules()
    plan = plan_for(modules, pinned=False)  # unpinned, so a new upstream file can be published
    mirror = tmp_path / "m"
    new = sample.zip_bytes(sample.big_module(BIG, "v1.0.0", 3 << 20, seed=99))
    with FaultServer(upstream) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=4))
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, status=500))
        run_job(mirror, srv.url, plan)
        srv.clear_faults()
        srv.replace_file(BIG_ZIP, new)
        srv.reset_counters()
        s2 = run_job(mirror, srv.url, plan)
        statuses = [r.status for r in srv.requests_for("/" + BIG_ZIP)]
    assert s2.ok, s2.failures
    assert 200 in statuses  # the If-Range of the resumed request did not match
    assert (mirror / BIG_ZIP).read_bytes() == new


def test_file_changed_during_download_restarts(upstream, tmp_path):
    plan = plan_for(pinned=False)
    mirror = tmp_path / "m"
    new = sample.zip_bytes(sample.big_module(BIG, "v1.0.0", 3 << 20, seed=5))
    with FaultServer(upstream) as srv:
        srv.add_fault(BIG_ZIP, Fault(times=1))  # the probe goes through at once
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, delay=0.5))  # later ranges wait...

        def swap():  # ...while the file changes under them
            deadline = time.monotonic() + 10
            while not srv.requests_for("/" + BIG_ZIP) and time.monotonic() < deadline:
                time.sleep(0.01)
            srv.replace_file(BIG_ZIP, new)

        t = threading.Thread(target=swap)
        t.start()
        s = run_job(mirror, srv.url, plan)
        t.join()
    assert s.ok, s.failures
    assert (mirror / BIG_ZIP).read_bytes() == new


def test_not_found_moves_down_the_list(upstream, tmp_path):
    (tmp_path / "empty").mkdir()
    plan = plan_for()
    with FaultServer(upstream) as good, FaultServer(tmp_path / "empty") as empty:
        s = run_job(tmp_path / "m", f"{empty.url},{good.url}", plan)
        assert all(r.status == 404 for r in empty.requests)
    assert s.ok, s.failures
    assert_same_tree(upstream, tmp_path / "m", plan)


def test_pipe_moves_on_after_errors_but_comma_does_not(upstream, tmp_path):
    plan = plan_for(sample.demo_modules())
    with FaultServer(upstream) as good, FaultServer(upstream) as broken:
        broken.add_fault("*", Fault(times=FOREVER, status=500))
        s = run_job(tmp_path / "a", f"{broken.url}|{good.url}", plan)
        assert s.ok, s.failures
        s = run_job(tmp_path / "b", f"{broken.url},{good.url}", plan)
        assert s.failures and all("500" in f.message for f in s.failures)
        assert good.requests_for("/" + SMALL_ZIP)[-1:] and len(good.requests_for("/" + SMALL_ZIP)) == 1


def test_file_upstream(upstream, tmp_path):
    plan = plan_for()
    s = run_job(tmp_path / "m", upstream.as_uri(), plan)
    assert s.ok, s.failures
    assert_same_tree(upstream, tmp_path / "m", plan)


def test_missing_everywhere_is_a_clear_failure(upstream, tmp_path):
    plan = plan_for() + wants.plan([], [], [(modpath.ModuleVersion("example.com/nope", "v1.0.0"), "--module")])
    with FaultServer(upstream) as srv:
        s = run_job(tmp_path / "m", srv.url, plan)
    assert {f.module for f in s.failures} == {"example.com/nope@v1.0.0"}
    assert all("not found" in f.message for f in s.failures)


def test_limit_rate_slows_the_transfer(upstream, tmp_path):
    from dataclasses import replace

    plan = plan_for()
    size = sum((upstream / rel).stat().st_size for w in plan for _, rel in w.files())
    with FaultServer(upstream) as srv:
        t0 = time.monotonic()
        s = run_job(tmp_path / "m", srv.url, plan, replace(FAST, limit_rate=2 << 20))
        elapsed = time.monotonic() - t0
    assert s.ok
    # 3+ MiB at 2 MiB/s (burst 512 KiB) cannot finish in under a second: the limit is in force.
    assert elapsed >= (size - (512 << 10)) / (2 << 20) * 0.9


def test_cancelled_downloads_leave_the_client_usable(upstream, tmp_path):
    """httpcore could leak pool connections after cancellation (#830, #961): cancel, then reuse.

    Two slots, stalled downloads cancelled mid-body, then more fetches than there are slots.
    """
    store = MirrorStore(tmp_path / "m")
    state = StateDB(store.state_path)

    async def main():
        async with ClientSlots(2, read_timeout=FAST.read_timeout) as slots:
            with FaultServer(upstream) as srv:
                srv.add_fault(BIG_ZIP, Fault(times=6, stall_after=1000, stall_seconds=30))
                f = Fetcher(slots, parse_goproxy(srv.url), store, state, FAST, Stats())
                with trio.move_on_after(0.3):
                    await f.fetch(BIG_ZIP, 1 << 30)
                srv.clear_faults()
                with trio.fail_after(20):
                    for _ in range(3):  # more fetches than the pool has connections
                        got = await f.fetch(SMALL_ZIP, 1 << 30)
                        assert got == (upstream / SMALL_ZIP).read_bytes()  # small: whole in memory
                    path = await f.fetch(BIG_ZIP, 1 << 30)
                    assert path.read_bytes() == (upstream / BIG_ZIP).read_bytes()

    trio.run(main)
    state.close()
    store.close()


def test_retries_count_only_retries_made(upstream, tmp_path):
    plan = plan_for(sample.demo_modules())
    with FaultServer(upstream) as srv:
        srv.add_fault(SMALL_ZIP, Fault(times=FOREVER, status=503))
        s = run_job(tmp_path / "m", srv.url, plan)
    assert s.retries == FAST.retry.attempts - 1  # 5 attempts = 4 retries, then it gives up


def test_pipe_fallback_gives_up_on_a_dead_upstream_quickly(upstream, tmp_path):
    from airsync.fetch.fetcher import FALLBACK_ATTEMPTS

    plan = plan_for(sample.demo_modules())
    files = sum(len(w.files()) for w in plan)
    with FaultServer(upstream) as good, FaultServer(upstream) as broken:
        broken.add_fault("*", Fault(times=FOREVER, status=500))
        s = run_job(tmp_path / "m", f"{broken.url}|{good.url}", plan)
        assert len(broken.requests) == files * FALLBACK_ATTEMPTS
    assert s.ok and s.retries == files * (FALLBACK_ATTEMPTS - 1)


def test_files_start_in_plan_order_even_one_at_a_time(upstream, tmp_path):
    from dataclasses import replace

    plan = plan_for(sample.demo_modules())
    with FaultServer(upstream) as srv:
        s = run_job(tmp_path / "m", srv.url, plan, replace(FAST, concurrency=1))
        order = [r.path.lstrip("/") for r in srv.requests]
    assert s.ok, s.failures
    assert order == [rel for w in plan for _, rel in w.files()]


def test_file_deadline_bounds_a_slow_but_never_silent_download(upstream, tmp_path):
    from dataclasses import replace

    plan = plan_for()
    with FaultServer(upstream) as srv:
        # Each response pauses for less than the read timeout, so only the file deadline can end it.
        srv.add_fault(BIG_ZIP, Fault(times=FOREVER, stall_after=1000, stall_seconds=0.8))
        t0 = time.monotonic()
        s = run_job(tmp_path / "m", srv.url, plan, replace(FAST, read_timeout=5.0, file_deadline=1.0))
        elapsed = time.monotonic() - t0
    assert [f.file for f in s.failures] == [BIG_ZIP]
    assert "file deadline" in s.failures[0].message
    assert elapsed < 10
    assert not (tmp_path / "m" / BIG_ZIP).exists()


def test_a_write_note_is_used_when_its_bytes_hold_and_the_durable_span_when_not(tmp_path):
    """After kill -9 the page cache keeps what was written past the last fsync: a write note
    covering it is checked by hash and used (and then recorded as durable); a note whose bytes
    did not survive (a power cut) falls back to the fsynced record."""
    import os

    import xxhash

    from airsync.fetch.fetcher import _intact_spans
    from airsync.fetch.rangeplan import Span
    from airsync.state import SpanRecord

    data = os.urandom(300_000)
    f = tmp_path / "part"
    f.write_bytes(data)

    def rec(start: int, end: int, corrupt: bool = False) -> SpanRecord:
        h = xxhash.xxh3_64(data[start:end]).hexdigest()
        return SpanRecord(start, end, "0" * 16 if corrupt else h)

    fd = os.open(f, os.O_RDONLY)
    try:
        durable = [rec(0, 100_000), rec(150_000, 200_000), rec(262_000, 268_000)]
        noted = [rec(0, 140_000), rec(150_000, 260_000, corrupt=True), rec(262_000, 265_000), rec(270_000, 290_000)]
        good, torn, promoted = _intact_spans(fd, durable, noted)
        assert good == [Span(0, 140_000), Span(150_000, 200_000), Span(262_000, 268_000), Span(270_000, 290_000)]
        assert torn == []
        assert promoted == [noted[0], noted[3]]  # a note shorter than its durable span is ignored
        good, torn, promoted = _intact_spans(fd, [rec(0, 100_000, corrupt=True)], [rec(0, 120_000, corrupt=True)])
        assert (good, torn, promoted) == ([], [0], [])
    finally:
        os.close(fd)


def test_state_keeps_write_notes_apart_and_forgets_them(tmp_path):
    from airsync.state import SpanRecord

    st = StateDB(tmp_path / "state.db")
    try:
        st.start_download("a", "http://x/a", '"e"', 100)
        st.record_spans("a", [SpanRecord(0, 10, "h")])
        st.note_written("a", [SpanRecord(0, 50, "n")])
        assert st.spans("a") == [SpanRecord(0, 10, "h")] and st.written("a") == [SpanRecord(0, 50, "n")]
        st.forget_written("a")
        assert st.written("a") == [] and st.spans("a") == [SpanRecord(0, 10, "h")]
        st.note_written("a", [SpanRecord(0, 60, "n")])
        st.finish_download("a")
        assert st.written("a") == [] and st.spans("a") == []
    finally:
        st.close()


def test_the_job_makes_every_rename_durable_before_it_reports(upstream, tmp_path, monkeypatch):
    import airsync.store as store_mod
    from airsync.store import Flusher

    log = []
    later, sync_all, fsync_dir = Flusher.dirs_later, Flusher._sync_all, store_mod.fsync_dir
    monkeypatch.setattr(Flusher, "dirs_later", lambda self, dirs: (log.append("renamed"), later(self, dirs)))
    monkeypatch.setattr(Flusher, "_sync_all", lambda self: (log.append("synced"), sync_all(self)))
    monkeypatch.setattr(store_mod, "fsync_dir", lambda d: (log.append("synced"), fsync_dir(d)))  # no syncfs here
    plan = plan_for()
    with FaultServer(upstream) as srv:
        assert run_job(tmp_path / "m", srv.url, plan).ok
    assert log.count("renamed") == len(plan)
    assert log[-1] == "synced"
