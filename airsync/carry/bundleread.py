"""Checking and importing a bundle (``airsync verify`` / ``airsync import`` of ``carry.bundle``'s files).

The files given (a directory, or the manifest and parts themselves, in any order) must hold
exactly one bundle manifest; it must open with the trusted key. Every part it lists must be
there once with its size; a tar file of another bundle among them is refused as foreign. Then
each part is read once, in the manifest's order: hashed whole (an altered part is named as
such), its members checked to be regular files, in the order and with the sizes the manifest
lists, and each written into a staging directory in the mirror's own workspace
(``.airsync/bundle-<id>/``, never served). The unpacked files then go
through the very checks a medium gets (``verify.check_tree``: sizes, hashes, module rules, h1,
and the carried checksum database) and the very import (``verify.import_checked``: conflicts,
the database as the import would leave it, lists last), except that files are renamed into
place, not copied again. Nothing reaches the mirror's tree before all of it verified; a problem
anywhere (a full disk too) removes the staging directory and names what was wrong.

A differential bundle also needs its base: every ``held`` file must be in the inside mirror with
the size the manifest gives (lists, ``@latest`` and lookup answers, which change in place, need
only be there), else it is refused before anything is unpacked. Its checksum database is checked
together with the inside's (alone it lacks the base's tiles).

After an import, the accepted manifest is kept as ``.airsync/receipts/<name>`` and, asked for,
copied to a receipt file: the border's next ``--since``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import xxhash

from airsync.carry import accepted, bundle, rollback
from airsync.carry.manifest import Manifest, ManifestError, open_manifest
from airsync.carry.medium import BLOCK, MANIFEST, MANIFEST_MAX
from airsync.carry.verify import ImportRefused, ImportResult, Report, check_tree, import_checked, inside_state
from airsync.store import Flusher, MirrorStore, makedirs, replace_durably, sha256_hex, write_all
from airsync.trust import note

__all__ = ["is_bundle", "Bundle", "open_bundle", "verify_bundle", "import_bundle", "read_sbom", "write_receipt"]


def is_bundle(path: Path) -> bool:
    """Does the directory ``path`` hold a bundle's files (and no medium's manifest)?"""
    path = Path(path)
    if not path.is_dir() or (path / MANIFEST).exists():
        return False
    return any(bundle.BUNDLE_FILE.fullmatch(n) for n in os.listdir(path))


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    raw: bytes  # the signed manifest as given
    name: str  # of the manifest file
    parts: dict[str, Path]  # part name -> the file given for it
    sbom: Path | None


def _files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if not q.name.startswith(".") and q.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise bundle.BundleError(f"{p}: no such file or directory")
    return out


def _find_manifest(files: list[Path]) -> Path:
    manifests = [f for f in files if f.name.endswith(".manifest")]
    distinct = sorted({f.name for f in manifests})
    if not distinct:
        raise bundle.BundleError("no bundle manifest (airsync-<id>.manifest) among the files given")
    if len(distinct) > 1:
        raise bundle.BundleError(f"manifests of {len(distinct)} bundles given ({', '.join(distinct)}): "
                                 "give one bundle at a time")
    return manifests[0]


def open_bundle(paths: list[Path], verifier: note.Verifier) -> tuple[Bundle, list[tuple[str, str]]]:
    """The bundle among ``paths`` (its manifest verified with ``verifier``) and the problems of its
    parts found without reading them: missing, given twice, wrong size, foreign."""
    files = _files([Path(p) for p in paths])
    mpath = _find_manifest(files)
    try:
        if mpath.stat().st_size > MANIFEST_MAX:
            raise bundle.BundleError(f"{mpath}: too large to be a manifest")
        raw = mpath.read_bytes()
    except OSError as e:
        raise bundle.BundleError(f"{mpath}: cannot read: {e.strerror or e}") from None
    try:
        m = open_manifest(raw, verifier, str(mpath))
    except (note.NoteError, ManifestError) as e:
        raise bundle.BundleError(str(e)) from None
    if not m.parts and m.entries:
        raise bundle.BundleError(f"{mpath}: a medium's manifest, not a bundle's (verify or import the medium's directory)")
    match = bundle.BUNDLE_FILE.fullmatch(mpath.name)
    bundle_id = match.group(1) if match else ""
    problems: list[tuple[str, str]] = []
    given: dict[str, Path] = {}
    listed = {p.name: p for p in m.parts}
    sbom_path = None
    for f in files:
        if f == mpath or f.name == mpath.name:
            continue
        if m.sbom is not None and f.name == m.sbom.name:
            sbom_path = f
            continue
        if f.name in given and os.path.realpath(f) != os.path.realpath(given[f.name]):
            problems.append((f.name, f"given twice ({given[f.name]} and {f}): duplicated part"))
            continue
        if f.name in listed:
            given[f.name] = f
        elif f.name.endswith(".tar"):
            problems.append((f.name, f"foreign: not a part of this bundle ({bundle_id or mpath.name})"))
    for i, part in enumerate(m.parts, 1):
        f = given.get(part.name)
        if f is None:
            problems.append((part.name, f"missing: part {i} of {len(m.parts)} was not given"))
            continue
        size = f.stat().st_size
        other = _other_part(f, size, part, m)
        if other is not None:
            problems.append((part.name, f"reordered: holds the bytes of part {other} ({m.parts[other - 1].name}); "
                                        "parts were renamed or swapped"))
        elif size < part.size:
            problems.append((part.name, f"truncated: {size} bytes, the manifest says {part.size}"))
        elif size > part.size:
            problems.append((part.name, f"grown: {size} bytes, the manifest says {part.size}"))
    if m.sbom is not None and sbom_path is not None:
        data = sbom_path.read_bytes()
        if (len(data), hashlib.sha256(data).hexdigest()) != (m.sbom.size, m.sbom.sha256):
            problems.append((m.sbom.name, "altered: the SBOM does not match the manifest"))
    return Bundle(m, raw, mpath.name, given, sbom_path), problems


def _other_part(f: Path, size: int, part, m: Manifest) -> int | None:
    """The number of the other part whose bytes the file given for ``part`` holds, if any."""
    same = [i for i, q in enumerate(m.parts, 1) if q.size == size and q is not part]
    if not same:
        return None
    sha = sha256_hex(f)
    if size == part.size and sha == part.sha256:
        return None
    return next((i for i in same if m.parts[i - 1].sha256 == sha), None)


class _HashReader:
    """A file read through sha256 (what tarfile reads, and the rest after it)."""

    def __init__(self, f) -> None:
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        self.n += len(data)
        return data

    def finish(self) -> tuple[int, str]:
        while self.read(BLOCK):
            pass
        return self.n, self.h.hexdigest()


class _Flat:
    """A staging directory of flat names: ``flat / rel`` is where the file ``rel`` is staged, so the
    checks and the import of ``verify`` read it as they read a medium's tree, while staging creates
    no directories (and removing it removes no directories)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __truediv__(self, rel: str) -> Path:
        return self.path / f"{xxhash.xxh3_128_hexdigest(rel.encode())}.staged"

    def __str__(self) -> str:
        return str(self.path)


