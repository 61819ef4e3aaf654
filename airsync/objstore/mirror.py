"""``ObjectMirrorStore``: a mirror in an S3-compatible object store, with a directory's guarantees.

The objects under the store URL's prefix are byte for byte the files of a directory mirror
(``<escaped module>/@v/{list,<v>.info,.mod,.zip}``, ``@latest``, ``sumdb/``), so any GOPROXY
client that can read the bucket reads it as it reads the directory. It offers the methods of
``store.MirrorStore`` that the mirror job, the import and the checksum-database carrier call;
how each guarantee is kept here:

- *Nothing unverified is visible.* Downloads are staged and verified in a local workspace (the
  same ``.airsync/partial`` a directory has), and only then put under their final keys.
- *Published files are immutable.* A module file is put create-only (``If-None-Match: *``). When
  the key exists already (another writer, or a rerun after kill -9 between the put and the
  local bookkeeping) its bytes are compared: the same bytes are success, different bytes a named
  error (EEXIST), and the object is never overwritten.
- *Index files are updated last, by compare-and-swap.* ``@v/list`` is read with its ETag, the new
  versions merged in, and put with ``If-Match`` (``If-None-Match: *`` when there was none); a
  lost race reads and merges again, so two writers never lose each other's versions. ``@latest``
  is recomputed from the list the same way, read before the list so a stale writer's swap fails.
- *One writer at a time* becomes a lease object (``PREFIX/.airsync/lease``) with an expiry that
  its holder renews; a second writer waits for it to be released or to expire (a holder on this
  host whose process is gone is taken over at once, as a rerun after kill -9 needs). The lease
  is the coarse guard; the conditional writes above keep the data right even if it lapses.

Resume state, partial downloads and rejected bytes stay local: in ``[store] state`` if set, else
``$XDG_STATE_HOME/airsync/stores/<bucket>/<name>`` (``~/.local/state/...``), one workspace per
store URL and endpoint, locked like a directory mirror's. Losing it costs only re-downloads.
Which keys exist is read once when the store is opened (one listing per 1,000 objects) and kept
up to date with what this process publishes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import os
import random
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import structlog
import xxhash

from airsync.goproxy import modpath
from airsync.objstore.client import Bucket, Conflict, ObjectStoreError
from airsync.objstore import url as url_mod
from airsync.objstore.url import StoreTarget
from airsync.store import (
    WORKDIR,
    MirrorStore,
    StoreError,
    fsync_path,
    latest_info,
    merged_list,
    pid_alive,
    sha256_hex,
    write_plain,
)

log = structlog.get_logger("airsync.objstore")

LEASE = f"{WORKDIR}/lease"
LEASE_SECONDS = 60.0
LEASE_WAIT = 600.0
_CAS_ATTEMPTS = 64


def default_state_dir(target: StoreTarget, env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if target.settings.state:
        return Path(target.settings.state).expanduser()
    base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    ident = xxhash.xxh3_64_hexdigest(f"{target.settings.endpoint}\0{target.url.bucket}\0{target.url.prefix}".encode())
    name = (target.url.prefix.replace("/", "_") or "_") + f"-{ident[:12]}"
    return base / "airsync" / "stores" / target.url.bucket / name


def merge_versions(text: bytes | None, versions: tuple[str, ...]) -> bytes | None:
    """A ``@v/list`` object with ``versions`` added (``store.merged_list``); None when all were there."""
    merged = merged_list(text.decode("utf-8", "replace") if text else "", versions)
    return None if merged is None else merged.encode()


class _NoFlush:
    """A store's objects are durable when their puts are answered; the staged local files are
    only resume state, which a crash may lose (they are fetched again), so nothing is synced."""

    def files(self, paths: list[Path]) -> None:
        pass

    def dirs(self, dirs: set[Path]) -> None:
        pass

    def dirs_later(self, dirs: set[Path]) -> None:
        pass

    def settle(self) -> None:
        pass


class ObjectMirrorStore:
    """The methods of ``store.MirrorStore`` over a bucket (see the module docstring)."""

    remote = True

    def __init__(self, target: StoreTarget, shared: bool = False, *, lease_seconds: float = LEASE_SECONDS,
                 lease_wait: float = LEASE_WAIT, bucket: Bucket | None = None) -> None:
        self.target = target
        self.url = target.url
        self.bucket = bucket or Bucket(target.url, target.settings)
        workspace = default_state_dir(target)
        try:
            workspace.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{target}: cannot make its local state directory {workspace}: {e.strerror}") from None
        # The local workspace is a directory mirror's .airsync, locked the same way; a second
        # writer on this host waits for it as it would wait for the lease.
        deadline = time.monotonic() + lease_wait
        while True:
            try:
                self._local = MirrorStore(workspace, shared=shared)
                break
            except StoreError as e:
                if "in use" not in str(e) and "being written" not in str(e):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(f"{target} is in use by another airsync process on this host "
                                     f"({str(e).rpartition('(')[2].rstrip(')')}); waited {lease_wait:.0f} s") from None
                time.sleep(0.2)
        self.root = self._local.root
        self.work = self._local.work
        self.partial_dir = self._local.partial_dir
        self.rejected_dir = self._local.rejected_dir
        self._lease_etag: str | None = None
        self._lease_body = b""
        self._lease_lost = False
        self._stop_renew = threading.Event()
        self._renewer: threading.Thread | None = None
        try:
            self.bucket.check()
            if not shared:
                self._acquire(lease_seconds, lease_wait)
            self._keys = self._list_keys()
        except BaseException:
            self.close()
            raise

    def __str__(self) -> str:
        return str(self.url)

    # -- the lease ---------------------------------------------------------------------------

    def _lease_record(self, seconds: float) -> bytes:
        return json.dumps({
            "host": socket.gethostname(), "pid": os.getpid(), "expires": time.time() + seconds,
            "seconds": seconds, "workspace": str(self.root),
        }, sort_keys=True).encode()

    def _acquire(self, seconds: float, wait: float) -> None:
        key = self.url.key(LEASE)
        deadline = time.monotonic() + wait
        told = False
        while True:
            cur = self.bucket.get(key)
            mine = self._lease_record(seconds)
            try:
                if cur is None:
                    self._lease_etag = self.bucket.put_swap(key, mine, None)
                    break
                data, etag = cur
                try:
                    held = json.loads(data)
                    expires, host, pid = float(held["expires"]), str(held["host"]), int(held["pid"])
                except (ValueError, KeyError, TypeError):
                    expires, host, pid = 0.0, "?", 0  # unreadable: treated as expired
                gone = host == socket.gethostname() and not pid_alive(pid)
                if expires < time.time() or gone:
                    self._lease_etag = self.bucket.put_swap(key, mine, etag)
                    if gone:
                        log.info("took over the lease of a process that is gone", store=str(self.url), pid=pid)
                    break
            except Conflict:
                continue  # another writer moved first: look again
            if time.monotonic() > deadline:
                raise StoreError(
                    f"{self.url} is in use by another airsync process (pid {pid} on {host}, lease valid for "
                    f"{max(0, expires - time.time()):.0f} s more); waited {wait:.0f} s"
                )
            if not told:
                log.warning("waiting for the store's lease", store=str(self.url), holder=f"{host}:{pid}")
                told = True
            time.sleep(min(1.0, max(0.05, expires - time.time())))
        self._lease_body = mine
        self._renewer = threading.Thread(target=self._renew, args=(seconds,), daemon=True, name="airsync-lease")
        self._renewer.start()

    def _renew(self, seconds: float) -> None:
        key = self.url.key(LEASE)
        while not self._stop_renew.wait(seconds / 3):
            try:
                self._lease_etag = self.bucket.put_swap(key, self._lease_record(seconds), self._lease_etag)
            except Conflict:
                self._lease_lost = True
                log.error("lost the store's lease to another writer", store=str(self.url))
                return
            except ObjectStoreError as e:
                log.warning("could not renew the store's lease", store=str(self.url), error=str(e))

    def _release(self) -> None:
        self._stop_renew.set()
        if self._renewer is not None:
            self._renewer.join(10)
            self._renewer = None
        if self._lease_etag is None or self._lease_lost:
            return
        key = self.url.key(LEASE)
        try:
            cur = self.bucket.head(key)
            if cur is not None and cur[1] == self._lease_etag:
                self.bucket.delete(key)
        except ObjectStoreError as e:
            log.warning("could not release the store's lease (it expires on its own)", store=str(self.url), error=str(e))
        self._lease_etag = None

    # -- MirrorStore's methods ---------------------------------------------------------------

    def make_flusher(self) -> _NoFlush:
        return _NoFlush()

    def close(self) -> None:
        self._release()
        self._local.close()

    def _list_keys(self) -> dict[str, int]:
        self._etags: dict[str, str | None] = {}
        base = f"{self.url.prefix}/" if self.url.prefix else ""
        keys = {}
        for key, size, etag in self.bucket.list_meta(base):
            rel = self.url.rel(key)
            if not rel.startswith(f"{WORKDIR}/"):
                keys[rel] = size
                self._etags[rel] = etag
        return keys

    def push_tree(self, tree: Path) -> int:
        written = 0
        lists: list[str] = []
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree).as_posix()
            if rel.split("/")[0] == WORKDIR or not path.is_file() or path.is_symlink():
                continue
            if rel.endswith("/@v/list"):
                lists.append(rel)
                continue
            if rel.endswith("/@latest"):
                continue  # follows the list: recomputed below
            data = path.read_bytes()
            replace = rel.startswith("sumdb/") and "/lookup/" in rel
            if rel in self._keys and (self._keys[rel] == len(data) and not replace or self.read_bytes(rel) == data):
                continue
            partial = self.partial_path(rel)
            write_plain(partial, data)
            self.publish(partial, rel, replace=replace)
            written += 1
        for rel in lists:
            versions = (tree / rel).read_text("utf-8").split()
            if versions and self.add_to_list(rel, *versions):
                written += 1
                try:
                    module = modpath.unescape_path(rel.removesuffix("/@v/list"))
                except Exception:  # not a module's list: nothing follows it
                    continue
                written += self.update_latest(module)
        return written

    def refresh_copy(self) -> tuple[Path, int]:
        """Bring a local directory mirror (``<state>/tree``) up to the store's objects: each
        object whose size or ETag changed is downloaded (to a partial file, fsynced, renamed in),
        files the store no longer holds are removed. Returns the directory and how many files
        were downloaded. Run under the lease, so that no writer publishes meanwhile and every
        list names only files that are in the copy."""
        tree = self.root / "tree"
        tree.mkdir(exist_ok=True)
        seen_path = self.work / "copied.json"
        try:
            seen = json.loads(seen_path.read_text("utf-8"))
        except (OSError, ValueError):
            seen = {}
        fetched = 0
        for rel, size in sorted(self._keys.items()):
            local = tree / rel
            mark = [size, self._etags.get(rel)]
            if seen.get(rel) == mark and local.is_file() and local.stat().st_size == size:
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.partial_dir / f"{xxhash.xxh3_64_hexdigest(rel.encode())}.copy.tmp"
            if not self.bucket.get_to(self.url.key(rel), tmp):
                continue  # gone meanwhile
            fsync_path(tmp)
            os.replace(tmp, local)
            seen[rel] = mark
            fetched += 1
        for path in sorted(tree.rglob("*"), reverse=True):
            rel = path.relative_to(tree).as_posix()
            if rel.split("/")[0] == WORKDIR:
                continue
            if path.is_file() and rel not in self._keys:
                path.unlink()
                seen.pop(rel, None)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        write_plain(seen_path, json.dumps(seen).encode(), fsync=True)
        return tree, fetched

    @property
    def state_path(self) -> Path:
        return self._local.state_path

    def clean_partial(self, resumable: set[str]) -> int:
        return self._local.clean_partial(resumable)

    def partial_path(self, relpath: str) -> Path:
        return self._local.partial_path(relpath)

    def reject(self, partial: Path, relpath: str) -> Path:
        return self._local.reject(partial, relpath)

    def is_published(self, relpath: str) -> bool:
        return relpath in self._keys

    def published(self) -> dict[str, int]:
        """Every published relative path and its size (as listed when opened, plus this process's)."""
        return dict(self._keys)

    def read_bytes(self, relpath: str) -> bytes:
        got = self.bucket.get(self.url.key(relpath))
        if got is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", f"{self.url}/{relpath}")
        return got[0]

    def stat(self, relpath: str) -> None:
        return None  # no local file: chunk signatures are not cached for a store

    @contextlib.contextmanager
    def local_copy(self, relpath: str) -> Iterator[Path]:
        tmp = self.partial_dir / f"{xxhash.xxh3_64_hexdigest(relpath.encode())}.read.tmp"
        if not self.bucket.get_to(self.url.key(relpath), tmp):
            raise FileNotFoundError(errno.ENOENT, "no such object", f"{self.url}/{relpath}")
        try:
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def _check_lease(self) -> None:
        if self._lease_lost:
            raise ObjectStoreError(errno.EIO, f"{self.url}: this process lost its lease to another writer; stopped")

    def publish(self, partial: Path, relpath: str, replace: bool = False) -> set[Path]:
        """Put a verified partial file under its final key, create-only; no directories to sync.

        ``replace``: the file may be replaced by newer bytes (a checksum-database lookup that now
        carries a newer tree head): put by compare-and-swap on the ETag that was read.
        """
        self._check_lease()
        key = self.url.key(relpath)
        size = partial.stat().st_size
        if replace:
            cur = self.bucket.head(key)
            try:
                self.bucket.put_swap(key, partial.read_bytes(), cur[1] if cur else None)
            except Conflict:
                raise ObjectStoreError(errno.EEXIST, f"{self.url}/{relpath}: changed by another writer meanwhile; "
                                       "left as it is") from None
        else:
            try:
                self.bucket.put_create(key, partial)
            except Conflict:
                self._same_or_raise(partial, relpath, key)
        partial.unlink(missing_ok=True)
        self._keys[relpath] = size
        return set()

    def _same_or_raise(self, partial: Path, relpath: str, key: str) -> None:
        """The key exists: fine if it holds these bytes (a rerun, or another writer, put them)."""
        ours = sha256_hex(partial)
        tmp = partial.with_name(partial.name + ".theirs")
        try:
            if self.bucket.get_to(key, tmp) and sha256_hex(tmp) == ours:
                return
            theirs = tmp.stat().st_size if tmp.exists() else 0
        finally:
            tmp.unlink(missing_ok=True)
        raise ObjectStoreError(
            errno.EEXIST,
            f"{self.url}/{relpath}: the store already holds different bytes ({theirs} bytes, not the "
            f"{partial.stat().st_size} verified ones); published files are never overwritten: left as it is",
        )

    def file_state(self, relpath: str) -> tuple[str, int, str] | None:
        """("file", size, sha256) of the object at ``relpath`` (read through once), or None."""
        if relpath not in self._keys:
            return None
        with self.local_copy(relpath) as path:
            return ("file", path.stat().st_size, sha256_hex(path))

    def copy_tree(self, relpath: str, dest: Path) -> int:
        """Download every object under ``relpath/`` into ``dest/relpath``; how many."""
        n = 0
        for rel in sorted(self._keys):
            if rel.startswith(relpath.rstrip("/") + "/"):
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                if self.bucket.get_to(self.url.key(rel), out):
                    n += 1
        return n

    def read_tree(self, relpath: str) -> dict[str, bytes]:
        """Every object under ``relpath/``, by path relative to it."""
        base = relpath.rstrip("/") + "/"
        out = {}
        for rel in sorted(self._keys):
            if rel.startswith(base):
                try:
                    out[rel[len(base):]] = self.read_bytes(rel)
                except FileNotFoundError:
                    continue
        return out

    @staticmethod
    def sync_dirs(dirs: set[Path]) -> None:
        """Nothing to sync: an object is durable when its put is answered."""

    def _swap(self, relpath: str, change) -> bool:
        """Compare-and-swap loop: ``change(current bytes or None)`` gives the new bytes or None
        (nothing to do); a lost race reads and applies it again. True when it wrote."""
        self._check_lease()
        key = self.url.key(relpath)
        for attempt in range(_CAS_ATTEMPTS):
            cur = self.bucket.get(key)
            new = change(cur[0] if cur else None)
            if new is None:
                return False
            try:
                self.bucket.put_swap(key, new, cur[1] if cur else None)
                self._keys[relpath] = len(new)
                return True
            except Conflict:
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise ObjectStoreError(errno.EIO, f"{self.url}/{relpath}: still changing after {_CAS_ATTEMPTS} attempts "
                               "to update it; try again")

    def add_to_list(self, list_relpath: str, *versions: str) -> bool:
        return self._swap(list_relpath, lambda cur: merge_versions(cur, versions))

    def prepare_list(self, list_relpath: str, *versions: str) -> tuple[Path, str] | None:
        """Stage the versions to add to ``@v/list``; ``commit_list`` merges them in, by
        compare-and-swap, after the version's files are published (and finds out then whether
        they were all listed already: one read, not two)."""
        tmp = self.partial_dir / f"{xxhash.xxh3_64_hexdigest(list_relpath.encode())}.list.tmp"
        write_plain(tmp, "".join(v + "\n" for v in versions).encode())
        return tmp, list_relpath

    def commit_list(self, staged: tuple[Path, str]) -> set[Path]:
        tmp, list_relpath = staged
        versions = tuple(tmp.read_text("utf-8").split())
        self.add_to_list(list_relpath, *versions)
        tmp.unlink(missing_ok=True)
        return set()

    def update_latest_many(self, module_paths: list[str], flusher: object = None) -> None:
        """``update_latest`` of each module, 16 at a time: each is a few round trips to the store
        (``flusher``: unused, a put is durable when answered)."""
        if not module_paths:
            return
        with concurrent.futures.ThreadPoolExecutor(min(16, len(module_paths))) as pool:
            for f in [pool.submit(self.update_latest, p) for p in module_paths]:
                f.result()

    def update_latest(self, module_path: str) -> bool:
        """``@latest`` follows ``@v/list`` (as ``MirrorStore.update_latest``), by compare-and-swap:
        ``@latest`` is read before the list, so a writer that saw an older list loses its swap."""
        latest_rel = modpath.latest_file(module_path)

        def change(cur: bytes | None) -> bytes | None:
            try:
                text = self.read_bytes(modpath.list_file(module_path)).decode("utf-8")
            except (FileNotFoundError, UnicodeDecodeError):
                return None
            info = latest_info(
                text, lambda v: self.read_bytes(modpath.proxy_file(modpath.ModuleVersion(module_path, v), "info"))
            )
            return None if info is None or cur == info else info

        return self._swap(latest_rel, change)


def push_copy(target: StoreTarget, tree: Path) -> int:
    """Publish what a local copy (``refresh_copy``'s) gained into the store: new files
    create-only (a key holding other bytes is an error, never overwritten), checksum-database
    lookups by compare-and-swap, then the versions of each ``@v/list`` merged in, then ``@latest``
    recomputed. Returns how many objects were written."""
    store = ObjectMirrorStore(target)
    try:
        return store.push_tree(tree)
    finally:
        store.close()


def local_copy_of(target: StoreTarget) -> tuple[Path, int]:
    """A local directory mirror holding exactly the store's files, for commands that read a
    mirror as files (``sync --mirror``); (its path, files downloaded to bring it up to date)."""
    store = ObjectMirrorStore(target)
    try:
        return store.refresh_copy()
    finally:
        store.close()


def open_store(target: Path | StoreTarget, shared: bool = False) -> MirrorStore | ObjectMirrorStore:
    """The mirror at ``target``: a directory (``store.MirrorStore``) or an object store."""
    if isinstance(target, StoreTarget):
        return ObjectMirrorStore(target, shared=shared)
    return MirrorStore(Path(target), shared=shared)


def _read_text(path: str) -> str | None:
    try:
        return Path(path).expanduser().read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def target(value: str | Path, table: dict | None = None, env: dict[str, str] | None = None) -> Path | StoreTarget:
    """A mirror target as given by the user: ``s3://BUCKET/PREFIX`` (settings resolved from the
    environment, the ``[store]`` table and the AWS files), else a directory path."""
    text = str(value)
    if not url_mod.is_store_url(text):
        return Path(value)
    env = dict(os.environ if env is None else env)
    creds = _read_text(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")
    conf = _read_text(env.get("AWS_CONFIG_FILE") or "~/.aws/config")
    return StoreTarget(url_mod.parse(text), url_mod.settings(env, table, creds, conf))
