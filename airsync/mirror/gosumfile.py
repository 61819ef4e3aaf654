"""``--write-go-sum``: the go.sum of what a mirror job holds, for the user to pin what was resolved.

Each mirrored module version gets its ``/go.mod`` line, and a zip line when its zip was mirrored,
hashed from the published files (verified when they landed), in the go command's order: by path,
then by semver, the zip line before the ``/go.mod`` line. Written beside its final name, fsynced
and renamed, so an interrupted write never leaves half a go.sum.
"""

from __future__ import annotations

import os
from pathlib import Path

from airsync.goproxy import dirhash, modpath, semver
from airsync.goproxy.wants import ModuleWant
from airsync.store import replace_durably


def lines(root: Path, plan: list[ModuleWant]) -> list[str]:
    """go.sum lines for every module version of ``plan`` whose files are published under ``root``."""
    out = []
    for want in sorted(plan, key=lambda w: (w.module.path, semver.sort_key(w.module.version))):
        mv = want.module
        mod = root / modpath.proxy_file(mv, "mod")
        if not mod.is_file():
            continue  # it failed: pinning what is not there would only break a later build
        zip_path = root / modpath.proxy_file(mv, "zip")
        if want.need_zip and zip_path.is_file():
            out.append(f"{mv.path} {mv.version} {dirhash.hash_zip(zip_path)}")
        out.append(f"{mv.path} {mv.version}/go.mod {dirhash.hash_gomod(mod.read_bytes())}")
    return out


def write(path: Path, root: Path, plan: list[ModuleWant]) -> int:
    """Write the go.sum of ``plan`` to ``path`` durably; returns the number of lines."""
    text = lines(root, plan)
    replace_durably(path, "".join(line + "\n" for line in text).encode(), tmp_suffix=f".{os.getpid()}.tmp")
    return len(text)