def _unpack(b: Bundle, dest: _Flat) -> list[tuple[str, str]]:
    """Unpack every part into ``dest``; the problems found (none: every file is in ``dest``, fsynced)."""
    m = b.manifest
    expected = list(m.entries)
    k = 0
    problems: list[tuple[str, str]] = []
    written: list[Path] = []
    for i, part in enumerate(m.parts, 1):
        path = b.parts[part.name]
        why = None
        with open(path, "rb") as f:
            reader = _HashReader(f)
            try:
                with tarfile.open(fileobj=reader, mode="r|", bufsize=BLOCK) as tf:
                    for ti in tf:
                        if k >= len(expected):
                            why = f"holds {ti.name!r} beyond the files the manifest lists"
                            break
                        e = expected[k]
                        if ti.name != e.path:
                            why = f"holds {ti.name!r} where the manifest lists {e.path!r} next (parts reordered or altered?)"
                            break
                        if not ti.isreg() or ti.size != e.size:
                            why = f"{e.path!r} is not a regular file of {e.size} bytes in the part"
                            break
                        src = tf.extractfile(ti)
                        target = dest / e.path
                        # Its sha256 is checked with the others' by verify.check_tree: the part's
                        # own hash already covers these bytes once.
                        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                        try:
                            while block := src.read(BLOCK):
                                write_all(fd, block)
                        finally:
                            os.close(fd)
                        written.append(target)
                        k += 1
            except tarfile.TarError as e:
                why = f"not a readable tar archive ({e})"
            size, sha = reader.finish() if why is None else (path.stat().st_size, sha256_hex(path))
        if (size, sha) != (part.size, part.sha256):
            problems.append((part.name, "altered: its sha256 differs from the manifest (another bundle's, or changed)"))
            break
        if why is not None:
            problems.append((part.name, why))
            break
    else:
        if k < len(expected):
            problems.append((b.name, f"the parts hold {k} of the {len(expected)} files the manifest lists"))
    if not problems:
        Flusher(dest.path).files(written)
    return problems


def _held_problems(m: Manifest, into: Path) -> list[tuple[str, str]]:
    """What the inside lacks of a differential bundle's base: a held file that is not there, or
    (module files and tiles never change) not of its size. Only stat is asked: the inside's
    files were verified when they came in, and reading the whole mirror again would cost more
    than the bundle."""
    def size_only(path: Path) -> tuple[int, str]:
        return os.lstat(path).st_size, ""

    lacking = []
    for e in m.held:
        if e.path.endswith("/@latest"):
            continue
        have = inside_state(into, e.path, size_only)
        if have is None or have[0] != "file":
            lacking.append(e.path)
        elif not bundle.mutable(e.path) and have[1] != e.size:
            lacking.append(e.path)
    if not lacking:
        return []
    return [(lacking[0], f"the inside lacks {len(lacking)} file(s) of this differential bundle's base "
             f"(manifest {m.base}), e.g. this one: import the base first, or ask for a full bundle")]


