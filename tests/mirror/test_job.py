"""The mirror job given a request: the module versions named exactly download while the module
graphs are resolved, with the wants resolving would give them, and no file is fetched twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from airsync import sample
from airsync.fetch.fetcher import FetchSettings
from airsync.fetch.retry import RetryPolicy
from airsync.goproxy import gosum, modpath
from airsync.goproxy.modpath import ModuleVersion
from airsync.goproxy.upstream import parse_goproxy
from airsync.goproxy.wants import ModuleRequest, Request
from airsync.mirror.job import MirrorJob, _certain
from airsync.mirror.resolve import Resolution, plan_for
from tests.helpers.faultserver import Fault, FaultServer

FAST = FetchSettings(connect_timeout=5.0, read_timeout=5.0, retry=RetryPolicy(attempts=3, base=0.01, cap=0.05))
APP, DEP, LEAF = "example.com/app", "example.com/dep", "example.com/leaf"


def _modules() -> list[sample.SampleModule]:
    return [
        sample.library_module(LEAF, "v1.0.0"),
        sample.library_module(DEP, "v1.0.0", [(LEAF, "v1.0.0")]),
        sample.library_module(APP, "v1.0.0", [(DEP, "v1.0.0")]),
        sample.library_module(APP, "v1.1.0", [(DEP, "v1.0.0")]),
    ]


def test_the_wants_known_before_resolving_are_those_resolving_gives():
    mods = _modules()
    lines, problems = gosum.parse_gosum(sample.gosum_lines([mods[2]]).encode(), "go.sum")
    assert not problems
    request = Request(sum_lines=tuple(lines), modules=(
        ModuleRequest(APP, "v1.0.0", "modules.txt:1"),  # pinned by go.sum
        ModuleRequest(APP, "v1.1.0", "modules.txt:2"),  # not pinned
        ModuleRequest(LEAF, "latest", "modules.txt:3"),  # a query: not known before resolving
    ))
    early = _certain(request)
    assert [str(w.module) for w in early] == [f"{APP}@v1.0.0", f"{APP}@v1.1.0"]
    assert early[0].pinned and early[0].zip_h1 and not early[1].pinned
    # As the resolver leaves it: the named versions selected under their own origin, their
    # graphs' versions beside them, one of them also read for its go.mod alone.
    res = Resolution()
    res.answers[f"{LEAF}@latest"] = "v1.0.0"
    for m in request.modules:
        res.selected.setdefault(ModuleVersion(m.path, res.answers.get(f"{m.path}@{m.version}", m.version)), m.origin)
    res.selected[ModuleVersion(DEP, "v1.0.0")] = "modules.txt:1 (example.com/app@v1.0.0)"
    res.gomod_only[ModuleVersion(APP, "v1.0.0")] = "modules.txt:2 (example.com/app@v1.1.0)"
    final = {w.module: w for w in plan_for(request, res)}
    assert all(final[w.module] == w for w in early)


def test_named_versions_download_while_the_graph_is_resolved(tmp_path: Path):
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, _modules())
    app_zip = "/" + modpath.proxy_file(ModuleVersion(APP, "v1.1.0"), "zip")
    dep_mod = "/" + modpath.proxy_file(ModuleVersion(DEP, "v1.0.0"), "mod")
    request = Request(modules=(ModuleRequest(APP, "v1.1.0", "test"),))
    with FaultServer(upstream) as srv:
        # The go.mod of the named version's requirement, which the resolver must read, answers
        # late: the named version's own files come meanwhile.
        srv.add_fault(dep_mod.lstrip("/"), Fault(delay=1.0))
        job = MirrorJob(tmp_path / "m", parse_goproxy(srv.url), FAST)
        summary = trio.run(job.run, request)
        order = [r.path for r in srv.requests]
    assert summary.ok, summary.failures
    assert order.index(app_zip) < order.index(dep_mod)
    assert len(order) == len(set(order))  # each file once: the resolver's go.mods handed over
    got = {w.module for w in summary.plan}
    assert got == {ModuleVersion(p, "v1.0.0") for p in (DEP, LEAF)} | {ModuleVersion(APP, "v1.1.0")}
    for w in summary.plan:
        for _ext, rel in w.files():
            assert (tmp_path / "m" / rel).read_bytes() == (upstream / rel).read_bytes(), rel


def test_an_error_while_resolving_comes_out_as_itself(tmp_path: Path, monkeypatch):
    from airsync.errors import AirsyncError

    async def fails(self, fetcher, request):
        raise AirsyncError("the module graph did not settle")

    monkeypatch.setattr(MirrorJob, "_plan", fails)
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, _modules())
    with FaultServer(upstream) as srv:
        job = MirrorJob(tmp_path / "m", parse_goproxy(srv.url), FAST)
        with pytest.raises(AirsyncError, match="did not settle"):  # not inside an exception group
            trio.run(job.run, Request(modules=(ModuleRequest(APP, "v1.1.0", "test"),)))


def test_the_dispatcher_starts_as_many_files_as_slots_are_free_in_one_scheduler_pass(tmp_path: Path):
    # A dispatcher that yielded per file started one file per pass of the scheduler: with many
    # bodies streaming a pass is milliseconds, and a lane 50 ms away stayed a third full.
    import dataclasses

    job = MirrorJob(tmp_path / "m", parse_goproxy("http://127.0.0.1:9"), dataclasses.replace(FAST, concurrency=8))
    wants = _certain(Request(modules=tuple(ModuleRequest(f"example.com/m{i}", "v1.0.0", "t") for i in range(4))))
    passes, started = 0, []

    async def fetch(fetcher, run, ext, relpath, ticket):
        started.append((passes, relpath))
        await release.wait()
        job._files.release_on_behalf_of(ticket)

    async def module(run):
        pass

    async def count_passes():
        nonlocal passes
        while True:  # until cancelled below
            await trio.lowlevel.checkpoint()
            passes += 1

    async def main():
        nonlocal release
        release = trio.Event()
        async with trio.open_nursery() as outer:
            outer.start_soon(count_passes)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(job._dispatch, nursery, None, wants)
                with trio.fail_after(5):
                    while len(started) < 8:
                        await trio.sleep(0.001)
                await trio.sleep(0.01)
                assert len(started) == 8  # the slots bound it
                release.set()
            outer.cancel_scope.cancel()

    release = None
    job._fetch, job._module = fetch, module
    try:
        trio.run(main)
    finally:
        job.state.close()
        job.store.close()
        job.signatures.close()
    assert len(started) == 12 and len({rel for _, rel in started}) == 12
    # The first eight in one pass: trio runs a pass's tasks in random order, so the counter may
    # move once among them; yielding per file spread them over eight passes.
    first = [p for p, _ in started[:8]]
    assert max(first) - min(first) <= 1, started


@pytest.mark.parametrize("fs", ["ext4", "nfs4"])
def test_small_versions_land_in_the_event_loops_thread_flushed_before_published(tmp_path: Path, monkeypatch, fs):
    # A worker thread per small version cost more in hand-overs of the interpreter lock than its
    # millisecond of work: those land in the event loop's thread, but for the wait for the flush.
    # Larger ones (in memory or on disk) still land in a worker. Durable before visible in both.
    import threading

    from airsync.mirror.job import LAND_HERE_MAX
    from airsync.store import Flusher, MirrorStore

    mods = [sample.library_module(LEAF, "v1.0.0"),
            sample.big_module("example.com/mid", "v1.0.0", LAND_HERE_MAX + (64 << 10), seed=1),
            sample.big_module("example.com/big", "v1.0.0", 3 << 20, seed=2)]
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, mods)
    events: list[tuple] = []
    files, publish = Flusher.files, MirrorStore.publish

    def flushed(self, paths):
        files(self, paths)
        events.append(("flushed", threading.current_thread() is threading.main_thread(), set(paths)))

    def published(self, partial, relpath, replace=False):
        events.append(("publish", threading.current_thread() is threading.main_thread(), partial, relpath))
        return publish(self, partial, relpath, replace)

    monkeypatch.setattr(Flusher, "files", flushed)
    monkeypatch.setattr(MirrorStore, "publish", published)
    # On a network file system each file call waits on the wire: every version lands in a worker.
    monkeypatch.setattr("airsync.store.fstype", lambda _root: fs)
    with FaultServer(upstream) as srv:
        job = MirrorJob(tmp_path / "m", parse_goproxy(srv.url), FAST)
        summary = trio.run(job.run, Request(modules=tuple(ModuleRequest(m.path, m.version, "t") for m in mods)))
    assert summary.ok, summary.failures
    here = {rel.split("/@v/")[0]: main for kind, main, *rest in events if kind == "publish" for rel in rest[1:]}
    assert here == {LEAF: fs == "ext4", "example.com/mid": False, "example.com/big": False}
    assert not any(main for kind, main, *_ in events if kind == "flushed")  # never waited on in the loop
    for i, (kind, _main, *rest) in enumerate(events):
        if kind == "publish" and not rest[1].startswith("example.com/big/"):  # big: fsynced as it came
            assert any(e[0] == "flushed" and rest[0] in e[2] for e in events[:i]), rest
    for m in mods:
        for ext in ("info", "mod", "zip"):
            rel = modpath.proxy_file(ModuleVersion(m.path, m.version), ext)
            assert (tmp_path / "m" / rel).read_bytes() == (upstream / rel).read_bytes()


class _SlowFlusher:
    """A Flusher whose first flush waits for ``gate``; ``fail`` makes the flushes raise."""

    def __init__(self) -> None:
        import threading

        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.fail: OSError | None = None

    def files(self, paths):
        self.calls.append(sorted(str(p) for p in paths))
        if len(self.calls) == 1:
            assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail


def _flush_concurrently(flusher, late: list[str]) -> dict[str, object]:
    """Task 'a' asks first; the ``late`` ones while its flush runs. Each one's outcome."""
    from airsync.mirror.job import _LoopFlushes

    flushes = _LoopFlushes(flusher)
    out: dict[str, object] = {}

    async def ask(name):
        try:
            await flushes.files([Path(name)])
            out[name] = "flushed"
        except OSError as e:
            out[name] = e

    async def main():
        async with trio.open_nursery() as n:
            n.start_soon(ask, "a")
            with trio.fail_after(10):
                while not flusher.calls:
                    await trio.sleep(0.001)
            for name in late:
                n.start_soon(ask, name)
            await trio.sleep(0.05)
            assert len(flusher.calls) == 1  # the late ones wait for a flush that starts after them
            flusher.gate.set()

    trio.run(main)
    return out


def test_tasks_that_ask_while_a_flush_runs_share_the_next_one():
    flusher = _SlowFlusher()
    out = _flush_concurrently(flusher, ["b", "c", "d"])
    assert out == dict.fromkeys("abcd", "flushed")
    assert flusher.calls == [["a"], ["b", "c", "d"]]


def test_a_failed_flush_fails_every_task_that_waited_for_it():
    import errno

    flusher = _SlowFlusher()
    flusher.fail = OSError(errno.EIO, "Input/output error", "/m")
    out = _flush_concurrently(flusher, ["b", "c"])
    assert all(isinstance(e, OSError) and e.errno == errno.EIO for e in out.values()), out
    assert out["b"] is not out["c"]  # each its own exception: raising one changes its traceback
    assert flusher.calls == [["a"], ["b", "c"]]
