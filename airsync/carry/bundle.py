"""A bundle: a mirror (or what changed in it) as a few signed files, for gaps that take only files.

Some air gaps take no medium and no network, only files: a data diode, a scanning kiosk, a DVD
burner, each with a size limit. A bundle is what crosses them: a signed manifest
(``airsync-<id>.manifest``, the ``carry.manifest`` format with ``part`` lines), the SBOM of the
module versions it carries (``airsync-<id>.sbom.cdx.json``, hashed in the manifest) and the
files themselves in parts ``airsync-<id>.001.tar``, ``.002.tar``, ... Each part is a complete POSIX
tar archive (ustar headers, pax records only for long or non-ASCII names; no compression: module
zips are compressed already), so ``tar -tf`` reads any part alone, and each is named, sized and
hashed in the manifest, so each is checked alone and they may arrive in any order.

Files go into parts in path order, each part filled until the next file would pass ``max_size``
(a file never spans two parts: a file larger than a part is refused, with its name; module zips
are at most 500 MiB). Every byte of a part is decided by the plan: headers carry fixed owner,
mode and time, so a plan is a value, ``Plan.id`` names it, and a rerun after a crash finds the
parts it already finished under the same names.

A differential bundle (``--since``) starts from the manifest of a snapshot the inside holds (the
receipt of the last import, or the manifest of a medium): it carries only the files whose bytes
that snapshot lacks, and lists the others as ``held``, which the inside must hold already; its
manifest names the base by the sha256 of the base manifest's text. The manifest a differential
bundle makes is itself a full snapshot (carried + held), the next bundle's base.

This module plans only (sans I/O); ``bundlewrite`` writes a plan, ``bundleread`` checks and
imports one.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airsync.carry.manifest import Entry
from airsync.errors import AirsyncError
from airsync.goproxy.modpath import quote

__all__ = ["BLOCK", "END", "BundleError", "Member", "PartPlan", "Plan", "header", "member_size", "plan",
           "split_since", "mutable", "part_name", "manifest_name", "sbom_name", "BUNDLE_FILE", "MIN_PART"]

BLOCK = tarfile.BLOCKSIZE  # 512
END = b"\0" * (2 * BLOCK)  # a tar archive ends with two zero blocks
MIN_PART = 4096
FAT32_MAX = 4 * 1024**3 - 1  # no part is ever larger: FAT32 holds no file of 4 GiB
MTIME = 0  # every header the same: a part's bytes follow from the plan alone
BUNDLE_FILE = re.compile(r"airsync-([0-9a-f]{16})\.(manifest|sbom\.cdx\.json|[0-9]{3}\.tar)")


class BundleError(AirsyncError):
    """A bundle cannot be made or used as asked (a file larger than a part, a bad --since, ...)."""


def part_name(bundle_id: str, index: int) -> str:
    return f"airsync-{bundle_id}.{index:03d}.tar"


def manifest_name(bundle_id: str) -> str:
    return f"airsync-{bundle_id}.manifest"


def sbom_name(bundle_id: str) -> str:
    return f"airsync-{bundle_id}.sbom.cdx.json"


def header(path: str, size: int) -> bytes:
    """The tar header block(s) of a regular file: ustar, or pax when the name needs it."""
    info = tarfile.TarInfo(path)
    info.size = size
    info.mtime = MTIME
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def member_size(path: str, size: int) -> int:
    """Bytes a file takes in a part: header(s) and data padded to whole blocks."""
    return len(header(path, size)) + _padded(size)


@dataclass(frozen=True)
class Member:
    entry: Entry
    offset: int  # of its header in the part


@dataclass(frozen=True)
class PartPlan:
    index: int  # from 1
    name: str
    members: tuple[Member, ...]
    size: int  # of the whole part, END included


@dataclass(frozen=True)
class Plan:
    id: str
    parts: tuple[PartPlan, ...]
    carried: tuple[Entry, ...]
    held: tuple[Entry, ...]
    base: str | None  # the base manifest's digest

    @property
    def bytes(self) -> int:
        return sum(p.size for p in self.parts)


def mutable(path: str) -> bool:
    """Files that change in place inside (merged lists, recomputed @latest, newer lookup answers):
    a held one need only exist there."""
    parts = path.split("/")
    return (path.endswith("/@v/list") or path.endswith("/@latest")
            or (len(parts) == 4 and parts[0] == "sumdb" and parts[2] == "lookup"))


def split_since(entries: Iterable[Entry], base: Mapping[str, str]) -> tuple[list[Entry], list[Entry]]:
    """(carried, held): the entries whose bytes the base snapshot (path -> sha256) lacks, and the rest."""
    carried, held = [], []
    for e in entries:
        (held if base.get(e.path) == e.sha256 else carried).append(e)
    return carried, held


def plan(carried: Iterable[Entry], max_size: int, held: Iterable[Entry] = (), base: str | None = None) -> Plan:
    """Split ``carried`` (in path order) into parts of at most ``max_size`` bytes."""
    if max_size < MIN_PART:
        raise BundleError(f"--max-size {max_size} is too small: a part holds at least {MIN_PART} bytes")
    max_size = min(max_size, FAT32_MAX)
    carried = sorted(carried, key=lambda e: e.path)
    held = sorted(held, key=lambda e: e.path)
    h = hashlib.sha256(f"airsync bundle v1\n{max_size}\n{base or '-'}\n".encode())
    for e in carried:
        h.update(f"file {e.sha256} {e.size} {e.path}\n".encode())
    for e in held:
        h.update(f"held {e.sha256} {e.size} {e.path}\n".encode())
    bundle_id = h.hexdigest()[:16]

    parts: list[PartPlan] = []
    members: list[Member] = []
    used = 0
    for e in carried:
        size = member_size(e.path, e.size)
        if size + len(END) > max_size:
            raise BundleError(
                f"{quote(e.path)}: {e.size} bytes do not fit in a part of --max-size {max_size} "
                "(a file never spans parts: give a larger --max-size)"
            )
        if used + size + len(END) > max_size:
            parts.append(PartPlan(len(parts) + 1, part_name(bundle_id, len(parts) + 1), tuple(members), used + len(END)))
            members, used = [], 0
        members.append(Member(e, used))
        used += size
    if members:
        parts.append(PartPlan(len(parts) + 1, part_name(bundle_id, len(parts) + 1), tuple(members), used + len(END)))
    return Plan(bundle_id, tuple(parts), tuple(carried), tuple(held), base)
