"""Checking a transfer medium inside the air gap, and merging it into the inside mirror.

``verify_medium`` proves that a medium is exactly what the border host wrote: the signed manifest
(``airsync-manifest``) must verify with the trusted verifier key, every file it lists must be on
the medium with its size and SHA-256, nothing else may be there (no extra files, no symlinks or
special files), and each module ``.zip`` and ``.mod`` must follow the module rules and hash to the
``h1:`` the manifest's go.sum lines give for it. Every problem is named by its path.

The carried checksum database (``sumdb/<name>/``) is checked as the go command will check it,
from the carried tiles alone (``airsync.trust.ondisk``): every lookup's note opens with the key
(the one GOSUMDB names here, else the built-in key of a known database, else the key the border
carried), every record is included in its head and in every newer one, every pair of carried
heads is consistent; a missing tile, a note signed by another key, a forked log are problems.

The carried vulnerability database (``vulndb/``) is checked as ``airsync.vulndb.ondisk.check``
does: indexes that agree, every entry they name present, well-formed, with its own id and time.

``import_medium`` imports a medium only when it verifies, and only when no file it carries would
replace different bytes already in the inside mirror: module files and checksum-database tiles
and heads are immutable, so a difference is a tamper signal and the whole import is refused
before anything is written. ``@v/list`` files are the exception: they grow, and are merged (and
``@latest``, which follows the list, is recomputed from the merged one, never copied)
(union of the versions, semver order). Lookup answers are the other: each carries the newest
head of its carry, so the same record comes with a newer head in a later carry. A medium's
answer replaces the inside's only when it is the same record at a newer head; an older one never
replaces a newer one. The inside mirror as the import would leave it must pass the go command's
checks too (problems it already had aside), so a medium that cannot prove the inside's heads
consistent with its own is refused. The vulnerability database replaces the inside's only when the
medium's is newer (its ``index/db.json`` time), entries before indexes. New files are copied through the mirror's staging area, fsynced,
checked against the manifest once more and only then renamed into place; module files go in
before the lists that advertise them.

The manifest's SBOM (``airsync-sbom.cdx.json``) must match the hash the manifest gives. An import
refuses a manifest older than one the mirror accepted before from its key (``carry.accepted``,
``carry.rollback``) and records the one it imports. ``check_tree`` and ``import_checked`` are the
same checks and import for files that did not come as a medium: a bundle's, unpacked in the
mirror's workspace (``carry.bundleread``).

The checks are pure functions over values (``check_medium``, ``plan_import``); the functions
that read and write files are thin around them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airsync.carry import accepted, rollback
from airsync.carry.manifest import Entry, Manifest, ManifestError, Part, diff, open_manifest
from airsync.carry.medium import BLOCK, MANIFEST, sha256_file, tree_files
from airsync.errors import AirsyncError, ModulePathError, VerifyError
from airsync.goproxy import dirhash, modpath, modzip, semver
from airsync.objstore.mirror import open_store
from airsync.objstore.url import StoreTarget
from airsync.store import MirrorStore, write_all
from airsync.trust import carried, note, ondisk
from airsync.vulndb import db as vulndb_db
from airsync.vulndb import ondisk as vulndb_disk
from airsync.units import count, human_bytes

__all__ = [
    "BLOCK",
    "Report",
    "ImportResult",
    "ImportRefused",
    "ImportFailed",
    "gosum_hashes",
    "check_medium",
    "verify_medium",
    "Plan",
    "plan_import",
    "inside_state",
    "merge_list",
    "list_versions",
    "import_medium",
    "import_checked",
    "check_tree",
]


_DIFF_WORDS = {
    "missing": "missing (listed in the manifest, not on the medium)",
    "extra": "extra (on the medium, not in the manifest)",
    "altered": "altered (sha256 differs from the manifest)",
    "truncated": "truncated (smaller than the manifest says)",
    "grown": "grown (larger than the manifest says)",
}


@dataclass(frozen=True)
class Report:
    """What checking a medium (or an import plan) found: (path, problem) pairs sorted by path."""

    problems: tuple[tuple[str, str], ...] = ()
    files: int = 0  # files listed in the manifest
    bytes: int = 0  # their total size

    def __post_init__(self) -> None:
        object.__setattr__(self, "problems", tuple(sorted(self.problems)))

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        # Names found on a medium are untrusted: anything unprintable is shown quoted and escaped.
        def show(path: str) -> str:
            return path if path.isascii() and path.isprintable() else modpath.quote(path)

        return [f"{show(path)}: {problem}" for path, problem in self.problems]

    def summary(self) -> str:
        if self.ok:
            return f"ok: {count(self.files, 'file')}, {human_bytes(self.bytes)}, match the signed manifest"
        paths = len({p for p, _ in self.problems})
        return f"{len(self.problems)} problem(s) in {paths} path(s); {self.files} files listed in the manifest"


@dataclass(frozen=True)
class ImportResult:
    imported: int = 0  # new files copied in
    skipped: int = 0  # already there with identical bytes (lists: nothing new to add)
    merged: tuple[str, ...] = ()  # @v/list files that gained versions
    bytes: int = 0  # bytes copied
    report: Report = field(default_factory=Report)

    def summary(self) -> str:
        return (
            f"imported {count(self.imported, 'file')} ({human_bytes(self.bytes)}), skipped {self.skipped} "
            f"already present, merged {count(len(self.merged), '@v/list file')}"
        )


class ImportRefused(AirsyncError):
    """The import did not start: the medium does not verify, or it conflicts with the mirror."""

    def __init__(self, report: Report, why: str) -> None:
        self.report = report
        super().__init__(why)


class ImportFailed(AirsyncError):
    """A file changed on the medium while being imported (what was published so far is verified)."""


# --- pure checks ----------------------------------------------------------------------------------


def _is_list(rel: str) -> bool:
    return rel.endswith("/@v/list")


def _is_latest(rel: str) -> bool:
    return rel.endswith("/@latest")


VULNDB_PREFIX = vulndb_disk.VULNDB + "/"


def vulndb_index_rank(rel: str) -> int:
    """Where a vulnerability database file goes in an import: entries (0) first, then vulns.json and
    modules.json (1), db.json (2) last, so that no index names an entry not there yet."""
    if not rel.startswith(VULNDB_PREFIX):
        return 0
    rest = rel[len(VULNDB_PREFIX):]
    return 2 if rest == vulndb_db.DB_FILE else 1 if rest in vulndb_db.INDEX_FILES else 0


def vulndb_decision(medium_db: bytes | None, inside_db: bytes | None) -> str | None:
    """Whether the medium's vulnerability database (its db.json) replaces the inside's: "newer"
    (it does), "same" or "older" (the inside's stays); None when the inside has none."""
    if inside_db is None:
        return None
    try:
        old = vulndb_db.parse_db(inside_db).modified
    except vulndb_db.VulnDBError:
        return "newer"  # the inside's is damaged: a checked copy replaces it
    try:
        new = vulndb_db.parse_db(medium_db or b"").modified
    except vulndb_db.VulnDBError:
        return "older"
    return "newer" if new > old else "same" if new == old else "older"


def update_latest(store: MirrorStore, paths: Iterable[str]) -> None:
    """Recompute ``@latest`` of each module whose ``@latest`` is among ``paths`` (a manifest's) or
    already in the mirror, from its list as it now is: it follows the list, and is never copied
    from a medium or peer, whose list may hold other versions."""
    paths = list(paths)
    has_latest = {rel.removesuffix("/@latest") for rel in paths if _is_latest(rel)}
    modules = []
    for rel in paths:
        mod = rel.removesuffix("/@v/list")
        if _is_list(rel) and (mod in has_latest or store.is_published(f"{mod}/@latest")):
            try:
                modules.append(modpath.unescape_path(mod))
            except ModulePathError:
                continue  # not a module's list: nothing to follow
    store.update_latest_many(modules, store.make_flusher())


def gosum_hashes(lines: Iterable[str]) -> dict[tuple[str, str], set[str]]:
    """(module path, version or version/go.mod) -> the h1 hashes the go.sum lines give for it."""
    out: dict[tuple[str, str], set[str]] = {}
    for line in lines:
        path, version, h = line.split(" ")
        out.setdefault((path, version), set()).add(h)
    return out


def list_versions(data: bytes) -> list[str] | str:
    """The versions in an ``@v/list``, or why it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "@v/list is not UTF-8"
    versions = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if not semver.is_valid(fields[0]):
            return f"@v/list line {modpath.quote(line)} is not a version"
        versions.append(fields[0])
    return versions


def check_medium(
    manifest: Manifest,
    actual: Mapping[str, tuple[int, str]],
    odd: Iterable[tuple[str, str]],
    h1: Mapping[str, str],
    bad_module_files: Mapping[str, str] | None = None,
) -> Report:
    """Every problem of a medium, from what was measured on it.

    ``actual``: path -> (size, sha256) of each regular file found; ``odd``: (path, kind) for
    symlinks and special files; ``h1``: path -> h1 hash computed for module ``.zip``/``.mod``
    files; ``bad_module_files``: path -> why a module file could not be hashed.
    """
    odd = list(odd)
    odd_paths = {p for p, _ in odd}
    # A listed file that is a symlink on the medium is named once, as what it is.
    problems: list[tuple[str, str]] = [
        (p, _DIFF_WORDS[kind]) for p, kind in diff(manifest, actual).problems() if p not in odd_paths
    ]
    problems += [(p, f"{kind} on the medium (never followed; not allowed)") for p, kind in odd]
    problems += list((bad_module_files or {}).items())
    sums = gosum_hashes(manifest.gosum)
    for path, h in h1.items():
        mf = modpath.parse_proxy_file(path)
        if mf is None:
            continue
        mv, ext = mf
        key = (mv.path, mv.version if ext == "zip" else mv.version + "/go.mod")
        want = sums.get(key)
        if want is not None and want != {h}:
            problems.append((path, f"h1 mismatch: manifest go.sum says {' or '.join(sorted(want))}, file hashes to {h}"))
    return Report(tuple(problems), files=len(manifest.entries), bytes=sum(e.size for e in manifest.entries))


# --- reading a medium -----------------------------------------------------------------------------


def _read_manifest(root: Path, verifier: note.Verifier) -> tuple[Manifest | None, str | None]:
    path = root / MANIFEST
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, "manifest missing"
    except OSError as e:
        return None, f"cannot read the manifest: {e.strerror or e}"
    if not stat.S_ISREG(st.st_mode):
        return None, "manifest is not a regular file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            data = b"".join(iter(lambda: os.read(fd, BLOCK), b""))
        finally:
            os.close(fd)
    except OSError as e:
        return None, f"cannot read the manifest: {e.strerror or e}"
    try:
        return open_manifest(data, verifier, MANIFEST), None
    except (note.NoteError, ManifestError) as e:
        why = str(e)
        if why.startswith(MANIFEST + ":"):
            why = why[len(MANIFEST) + 1 :].strip()
        return None, why


def verify_medium(root: Path, verifier: note.Verifier, gosumdb: str | None = None) -> Report:
    """Check the medium at ``root`` against its signed manifest; see the module docstring.

    ``gosumdb``: the GOSUMDB value the go command inside uses (the key its carried database must
    be signed with); None: the built-in key of a known database, else the one the border carried.
    """
    return verify_medium_manifest(Path(root), verifier, gosumdb)[0]


def _check_sumdb(root: Path, manifest: Manifest, gosumdb: str | None) -> list[tuple[str, str]]:
    """The go command's checks over each checksum database the medium carries (listed files only)."""
    files = {e.path: root / e.path for e in manifest.entries if e.path.startswith("sumdb/")}
    problems = []
    for db in ondisk.databases(files).values():
        problems += ondisk.check(db, gosumdb)
    return problems


def verify_medium_manifest(
    root: Path, verifier: note.Verifier, gosumdb: str | None = None
) -> tuple[Report, Manifest | None]:
    """``verify_medium``, and the manifest whose signature it checked (None when unusable)."""
    try:
        scan = tree_files(root)
    except OSError as e:
        return Report(((str(root), f"cannot read the medium: {e.strerror or e}"),)), None
    manifest, why = _read_manifest(root, verifier)
    if manifest is None:
        odd = [(p, f"{kind} on the medium (never followed; not allowed)") for p, kind in scan.odd]
        return Report(((MANIFEST, why or "unusable manifest"), *odd)), None
    report = check_tree(root, manifest, scan.files, scan.odd, gosumdb)
    why = _side_file_problem(root, manifest.sbom)
    if why is not None:
        report = Report(report.problems + ((manifest.sbom.name, why),), files=report.files, bytes=report.bytes)
    return report, manifest


def _side_file_problem(root: Path, part: Part | None) -> str | None:
    """Why the file beside the manifest that ``part`` lists (the SBOM) does not match it, or None."""
    if part is None:
        return None
    try:
        got = sha256_file(root / part.name)
    except FileNotFoundError:
        return "missing (listed in the manifest as its SBOM)"
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    return None if got == (part.size, part.sha256) else "altered (the SBOM does not match the manifest)"


def check_tree(root: Path, manifest: Manifest, files: Iterable[str], odd: Iterable[tuple[str, str]] = (),
               gosumdb: str | None = None, sumdb_alone: bool = True) -> Report:
    """Every problem of the files ``files`` (relative paths of regular files under ``root``) against
    ``manifest``, whose signature was checked: sizes, hashes, module rules, h1, and (``sumdb_alone``)
    the checksum database they carry as the go command checks it on its own. A differential bundle
    passes False: its database is checked with the inside's, as the import would leave it."""
    actual: dict[str, tuple[int, str]] = {}
    unreadable: dict[str, str] = {}
    h1: dict[str, str] = {}
    for rel in files:
        try:
            actual[rel] = sha256_file(root / rel)
        except OSError as e:
            unreadable[rel] = f"cannot read: {e.strerror or e}"
            continue
        try:
            mf = modpath.parse_proxy_file(rel)
        except ModulePathError as e:
            unreadable[rel] = f"not a valid module file name: {e}"
            continue
        if mf is None:
            if _is_list(rel):
                try:
                    versions = list_versions((root / rel).read_bytes())
                except OSError as e:
                    versions = f"cannot read: {e.strerror or e}"
                if isinstance(versions, str):
                    unreadable[rel] = versions
            continue
        mv, ext = mf
        try:
            if ext == "zip":
                h1[rel] = modzip.check_zip(root / rel, mv)
            elif ext == "mod":
                h1[rel] = dirhash.hash_gomod((root / rel).read_bytes())
        except VerifyError as e:
            unreadable[rel] = f"bad module {ext}: {e.detail.removeprefix(f'{root / rel}: ')}"
        except OSError as e:
            unreadable[rel] = f"cannot read: {e.strerror or e}"
    report = check_medium(manifest, actual, odd, h1, unreadable)
    found = _check_sumdb(root, manifest, gosumdb) if sumdb_alone else []
    # The vulnerability database is checked whole, like the checksum database: a differential
    # bundle carries only its changed files, which the import checks against the inside's.
    vulndb_files = {e.path[len(VULNDB_PREFIX):]: root / e.path for e in manifest.entries
                    if e.path.startswith(VULNDB_PREFIX)}
    if vulndb_files and sumdb_alone:
        found += vulndb_disk.check(vulndb_files, vulndb_disk.VULNDB)
    if found:
        report = Report(report.problems + tuple(found), files=report.files, bytes=report.bytes)
    return report


# --- importing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    copy: tuple[Entry, ...]  # new files: module files and sumdb tiles, then lookups, @v/list files last
    merge: tuple[Entry, ...]  # @v/list files that exist inside with other bytes
    skip: tuple[Entry, ...]  # identical already
    conflicts: tuple[tuple[str, str], ...]  # (path, why): refuse the whole import


def _is_lookup(rel: str) -> bool:
    parts = rel.split("/", 3)
    return len(parts) == 4 and parts[0] == "sumdb" and parts[2] == "lookup"


def _newest_heads(paths: Iterable[str]) -> dict[str, str]:
    """database name -> the path of the newest carried head among ``paths``."""
    newest: dict[str, tuple[int, str]] = {}
    for rel in paths:
        parts = rel.split("/", 2)
        if len(parts) == 3 and parts[0] == "sumdb":
            n = carried.parse_head_path(parts[2])
            if n is not None and n >= newest.get(parts[1], (-1, ""))[0]:
                newest[parts[1]] = (n, rel)
    return {name: rel for name, (_, rel) in newest.items()}


def plan_import(
    manifest: Manifest,
    inside: Mapping[str, tuple[str, int, str] | None],
    lookups: Mapping[str, str] | None = None,
    vulndb: str | None = None,
) -> Plan:
    """What importing ``manifest`` does to a mirror where ``inside`` maps each listed path to
    ("file", size, sha256), ("dir"/"other"/"parent", 0, "") or None when absent.

    ``lookups``: for checksum-database lookup answers that differ from the inside's, what
    ``carried.compare_lookups`` said ("newer": copy over, "older": keep the inside's, else a
    conflict). Without it (a pull, which has not read the peer's answers yet) a differing answer
    replaces the inside's when the medium carries a newest head the inside does not have yet, and
    is kept otherwise; a medium that carries no heads at all conflicts, as before.

    ``vulndb``: ``vulndb_decision`` for the vulnerability database: its files that differ from the
    inside's are copied over when the medium's database is newer, and kept otherwise."""
    lookups = lookups or {}
    newest = _newest_heads(e.path for e in manifest.entries)
    copy, merge, skip, conflicts = [], [], [], []
    for e in manifest.entries:
        if any(part.startswith(".") for part in e.path.split("/")):
            conflicts.append((e.path, "a dot-path: airsync's workspace never crosses on a medium"))
            continue
        if _is_latest(e.path):
            skip.append(e)  # follows the merged list (update_latest), whatever the medium's says
            continue
        have = inside.get(e.path)
        if have is None:
            copy.append(e)
            continue
        kind, size, sha = have
        if kind == "parent":
            conflicts.append((e.path, "a parent of this path is not a directory in the inside mirror"))
        elif kind != "file":
            conflicts.append((e.path, f"exists in the inside mirror but is not a regular file ({kind})"))
        elif size == e.size and sha == e.sha256:
            skip.append(e)
        elif _is_list(e.path):
            merge.append(e)
        elif e.path.startswith(VULNDB_PREFIX):
            (copy if vulndb == "newer" else skip).append(e)
        elif _is_lookup(e.path) and (e.path in lookups or e.path.split("/")[1] in newest):
            decision = lookups.get(e.path)
            if decision is None:
                decision = "older" if inside.get(newest[e.path.split("/")[1]]) is not None else "newer"
            if decision == "newer":
                copy.append(e)
            elif decision == "older":
                skip.append(e)
            else:
                conflicts.append((e.path, decision))
        else:
            conflicts.append(
                (e.path, "differs from the file already in the inside mirror: refusing to replace it (tamper?)")
            )
    # Lookup answers after the tiles and heads that prove them, lists after the files they advertise,
    # vulnerability database indexes after the entries they name.
    copy.sort(key=lambda e: (_is_list(e.path), vulndb_index_rank(e.path), _is_lookup(e.path), e.path))
    return Plan(tuple(copy), tuple(merge), tuple(skip), tuple(sorted(conflicts)))


def inside_state(root: Path, rel: str, hasher=sha256_file) -> tuple[str, int, str] | None:
    """What the mirror at ``root`` holds at ``rel``, in ``plan_import``'s terms; ``hasher(path)``
    gives a regular file's (size, sha256)."""
    p = root
    parts = rel.split("/")
    for part in parts[:-1]:
        p = p / part
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return ("parent", 0, "")
    try:
        st = os.lstat(root / rel)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return ("file", *hasher(root / rel))
    return ("symlink" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "special file", 0, "")


def _copy_in(store: MirrorStore, medium: Path, e: Entry, move: bool = False) -> set[Path]:
    """Copy one file into the store's staging area, fsync, check it, publish; the dirs to sync.
    ``move``: the file is already fsynced and checked in the store's own workspace: rename it."""
    partial = store.partial_path(e.path)
    if move:
        os.replace(medium / e.path, partial)
        return store.publish(partial, e.path)
    try:
        src = os.open(medium / e.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            dst = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while block := os.read(src, BLOCK):
                    write_all(dst, block)
                os.fsync(dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        copied = sha256_file(partial)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    if copied != (e.size, e.sha256):
        partial.unlink(missing_ok=True)
        raise ImportFailed(f"{e.path}: changed on the medium during the import (no longer matches the manifest)")
    return store.publish(partial, e.path)


def _merge_list(store: MirrorStore, medium: Path, e: Entry) -> bool:
    """Add the medium's versions to the inside ``@v/list``; True when it gained any."""
    data = (medium / e.path).read_bytes()
    if (len(data), hashlib.sha256(data).hexdigest()) != (e.size, e.sha256):
        raise ImportFailed(f"{e.path}: changed on the medium during the import (no longer matches the manifest)")
    return merge_list(store, e, data)


def merge_list(store: MirrorStore, e: Entry, data: bytes, only_present: bool = False) -> bool:
    """Add the versions of ``data`` (the checked bytes of list ``e``) to the mirror's list;
    ``only_present``: only those whose .info, .mod and .zip the mirror holds."""
    versions = list_versions(data)
    if isinstance(versions, str):
        raise ImportFailed(f"{e.path}: {versions}")
    if only_present:
        where = e.path.removesuffix("list")
        versions = [
            v for v in versions
            if all(store.is_published(f"{where}{modpath.escape_version(v)}.{ext}") for ext in ("info", "mod", "zip"))
        ]
    return bool(versions) and store.add_to_list(e.path, *versions)


def import_medium(medium: Path, into: Path | StoreTarget, verifier: note.Verifier, gosumdb: str | None = None,
                  policy: rollback.Policy | None = None) -> ImportResult:
    """Verify ``medium`` and merge it into the mirror at ``into``; raises ImportRefused (nothing
    written to the tree) when the medium does not verify or conflicts with the mirror, and
    rollback's errors when its manifest is older than one accepted before (``policy``).
    ``gosumdb`` as for ``verify_medium``."""
    medium = Path(medium)
    into = into if isinstance(into, StoreTarget) else Path(into)
    report, manifest = verify_medium_manifest(medium, verifier, gosumdb)
    if not report.ok or manifest is None:
        raise ImportRefused(report, f"{medium}: the medium does not verify; nothing imported")
    if not isinstance(into, StoreTarget):
        guard = accepted.guard(into, verifier, manifest, policy or rollback.Policy())
        return import_checked(medium, into, manifest, report, guard, gosumdb)
    # An object store's record of accepted manifests stays in its local state, as its resume
    # state does (README: "A mirror in an S3-compatible object store").
    store = open_store(into)
    try:
        guard = accepted.guard(store.root, verifier, manifest, policy or rollback.Policy())
        return import_checked(medium, into, manifest, report, guard, gosumdb, store=store)
    finally:
        store.close()


def import_checked(tree: Path, into: Path | StoreTarget, manifest: Manifest, report: Report, guard: accepted.Guard,
                   gosumdb: str | None = None, move: bool = False, store: MirrorStore | None = None) -> ImportResult:
    """Merge the verified files of ``tree`` (``report`` is their clean check against ``manifest``)
    into the mirror at ``into`` and record the manifest as accepted. ``move``: ``tree`` is the
    mirror's own staging (a bundle's unpacked files): files are renamed in, not copied. ``store``:
    the mirror, when the caller holds it open already (left open)."""
    own = store is None
    store = store or open_store(into)
    try:
        if isinstance(into, StoreTarget):
            result = _import_into_store(store, tree, manifest, report, gosumdb)
        else:
            result = _import(store, tree, into, manifest, report, gosumdb, move)
        guard.commit()
        return result
    except OSError as e:
        where = e.filename or into
        raise ImportFailed(f"{where}: {e.strerror or e}; files imported so far are complete and verified") from None
    finally:
        if own:
            store.close()


def _lookup_decisions(medium: Path, into: Path, manifest: Manifest,
                      inside: Mapping[str, tuple[str, int, str] | None]) -> dict[str, str]:
    """carried.compare_lookups for each lookup answer that differs from the inside's."""
    out = {}
    for e in manifest.entries:
        have = inside.get(e.path)
        if _is_lookup(e.path) and have is not None and have[0] == "file" and have[1:] != (e.size, e.sha256):
            new, old = ondisk.read_small(medium / e.path), ondisk.read_small(into / e.path)
            out[e.path] = "unreadable" if new is None or old is None else carried.compare_lookups(new, old)
    return out


def _vulndb_decision(medium: Path, into: Path, manifest: Manifest) -> str | None:
    rel = VULNDB_PREFIX + vulndb_db.DB_FILE
    if not any(e.path == rel for e in manifest.entries):
        return None
    try:
        inside = vulndb_disk.read_small(into / rel, vulndb_db.MAX_INDEX)
    except (OSError, vulndb_db.VulnDBError):
        return None if not (into / rel).exists() else "newer"
    return vulndb_decision(vulndb_disk.read_small(medium / rel, vulndb_db.MAX_INDEX), inside)


def _check_after(medium: Path, into: Path, plan: Plan, gosumdb: str | None) -> list[tuple[str, str]]:
    """The go command's checks over each database as the import would leave it, less the problems
    the inside mirror has already (those are not the medium's doing)."""
    inside = ondisk.mirror_databases(into)
    after: dict[str, ondisk.DatabaseFiles] = {}
    for name, db in inside.items():
        after[name] = ondisk.DatabaseFiles(name, dict(db.files))
    for e in plan.copy:
        parts = e.path.split("/", 2)
        if len(parts) == 3 and parts[0] == "sumdb":
            after.setdefault(parts[1], ondisk.DatabaseFiles(parts[1])).files[parts[2]] = medium / e.path
    problems = []
    for name, db in after.items():
        if name not in {e.path.split("/")[1] for e in plan.copy if e.path.startswith("sumdb/")}:
            continue  # the import adds nothing to it
        before = set(ondisk.check(inside[name], gosumdb)) if name in inside else set()
        problems += [p for p in ondisk.check(db, gosumdb) if p not in before]
    return problems


def _import_into_store(store, medium: Path, manifest: Manifest, report: Report, gosumdb: str | None) -> ImportResult:
    """``_import`` into an object store: what it holds at each listed path is read from it (each
    existing object once, to hash it), and its checksum databases are checked in a local copy."""
    inside = {e.path: store.file_state(e.path) for e in manifest.entries}
    with tempfile.TemporaryDirectory(prefix="airsync-import-", dir=store.work) as shadow:
        store.copy_tree("sumdb", Path(shadow))
        store.copy_tree("vulndb/index", Path(shadow))  # which database is newer (_vulndb_decision)
        return _import(store, medium, Path(shadow), manifest, report, gosumdb, inside=inside)


def _import(store: MirrorStore, medium: Path, into: Path, manifest: Manifest, report: Report,
            gosumdb: str | None = None, move: bool = False, inside: dict | None = None) -> ImportResult:
    """Check every listed file against the mirror first; write only when nothing conflicts.
    ``inside``: what the mirror holds at each listed path, when ``into`` is not the mirror itself."""
    if inside is None:
        inside = {e.path: inside_state(into, e.path) for e in manifest.entries}
    plan = plan_import(manifest, inside, _lookup_decisions(medium, into, manifest, inside),
                       _vulndb_decision(medium, into, manifest))
    if plan.conflicts:
        raise ImportRefused(
            Report(plan.conflicts, files=report.files, bytes=report.bytes),
            f"{into}: the medium conflicts with the inside mirror; nothing imported",
        )
    after = _check_after(medium, into, plan, gosumdb)
    if after:
        raise ImportRefused(
            Report(tuple(after), files=report.files, bytes=report.bytes),
            f"{into}: with this medium the inside mirror's checksum database would not verify in the go "
            "command; nothing imported",
        )
    dirs: set[Path] = set()
    flush = store.make_flusher()  # one syncfs where the file system allows it, not an fsync per directory
    copied = 0
    for i, e in enumerate(plan.copy):
        phase = (_is_list(e.path), vulndb_index_rank(e.path))
        if i and phase != (_is_list(plan.copy[i - 1].path), vulndb_index_rank(plan.copy[i - 1].path)):
            flush.dirs(dirs)  # files durable before any list or index names them
            dirs = set()
        dirs |= _copy_in(store, medium, e, move)
        copied += e.size
    flush.dirs(dirs)
    merged = tuple(e.path for e in plan.merge if _merge_list(store, medium, e))
    update_latest(store, (e.path for e in manifest.entries))
    return ImportResult(
        imported=len(plan.copy),
        skipped=len(plan.skip) + len(plan.merge) - len(merged),
        merged=merged,
        bytes=copied,
        report=report,
    )
