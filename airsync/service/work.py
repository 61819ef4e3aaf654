"""What the service's jobs do: mirror into the mirror, sync the mirror to a medium, write a bundle.

A mirror job reads its inputs the way ``airsync mirror`` does (``mirror.inputs``; a request
file through ``intake``) and runs ``mirror.job.MirrorJob`` in this process; cancelling it is
resume-safe (spans are recorded only once fsynced). A sync checks the medium's marker again (the
stick may have been swapped since the attach), then runs ``carry.sync.sync`` in a worker thread;
its progress events count files and bytes, and it is stopped by raising ``runner.Stopped`` from
that callback, at most one 1 MiB read later (the medium is left visibly incomplete, and the next
attach resumes: whole files stay, the file in flight keeps its intact prefix).

A bundle job runs ``carry.bundlewrite.write_bundle`` in a worker thread into
``bundle_dir/.pending``, which a rerun after a stop or a crash resumes (the same mirror makes the
same plan); a finished bundle is renamed to ``bundle_dir/airsync-<id>/`` in one step, so what
appears there is complete. Its progress counts the bytes of the parts.

Each returns ``(error or None, result)``; the result is what status shows of a finished job, its
lists cut to their first ``MAX_PROBLEMS`` entries and a count (the structured log has each one).
"""

from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import trio

from airsync import config
from airsync.config import DaemonConfig
from airsync.service import marker
from airsync.service.intake import Intake, RequestFileError
from airsync.service.jobs import Job
from airsync.service.media import check_target
from airsync.service.runner import Live, Stopped
from airsync.store import fsync_dir

log = structlog.get_logger("airsync.daemon")

MAX_PROBLEMS = 20  # entries of a list kept in a job's record (problems, failures...); the rest counted


async def mirror(conf: DaemonConfig, job: Job, live: Live, intake: Intake) -> tuple[str | None, dict]:
    from airsync.fetch.fetcher import Stats
    from airsync.goproxy.gover import host_platform
    from airsync.mirror.inputs import read_inputs
    from airsync.mirror.job import MirrorJob

    # Reading and parsing run in a thread: a large file must not stall the event loop
    # (the control API, the watchdog pings).
    if job.key == "config":
        where = "the config's lists"
        inputs = await trio.to_thread.run_sync(
            read_inputs, list(conf.go_sum), list(conf.go_mod), list(conf.modules_files), list(conf.modules),
            list(conf.mirror.get("toolchains", [])))
    else:
        name = job.key.removeprefix("request:")
        where = conf.requests_dir / name
        try:
            inputs = await intake.read(job, name)
        except OSError as e:
            return f"{where}: {e.strerror}", {}
        except RequestFileError as e:  # bad input: the file goes to .failed
            return str(e), {"input_problems": [str(e)], "input_problem_count": 1}
    problems = [str(p) for p in inputs.problems]
    for p in problems[:MAX_PROBLEMS]:
        log.warning("input problem", problem=p)
    if len(problems) > MAX_PROBLEMS:
        log.warning("more input problems (not logged)", more=len(problems) - MAX_PROBLEMS)
    vulndb_url = vulndb_setting(conf) if job.key == "config" else None
    if inputs.empty and not problems and vulndb_url:
        return await _vulndb(conf, vulndb_url, config.fetch_settings(conf.mirror), {})
    if inputs.empty and not problems:  # empty, or only comments: bad input, not worth a retry
        problems = [f"{where}: nothing to mirror in it (no go.sum, go.mod or PATH@VERSION lines)"]
    result: dict[str, Any] = {"input_problems": problems[:MAX_PROBLEMS], "input_problem_count": len(problems)}
    if inputs.empty:
        return problems[0], result
    m = conf.mirror
    settings = config.fetch_settings(m)
    sources = config.mirror_sources(m)
    for note in sources.notes:
        log.info("note", note=note)
    live.stats = Stats()
    mirror_job = MirrorJob(conf.store or conf.mirror_dir, sources.upstreams, settings, live.stats, sumdb=sources.sumdb,
                           private=sources.private)
    platforms = tuple(m.get("platforms") or (host_platform(),))
    s = await mirror_job.run(inputs.request(deps=bool(m.get("deps", True)), latest=bool(m.get("latest", False)),
                                            platforms=platforms, gomod_toolchains="platforms" in m))
    result.update(
        fetched=s.fetched, skipped=s.skipped, failed=len(s.failures), bytes=s.bytes,
        resumed_bytes=s.resumed_bytes, retries=s.retries, seconds=round(s.seconds, 3),
        sumdb_carried=s.sumdb_carried,
        unpinned=s.unpinned[:MAX_PROBLEMS], unpinned_count=len(s.unpinned),
        not_carried=s.not_carried[:MAX_PROBLEMS], not_carried_count=len(s.not_carried),
        failures=[f"{f.module} {f.file}: {f.message}" for f in s.failures[:MAX_PROBLEMS]],
        unresolved=s.problems[:MAX_PROBLEMS], unresolved_count=len(s.problems),
    )
    if vulndb_url and not s.fatal:
        error, result = await _vulndb(conf, vulndb_url, settings, result)
        if error:
            return error, result
    if s.fatal:
        return s.fatal, result
    if s.problems:
        return f"{len(s.problems)} module(s) not resolved; first: {s.problems[0]}", result
    if s.failures:
        f = s.failures[0]
        return f"{len(s.failures)} file(s) failed; first: {f.module} {f.file}: {f.message}", result
    if problems:
        return f"{len(problems)} input problem(s); first: {problems[0]}", result
    return None, result


