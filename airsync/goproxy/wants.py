"""What the mirror must hold, computed from go.sum lines, go.mod requires and named modules.

Rules (go-proxy-facts.md, "a pinned build"): every module version named anywhere needs its
``.info`` and ``.mod``; a go.sum zip-hash line (one without ``/go.mod``) also needs the
``.zip``. A go.mod requirement (or a build-list version a resolved module graph selects) that no
go.sum line mentions gets the zip too, and so does every ``--module`` argument (the user asked
for that module, not just its graph); a graph node outside every build list needs only its
``.mod`` and ``.info``. A zip or go.mod with no go.sum hash is marked *not hash-pinned*: nothing
vouches for its bytes yet (the checksum-database pass will). Several go.sum files may pin the
same version; every hash they give is acceptable, as for the go command, and the files must
match one of them. Pure: takes parsed records, returns a sorted, de-duplicated plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from airsync.goproxy import modpath, semver
from airsync.goproxy.gomod import GoMod, Require
from airsync.goproxy.gosum import SumLine
from airsync.goproxy.modpath import ModuleVersion
from airsync.goproxy.query import is_query


@dataclass(frozen=True)
class MainModule:
    """A go.mod given as input: the main module of a module graph."""

    gomod: GoMod
    source: str  # the file, for messages and for directory replacements relative to it


@dataclass(frozen=True)
class ModuleRequest:
    """A ``PATH@VERSION`` or ``PATH@QUERY`` (latest, v1, <v1.4.0, ...) the user named."""

    path: str
    version: str
    origin: str


@dataclass(frozen=True)
class Request:
    """Everything a mirror job was asked for, before anything is fetched."""

    sum_lines: tuple[SumLine, ...] = ()
    requires: tuple[Require, ...] = ()  # of the go.mod inputs, for a job that resolves nothing
    mains: tuple[MainModule, ...] = ()
    modules: tuple[ModuleRequest, ...] = ()
    deps: bool = True  # resolve module graphs: of the go.mods and of each named module
    latest: bool = False  # also each module's latest version (with its graph when ``deps``)
    toolchains: tuple[ModuleRequest, ...] = ()  # path "go", version a Go version (1.27.3) or family (1.27)
    platforms: tuple[str, ...] = ()  # GOOS/GOARCH of the toolchains

    @property
    def resolves(self) -> bool:
        """Whether module graphs or version queries must be resolved (over the network) first."""
        return (self.deps and bool(self.graph_mains or self.modules)) or self.latest or bool(self.toolchains) \
            or any(is_query(m.version) for m in self.modules)

    @property
    def graph_mains(self) -> tuple[MainModule, ...]:
        """The go.mods whose module graphs must be resolved: none when a go.sum is given, which
        already names every module version the build reads (a pinned build, as before)."""
        return () if self.sum_lines else self.mains

    def mod_pins(self) -> dict[ModuleVersion, frozenset[str]]:
        """go.sum's /go.mod hashes by module version."""
        pins: dict[ModuleVersion, set[str]] = {}
        for line in self.sum_lines:
            if line.gomod:
                pins.setdefault(line.module, set()).add(line.h1)
        return {mv: frozenset(h) for mv, h in pins.items()}


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
    selected: Iterable[tuple[ModuleVersion, str]] = (),
    mod_only: Iterable[tuple[ModuleVersion, str]] = (),
) -> list[ModuleWant]:
    """Merge every source into one want per module version, sorted by module then version.

    ``selected`` are build-list versions found by resolving a module graph: like a go.mod's
    requirements they get the zip unless go.sum says only their go.mod is needed. ``mod_only`` are
    versions whose go.mod alone the go command reads (graph nodes outside every build list).
    """
    zip_h1: dict[ModuleVersion, set[str]] = {}
    mod_h1: dict[ModuleVersion, set[str]] = {}
    origin: dict[ModuleVersion, str] = {}
    zip_wanted: set[ModuleVersion] = set()

    for line in sum_lines:
        origin.setdefault(line.module, f"{line.source}:{line.lineno}")
        (mod_h1 if line.gomod else zip_h1).setdefault(line.module, set()).add(line.h1)
    in_gosum = set(zip_h1) | set(mod_h1)
    graph = [(req.module, f"{req.source}:{req.lineno}") for req in requires] + list(selected)
    for mv, where in graph:
        origin.setdefault(mv, where)
        if mv not in in_gosum:
            zip_wanted.add(mv)
    for mv, where in modules:
        origin.setdefault(mv, where)
        zip_wanted.add(mv)
    for mv, where in mod_only:
        origin.setdefault(mv, where)

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
