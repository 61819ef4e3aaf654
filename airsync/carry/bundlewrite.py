"""Writing a bundle (``airsync bundle``): the plan of ``carry.bundle`` streamed into tar parts.

Each part is written under a hidden name (``.airsync-<part>.partial``) straight from the mirror's
files (no second copy of the mirror), each file hashed (xxh3) as it is read and checked against the
signature the plan was made from (a file changed under us stops the bundle), the part hashed as it
is written; the part is fsynced and only then renamed to its own name, and the directory fsynced.
A part found under its own name is therefore complete: a rerun after kill -9 makes the same plan
(the same id, the same part names) and only hashes the parts it finds. The SBOM follows, then the
signed manifest last, atomically: a directory without the manifest is an unfinished bundle.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import xxhash

from airsync.carry import bundle, manifest
from airsync.carry.medium import BLOCK, overlap, sha256_file
from airsync.carry.signatures import SignatureCache, make_manifest, tree_signatures
from airsync.errors import ConfigError
from airsync.goproxy import modpath
from airsync.store import MirrorStore, fsync_dir, replace_durably, write_all
from airsync.trust import note
from airsync.units import count, human_bytes

__all__ = ["BundleResult", "write_bundle", "read_since"]


@dataclass(frozen=True)
class BundleResult:
    manifest: Path
    parts: tuple[Path, ...]
    carried: int
    held: int
    bytes: int  # of the parts
    written: int  # parts written this run (the rest were found complete)
    sequence: int | None

    def summary(self) -> str:
        return (f"airsync bundle: {self.manifest.name} (manifest {self.sequence}): {count(self.carried, 'file')} in "
                f"{count(len(self.parts), 'part')} ({human_bytes(self.bytes)}; {self.written} written now)"
                + (f", {self.held} held from the base" if self.held else ""))


def read_since(path: Path, verifier: note.Verifier) -> tuple[manifest.Manifest, str]:
    """The base manifest in ``path`` (signed by our own key) and its digest."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"--since {path}: cannot read: {e.strerror or e}") from None
    try:
        m = manifest.open_manifest(data, verifier, str(path))
    except (note.NoteError, manifest.ManifestError) as e:
        raise bundle.BundleError(f"--since {e} (a --since manifest must be one this signing key issued)") from None
    return m, manifest.digest(m)


def _atomic(path: Path, data: bytes) -> None:
    replace_durably(path, data, tmp_suffix=".partial")


def _write_part(mirror: Path, out: Path, part: bundle.PartPlan, done: Callable[[int], None]) -> str:
    """Write one part under its hidden name, fsync, rename; its sha256."""
    final = out / part.name
    tmp = out / f".airsync-{part.name}.partial"
    h = hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        def put(data) -> None:
            h.update(data)
            write_all(fd, data)

        for m in part.members:
            e = m.entry
            put(bundle.header(e.path, e.size))
            fh = xxhash.xxh3_128()  # the file is the one signed: its fast hash says so (the part's sha256 is the proof)
            n = 0
            src = os.open(mirror / e.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                while n < e.size and (block := os.read(src, min(BLOCK * 4, e.size - n))):
                    fh.update(block)
                    put(block)
                    n += len(block)
                    done(len(block))
            finally:
                os.close(src)
            if n != e.size or fh.hexdigest() != e.xxh3:
                raise bundle.BundleError(f"{mirror / e.path}: changed while being bundled; run the bundle again")
            pad = -n % bundle.BLOCK
            if pad:
                put(b"\0" * pad)
        put(bundle.END)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, final)
    fsync_dir(out)
    return h.hexdigest()


