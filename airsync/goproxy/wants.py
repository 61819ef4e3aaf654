"""What the mirror must hold, computed from go.sum lines, go.mod requires and named modules.

Rules (go-proxy-facts.md, "a pinned build"): every module version named anywhere needs its
``.info`` and ``.mod``; a go.sum zip-hash line (one without ``/go.mod``) also needs the
``.zip``. A go.mod requirement that no go.sum line mentions gets the zip too, and so does
every ``--module`` argument (the user asked for that module, not just its graph); a zip or
go.mod with no go.sum hash is marked *not hash-pinned*: nothing vouches for its bytes yet
(the checksum-database pass will). Several go.sum files may pin the same
version; every hash they give is acceptable, as for the go command, and the files must
match one of them. Pure: takes parsed records, returns a sorted, de-duplicated plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from airsync.goproxy import modpath, semver
from airsync.goproxy.gomod import Require
from airsync.goproxy.gosum import SumLine
from airsync.goproxy.modpath import ModuleVersion


@dataclass(frozen=True)
class ModuleWant:
    module: ModuleVersion
    need_zip: bool
    zip_h1: frozenset[str]  # acceptable zip hashes; empty when not pinned
    mod_h1: frozenset[str]  # acceptable go.mod hashes; empty when not pinned
    pinned: bool  # go.sum gives a hash for every file that has one (.mod, and .zip if needed)
    origin: str  # where it was first asked for ("go.sum:12"), for messages

    def files(self) -> list[tuple[str, str]]:
        """(ext, GOPROXY relative path) of every file this version needs, .mod first."""
        exts = ("mod", "info", "zip") if self.need_zip else ("mod", "info")
        return [(ext, modpath.proxy_file(self.module, ext)) for ext in exts]


def plan(
    sum_lines: Iterable[SumLine],
    requires: Iterable[Require],
    modules: Iterable[tuple[ModuleVersion, str]],
) -> list[ModuleWant]:
    """Merge every source into one want per module version, sorted by module then version."""
    zip_h1: dict[ModuleVersion, set[str]] = {}
    mod_h1: dict[ModuleVersion, set[str]] = {}
    origin: dict[ModuleVersion, str] = {}
    zip_wanted: set[ModuleVersion] = set()

    for line in sum_lines:
        origin.setdefault(line.module, f"{line.source}:{line.lineno}")
        (mod_h1 if line.gomod else zip_h1).setdefault(line.module, set()).add(line.h1)
    in_gosum = set(zip_h1) | set(mod_h1)
    for req in requires:
        origin.setdefault(req.module, f"{req.source}:{req.lineno}")
        if req.module not in in_gosum:
            zip_wanted.add(req.module)
    for mv, where in modules:
        origin.setdefault(mv, where)
        zip_wanted.add(mv)

    out = []
    for mv in sorted(origin, key=lambda m: (m.path, semver.sort_key(m.version))):
        need_zip = mv in zip_h1 or mv in zip_wanted
        out.append(
            ModuleWant(
                module=mv,
                need_zip=need_zip,
                zip_h1=frozenset(zip_h1.get(mv, ())),
                mod_h1=frozenset(mod_h1.get(mv, ())),
                pinned=mv in mod_h1 and (mv in zip_h1 or not need_zip),
                origin=origin[mv],
            )
        )
    return out