def vulndb_setting(conf: DaemonConfig) -> str | None:
    from airsync.vulndb.setting import parse_setting  # not vulndb.update: that brings httpx along

    return parse_setting(conf.mirror.get("vulndb"))


async def _vulndb(conf: DaemonConfig, url: str, settings, result: dict) -> tuple[str | None, dict]:
    """The refresh of the mirror's vulnerability database (``mirror.vulndb``), after its modules."""
    from airsync.errors import AirsyncError
    from airsync.store import MirrorStore
    from airsync.vulndb import update

    try:
        store = MirrorStore(conf.mirror_dir)
    except AirsyncError as e:
        return str(e), result
    try:
        r = await update.update(store, url, settings)
    except AirsyncError as e:
        log.error("vulnerability database not updated", error=str(e))
        return f"vulnerability database not updated (the previous one stays): {e}", {**result, "vulndb_error": str(e)}
    finally:
        store.close()
    log.info("vulnerability database", modified=r.modified, fetched=r.fetched, requests=r.requests, bytes=r.bytes)
    return None, {**result, "vulndb_modified": r.modified, "vulndb_fetched": r.fetched}


async def sync_medium(conf: DaemonConfig, job: Job, live: Live) -> tuple[str | None, dict]:
    from airsync.carry import manifest
    from airsync.carry.sync import SyncEvent, sync

    target = Path(job.target)
    check_target(conf, target)  # the config may have changed since the attach

    def prepare():  # touches the stick and the key file: off the loop, a dying stick may hang
        medium = marker.read(target)  # again: the stick may have been swapped since the attach
        if job.key != f"usb:{medium.id}":
            return f"{target}: another medium is mounted there now ({medium.label!r}); attach it again"
        try:
            return manifest.load_signer(conf.signing_key)
        except manifest.KeyFileError as e:
            return f"signing key: {e}"

    signer = await trio.to_thread.run_sync(prepare, abandon_on_cancel=True)
    if isinstance(signer, str):
        return signer, {}

    def progress(event: SyncEvent) -> None:  # runs in the sync's threads, one at a time
        if live.stop.is_set():
            raise Stopped  # between two reads: the file in flight resumes next time
        if event.kind == "plan":
            live.files_total, live.bytes_total = event.files, event.bytes
        elif event.kind == "bytes":
            live.bytes_done += event.bytes
        elif event.kind == "file":
            live.files_done += 1

    if conf.store is not None:  # the store's objects into its local copy first (only what changed)
        from airsync.objstore.mirror import local_copy_of

        await trio.to_thread.run_sync(local_copy_of, conf.store, abandon_on_cancel=True)
    r = await trio.to_thread.run_sync(
        partial(sync, conf.mirror_dir, target, signer, verify=False, progress=progress), abandon_on_cancel=True
    )
    return None, {
        "written": len(r.written), "unchanged": r.unchanged, "removed": len(r.removed),
        "bytes": r.bytes_written, "resumed_bytes": r.resumed_bytes,
        "unknown": r.unknown[:MAX_PROBLEMS], "unknown_count": len(r.unknown),
    }


async def bundle(conf: DaemonConfig, job: Job, live: Live) -> tuple[str | None, dict]:
    from airsync.carry import manifest
    from airsync.carry.bundlewrite import write_bundle

    bundle_dir = conf.bundle_dir
    if bundle_dir is None:
        return "no daemon.bundle_dir in the config", {}

    def progress(done: int, total: int) -> None:  # in the bundle's thread
        if live.stop.is_set():
            raise Stopped  # between two blocks: the part in flight is removed, the named ones stay
        live.bytes_done, live.bytes_total = done, total

    def run() -> tuple[str | None, dict]:
        try:
            signer = manifest.load_signer(conf.signing_key)
        except manifest.KeyFileError as e:
            return f"signing key: {e}", {}
        pending = bundle_dir / ".pending"
        os.makedirs(bundle_dir, exist_ok=True)
        r = write_bundle(conf.mirror_dir, pending, signer, since=conf.bundle_since, max_size=conf.bundle_max_size,
                         progress=progress, only_this=True)
        final = bundle_dir / r.manifest.name.removesuffix(".manifest")
        if final.exists():  # nothing changed since that bundle: it is still the one to carry
            shutil.rmtree(pending)
        else:
            os.replace(pending, final)
            fsync_dir(bundle_dir)
        return None, {"bundle": str(final), "files": r.carried, "held": r.held, "parts": len(r.parts),
                      "bytes": r.bytes, "sequence": r.sequence}

    return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