def write_bundle(mirror: Path, out: Path, signer: note.Signer, *, since: Path | None = None,
                 max_size: int = 4 * 1024**3 - 1, only: str = "",
                 progress: Callable[[int, int], None] | None = None, only_this: bool = False) -> BundleResult:
    """Write the bundle of the mirror at ``mirror`` (``only``: module globs; ``since``: the base
    manifest of a differential bundle) into the directory ``out``. ``progress(done, total)`` in bytes.
    ``only_this``: ``out`` is the caller's own work directory: files of other bundles (an earlier
    plan, made before the mirror changed) are removed from it."""
    mirror, out = Path(mirror), Path(out)
    if not mirror.is_dir():
        raise ConfigError(f"{mirror}: no such mirror directory; check the path")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a directory")
    if out.exists() and overlap(mirror, out):
        raise ConfigError(f"{out}: the bundle directory and the mirror {mirror} overlap; write it elsewhere")
    base, base_digest = read_since(since, signer.verifier) if since is not None else (None, None)
    store = MirrorStore(mirror, shared=True)  # keeps a mirror job from changing files under us
    cache = None
    try:
        cache = SignatureCache(store.state_path)
        sources = tree_signatures(mirror, cache, only)
        if only and not any("/@v/" in rel for rel in sources):
            raise ConfigError(f"--only {only!r} selects no module in {mirror}; nothing written")
        full = make_manifest(mirror, sources)
        if base is not None:
            snapshot = {e.path: e.sha256 for e in (*base.entries, *base.held)}
            carried, held = bundle.split_since(full.entries, snapshot)
        else:
            carried, held = list(full.entries), []
        try:
            p = bundle.plan(carried, max_size, held, base_digest)
        except bundle.BundleError as e:  # --max-size does not fit this mirror: nothing written
            raise ConfigError(str(e)) from None
        os.makedirs(out, exist_ok=True)
        if only_this:
            for f in out.iterdir():
                found = bundle.BUNDLE_FILE.fullmatch(f.name.removeprefix(".airsync-").removesuffix(".partial"))
                if found and found.group(1) != p.id:
                    f.unlink()
        return _write(mirror, out, signer, p, full, progress, cache)
    except OSError as e:
        what = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else e.strerror
        raise bundle.BundleError(
            f"{e.filename or out}: {what}; stopped. Parts already named are complete: run the bundle again to finish"
        ) from None
    finally:
        if cache is not None:
            cache.close()
        store.close()


def _write(mirror: Path, out: Path, signer, p: bundle.Plan, full: manifest.Manifest,
           progress: Callable[[int, int], None] | None, cache: SignatureCache) -> BundleResult:
    total = p.bytes
    done_bytes = 0

    def done(n: int) -> None:
        nonlocal done_bytes
        done_bytes += n
        if progress is not None:
            progress(done_bytes, total)

    for stale in out.glob(f".airsync-airsync-{p.id}.*.partial"):
        stale.unlink()  # a part a killed run left half-written
    parts: list[manifest.Part] = []
    written = 0
    for part in p.parts:
        final = out / part.name
        if final.is_file() and final.stat().st_size == part.size:
            sha = sha256_file(final)[1]  # named, so complete: fsynced before its rename
            done(part.size)
        else:
            sha = _write_part(mirror, out, part, done)
            written += 1
        parts.append(manifest.Part(part.name, part.size, sha))

    carried_paths = {e.path for e in p.carried}
    gosum = tuple(line for line in full.gosum if _gosum_carried(line, carried_paths))
    m = replace(full, entries=p.carried, held=p.held, gosum=gosum, base=p.base, parts=tuple(parts))
    m = manifest.number(m, signer)
    doc = cache.sbom(m.entries, m.gosum, p.id, m.created)
    sbom_path = out / bundle.sbom_name(p.id)
    _atomic(sbom_path, doc)
    m = replace(m, sbom=manifest.Part(sbom_path.name, len(doc), hashlib.sha256(doc).hexdigest()))
    mpath = out / bundle.manifest_name(p.id)
    _atomic(mpath, manifest.sign_manifest(m, signer))
    return BundleResult(mpath, tuple(out / q.name for q in parts), len(p.carried), len(p.held), p.bytes, written,
                        m.sequence)


def _gosum_carried(line: str, carried: set[str]) -> bool:
    path, version, _ = line.split(" ")
    mv = modpath.ModuleVersion(path, version.removesuffix("/go.mod"))
    ext = "mod" if version.endswith("/go.mod") else "zip"
    return modpath.proxy_file(mv, ext) in carried