def _refuse(problems: list[tuple[str, str]], m: Manifest, why: str) -> ImportRefused:
    return ImportRefused(Report(tuple(problems), files=len(m.entries), bytes=sum(e.size for e in m.entries)), why)


def verify_bundle(paths: list[Path], verifier: note.Verifier, gosumdb: str | None = None) -> tuple[Report, Manifest | None]:
    """Check a bundle alone (unpacked into a temporary directory, then removed)."""
    import tempfile

    try:
        b, problems = open_bundle(paths, verifier)
    except bundle.BundleError as e:
        return Report((("bundle", str(e)),)), None
    m = b.manifest
    if problems:
        return Report(tuple(problems), files=len(m.entries)), m
    tmp = Path(tempfile.mkdtemp(prefix="airsync-verify-"))
    try:
        problems = _unpack(b, _Flat(tmp))
        if problems:
            return Report(tuple(problems), files=len(m.entries)), m
        report = check_tree(_Flat(tmp), m, [e.path for e in m.entries], (), gosumdb, sumdb_alone=not m.held)
        return report, m
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_bundle(paths: list[Path], into: Path, verifier: note.Verifier, gosumdb: str | None = None,
                  policy: rollback.Policy | None = None, receipt: Path | None = None) -> ImportResult:
    """Verify the bundle among ``paths`` and merge it into the mirror at ``into``; see the module docstring."""
    into = Path(into)
    b, problems = open_bundle(paths, verifier)
    m = b.manifest
    if problems:
        raise _refuse(problems, m, f"the bundle {b.name} is not complete and intact; nothing imported")
    guard = accepted.guard(into, verifier, m, policy or rollback.Policy())
    store = MirrorStore(into)
    staging = store.work / f"bundle-{b.name.removesuffix('.manifest')}"
    try:
        lacking = _held_problems(m, into)
        if lacking:
            raise _refuse(lacking, m, f"{into}: the base of this differential bundle is not here; nothing imported")
        for old in store.work.glob("bundle-*"):  # left by an import that was killed (we hold the lock)
            shutil.rmtree(old, ignore_errors=True)
        staging.mkdir()
        flat = _Flat(staging)
        problems = _unpack(b, flat)
        if problems:
            raise _refuse(problems, m, f"the bundle {b.name} does not verify; nothing imported")
        report = check_tree(flat, m, [e.path for e in m.entries], (), gosumdb, sumdb_alone=not m.held)
        if not report.ok:
            raise ImportRefused(report, f"the bundle {b.name} does not verify; nothing imported")
        result = import_checked(flat, into, m, report, guard, gosumdb, move=True, store=store)
        _keep_receipt(store, b, receipt)
        return result
    except OSError as e:
        what = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        raise bundle.BundleError(f"{e.filename or into}: {what}; the bundle was not imported (nothing of it is "
                                 "visible in the mirror); make room and import it again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        store.close()


def _keep_receipt(store: MirrorStore, b: Bundle, receipt: Path | None) -> None:
    write_receipt(store.work / "receipts" / b.name, b.raw)
    if receipt is not None:
        write_receipt(receipt, b.raw)


def write_receipt(path: Path, raw: bytes) -> None:
    """Write a receipt (the signed manifest accepted) atomically and durably."""
    path = Path(path)
    makedirs(path.parent)
    replace_durably(path, raw)


def read_sbom(path: Path, verifier: note.Verifier | None = None) -> bytes:
    """The SBOM of a bundle (its directory, or its manifest) or of a medium (its directory), checked
    against the manifest's hash (and the manifest's signature, given ``verifier``)."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST).exists():
        mpath = path / MANIFEST
    elif path.is_dir():
        mpath = _find_manifest(_files([path]))
    else:
        mpath = path
    try:
        raw = mpath.read_bytes()
    except OSError as e:
        raise bundle.BundleError(f"{mpath}: cannot read: {e.strerror or e}") from None
    try:
        if verifier is not None:
            m = open_manifest(raw, verifier, str(mpath))
        else:
            from airsync.carry.manifest import decode

            m = decode(raw.split(b"\n\n", 1)[0] + b"\n", str(mpath))
    except (note.NoteError, ManifestError) as e:
        raise bundle.BundleError(str(e)) from None
    if m.sbom is None:
        raise bundle.BundleError(f"{mpath}: this manifest lists no SBOM (made by an older airsync?)")
    spath = mpath.parent / m.sbom.name
    try:
        data = spath.read_bytes()
    except OSError as e:
        raise bundle.BundleError(f"{spath}: cannot read the SBOM: {e.strerror or e}") from None
    if (len(data), hashlib.sha256(data).hexdigest()) != (m.sbom.size, m.sbom.sha256):
        raise bundle.BundleError(f"{spath}: does not match the hash its manifest gives; altered")
    return data


