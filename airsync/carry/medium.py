"""What a medium (a USB stick, a mounted share, a LAN target's directory) holds.

A medium is a GOPROXY tree like the mirror it was synced from: every module file, ``@v/list``,
and the carried checksum database under ``sumdb/``, plus at its root the signed manifest
(``airsync-manifest``) that lists every file with its size, sha256 and xxh3_128. Next to each
large file may lie its chunk signature (``<file>.airsig``), an unsigned hint that lets a peer
pulling from the medium fetch only the chunks it lacks; a file assembled with it is still
checked against the manifest's SHA-256. Beside the manifest lies the SBOM
(``airsync-sbom.cdx.json``), hashed in the manifest. airsync's own workspace (``.airsync/``, any
dot-path) never crosses. ``tree_files`` lists what a tree carries, without following symlinks: a
symlink or a special file in a tree is reported, never followed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "airsync-manifest"
SBOM = "airsync-sbom.cdx.json"  # the CycloneDX SBOM of the module versions carried (carry.sbom)
SIDECAR_SUFFIX = ".airsig"  # a file's chunk signature, next to it
STAGING = ".airsync-partial"  # on a medium: files being written, renamed into place when whole
BLOCK = 1 << 20
MANIFEST_MAX = 256 << 20  # ~1.4 million files; a longer manifest is refused, not read


def overlap(a: Path, b: Path) -> bool:
    """Is one of two directories (symlinks and ``..`` resolved) the other or inside it?"""
    ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    return ra.is_relative_to(rb) or rb.is_relative_to(ra)


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of the file at ``path``, read in 1 MiB blocks, never through a symlink."""
    h = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while block := os.read(fd, BLOCK):
            h.update(block)
            size += len(block)
    finally:
        os.close(fd)
    return size, h.hexdigest()


@dataclass(frozen=True)
class TreeScan:
    files: dict[str, os.stat_result]  # relative path -> lstat, regular files only
    odd: list[tuple[str, str]]  # (relative path, what it is) for symlinks and special files
    sidecars: dict[str, os.stat_result]  # relative path -> lstat of each ``*.airsig``


def tree_files(root: Path) -> TreeScan:
    """Every regular file under ``root`` except dot-paths, the manifest, the SBOM and sidecars (kept
    apart); symlinks and special files are listed as odd, never followed."""
    files: dict[str, os.stat_result] = {}
    sidecars: dict[str, os.stat_result] = {}
    odd: list[tuple[str, str]] = []
    top = os.fspath(root)
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(f"{top}/{rel_dir}" if rel_dir else top) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                # The type comes with the directory entry (d_type) where the file system gives
                # it: only regular files, whose size and time matter, cost a stat.
                if entry.is_symlink():
                    odd.append((rel, "symlink"))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):  # made between the listing and the stat
                    stack.append(rel)
                elif stat.S_ISLNK(st.st_mode):
                    odd.append((rel, "symlink"))
                elif stat.S_ISREG(st.st_mode):
                    if rel.endswith(SIDECAR_SUFFIX):
                        sidecars[rel] = st
                    elif rel not in (MANIFEST, SBOM):
                        files[rel] = st
                else:
                    odd.append((rel, "special file"))
    return TreeScan(files=files, odd=sorted(odd), sidecars=sidecars)
