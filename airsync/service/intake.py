"""Request intake: files dropped into the requests directory become mirror jobs.

``Intake.watch`` follows the directory with ``watchfiles.awatch`` and, because events can be
missed (a file renamed in while the watch starts, a full inotify queue), lists it every
``RESCAN`` seconds too. A file is handed to the service only once ``inbox.Settler`` saw it
unchanged for the debounce time; ``*.tmp`` and dot-files never (``inbox.kind_of``).

Request files are read off the event loop, only when regular files of at most ``MAX_REQUEST``
bytes (``read_request``); any other entry (a FIFO, a symlink, a directory) is moved to
``.failed/`` unopened, with a warning; a name that is not UTF-8 is left alone (and logged once).
A request whose job finished is moved to ``.done/`` (or ``.failed/`` when its lines are bad);
one that failed for upstream reasons stays and is retried at the next refresh.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import structlog
import trio

from airsync.config import DaemonConfig
from airsync.errors import AirsyncError
from airsync.mirror import inputs as mirror_inputs
from airsync.service import inbox
from airsync.service.jobs import Job, State, json_safe

log = structlog.get_logger("airsync.daemon")

RESCAN = 2.0  # seconds between listings of the requests directory (besides its events)
DONE_DIR, FAILED_DIR = ".done", ".failed"
MAX_REQUEST = 16 << 20  # bytes: a request file larger than this is refused (it would be a mistake)


class RequestFileError(AirsyncError):
    """A request file that cannot be read as one (not a regular file, too large, unreadable)."""


class Intake:
    """The requests directory of the service's config (``config()``, which a reload may change);
    ``submit(name)`` queues a mirror job for a settled request file."""

    def __init__(self, config: Callable[[], DaemonConfig], submit: Callable[[str], object]) -> None:
        self._config = config
        self._submit = submit
        self._settler: inbox.Settler | None = None  # the watcher's, while it runs
        self._watch_stop: trio.Event | None = None
        self._read: dict[int, tuple[str, tuple[int, int]]] = {}  # job -> the file it read (size, mtime)
        self._unreadable_names: set[str] = set()  # names already logged as not UTF-8 or immovable

    @property
    def directory(self) -> Path:
        return self._config().requests_dir

    def stop_watching(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()  # awatch's thread returns within one step

    def ready(self, busy: set[str]) -> list[str]:
        """Request files the watcher already handed out (settled, unchanged since) whose name
        is not in ``busy``: what a refresh queues again. One still being written is left to the
        watcher, which reads it once it stops changing."""
        names = []
        for name in self.pending():
            if name in busy:
                continue
            try:
                st = os.stat(self.directory / name, follow_symlinks=False)
            except OSError:
                continue
            if self._settler is not None and self._settler.taken(name, (st.st_size, st.st_mtime_ns)):
                names.append(name)
        return names

    def pending(self) -> list[str]:
        """Names of the request files now in the directory (regular files, UTF-8 names). Any
        other entry that is not ignored (a FIFO, a symlink, a directory, a device) is never a
        request: it is set aside in ``.failed/`` untouched (never opened, so a FIFO cannot block)."""
        try:
            entries = sorted((e.name, e.is_file(follow_symlinks=False)) for e in os.scandir(self.directory))
        except OSError:
            return []
        pending = []
        for n, regular in entries:
            if inbox.kind_of(n) is None:
                continue
            if not _utf8(n):
                # Job labels, the JSON API and the log all want text: such a file is left alone.
                if n not in self._unreadable_names:
                    self._unreadable_names.add(n)
                    log.warning("request file name is not UTF-8; rename it to have it read",
                                file=json_safe(n))
                continue
            if not regular:
                self._set_aside(n)
                continue
            pending.append(n)
        return pending

    def _set_aside(self, name: str) -> None:
        """Move a directory entry that cannot be a request file to ``.failed/``, saying why."""
        src = self.directory / name
        try:
            mode = os.stat(src, follow_symlinks=False).st_mode
        except OSError:
            return  # gone meanwhile
        if stat.S_ISREG(mode):
            return  # replaced by a regular file meanwhile: a request after all
        what = _file_type(mode)
        try:
            dest = self.directory / FAILED_DIR
            dest.mkdir(exist_ok=True)
            os.replace(src, dest / name)
        except OSError as e:
            if name not in self._unreadable_names:
                self._unreadable_names.add(name)  # logged once, not at every listing
                log.error(f"request entry is {what}, not a regular file, and could not be moved to "
                          f"{FAILED_DIR}/; remove it", file=str(src), error=e.strerror)
            return
        log.warning(f"request entry is {what}, not a regular file: moved to {FAILED_DIR}/ unread; "
                    "drop request files as regular files", file=str(src))

    async def watch(self, directory: Path) -> None:
        """Hand out every request file that settles in ``directory``, until ``stop_watching``."""
        from watchfiles import awatch

        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            log.error("requests directory unusable", path=str(directory), error=e.strerror)
            return
        settler = self._settler = inbox.Settler(self._config().debounce)
        stop = self._watch_stop = trio.Event()

        def look(name: str) -> None:
            try:
                st = os.stat(directory / name, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and stat.S_ISREG(st.st_mode):
                settler.observe(name, (st.st_size, st.st_mtime_ns), trio.current_time())
            else:  # gone, or a FIFO, symlink or directory: never a request (as in the listing)
                settler.observe(name, None, trio.current_time())
                if st is not None and inbox.kind_of(name) is not None and _utf8(name):
                    self._set_aside(name)

        async def settle() -> None:
            last_scan = -RESCAN
            while True:
                await trio.sleep(max(0.05, self._config().debounce / 4))
                if trio.current_time() - last_scan >= RESCAN:
                    last_scan = trio.current_time()
                    names = set(self.pending())
                    settler.present(names)
                    for name in names:
                        look(name)
                for name in settler.pending:
                    look(name)
                for name in settler.settled(trio.current_time()):
                    self._submit(name)

        async with trio.open_nursery() as n:
            n.start_soon(settle)
            try:
                async for changes in awatch(
                    directory, stop_event=stop, recursive=False, debounce=200, rust_timeout=1000,
                    watch_filter=lambda _c, p: inbox.kind_of(os.path.basename(p)) is not None,
                ):
                    for _change, p in changes:
                        look(os.path.basename(p))
            except Exception as e:  # noqa: BLE001 - the listings below find every file without events
                # e.g. watchfiles cannot decode a file name that is not UTF-8, and fails for good.
                log.warning("file events of the requests directory unavailable; listing it every "
                            f"{RESCAN:g} s instead", error=repr(e))
                await stop.wait()
            finally:
                stop.set()
                n.cancel_scope.cancel()

    async def read(self, job: Job, name: str) -> mirror_inputs.Inputs:
        """Read request file ``name`` for ``job`` off the event loop (a large file must not stall
        the control API or the watchdog pings). OSError: it is gone; RequestFileError: bad input."""
        path = self.directory / name
        st = os.stat(path, follow_symlinks=False)
        self._read[job.id] = (name, (st.st_size, st.st_mtime_ns))
        return await trio.to_thread.run_sync(read_request, path, inbox.kind_of(name))

    def finished(self, job: Job, state: State, result: dict | None) -> None:
        """A request file whose job ended: out of the way if done or unreadable; else kept."""
        seen = self._read.pop(job.id, None)
        if seen is None or state not in (State.DONE, State.FAILED):
            return
        name, size_mtime = seen
        bad_input = state is State.FAILED and result is not None and result.get("input_problems") \
            and not result.get("fetched") and not result.get("failed")
        if state is State.FAILED and not bad_input:
            return  # an upstream problem: the refresh schedule tries it again
        src = self.directory / name
        try:
            st = os.stat(src, follow_symlinks=False)
            if (st.st_size, st.st_mtime_ns) != size_mtime:
                return  # replaced while the job ran: the new file has a job of its own
            dest = self.directory / (DONE_DIR if state is State.DONE else FAILED_DIR)
            dest.mkdir(exist_ok=True)
            os.replace(src, dest / name)
        except OSError as e:
            log.warning("request file not moved", file=str(src), error=e.strerror)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes of the file name, as surrogates
        return False


def _file_type(mode: int) -> str:
    for test, what in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "of an unknown type"


def read_request(path: Path, kind: str | None) -> mirror_inputs.Inputs:
    """Read and parse one request file (in a worker thread).

    Only a regular file is read, opened without following a symlink and without blocking (a
    FIFO renamed in would block a plain read forever), and only up to ``MAX_REQUEST`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RequestFileError(f"{path}: a symlink; request files must be regular files") from None
        raise RequestFileError(f"{path}: cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RequestFileError(f"{path}: not a regular file; request files must be regular files")
        if st.st_size > MAX_REQUEST:
            raise RequestFileError(f"{path}: {st.st_size} bytes; request files may have at most {MAX_REQUEST}")
        chunks, size = [], 0
        while size <= MAX_REQUEST:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_REQUEST:
            raise RequestFileError(f"{path}: grew past {MAX_REQUEST} bytes while read")
    except OSError as e:
        raise RequestFileError(f"{path}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    inputs = mirror_inputs.Inputs()
    mirror_inputs.parse_input(inputs, kind or "modules", b"".join(chunks), str(path))
    return inputs
