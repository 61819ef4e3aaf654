"""The module graph of a main module, loaded as the go command loads it: MVS with graph pruning.

This follows cmd/go/internal/modload (readModGraph, goModSummary). The main module's requirements
are the roots. Each loaded module version contributes the requirements of its go.mod as edges;
the build list selects, for each module path, the highest version any loaded go.mod requires
(minimal version selection). Graph pruning (Go 1.17): when the main module's go.mod says
``go 1.17`` or later, the requirements of a dependency whose own go.mod is at 1.17 or later are
edges only, their go.mods are not read; a dependency below 1.17 (or without a ``go`` line), and
everything under a main module below 1.17, has its whole transitive graph read. A ``replace`` in
the main module makes a module version's go.mod (and zip) come from its replacement; an
``exclude`` drops requirements on that version.

Sans-I/O: ``wanted()`` names the module versions whose go.mod is needed next, ``give()`` and
``fail()`` hand in what was fetched, until nothing is wanted; ``selected()`` is then the build
list and ``loaded()`` every module version whose go.mod the go command reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from airsync.goproxy import gover, semver
from airsync.goproxy.gomod import GoMod, Replace
from airsync.goproxy.modpath import ModuleVersion

__all__ = ["Summary", "ModuleGraph", "pruned_go", "summary_of"]

PRUNING_GO = "1.17"  # the first go version whose go.mod lists every dependency its packages need


def pruned_go(go: str | None) -> bool:
    """Whether a go.mod with this ``go`` line supports graph pruning (none: it does not)."""
    return go is not None and gover.compare(go, PRUNING_GO) >= 0


@dataclass(frozen=True)
class Summary:
    """What the loader needs of one go.mod: its requirements, go version and deprecation."""

    requires: tuple[ModuleVersion, ...]
    go: str | None = None

    @property
    def pruned(self) -> bool:
        return pruned_go(self.go)


def summary_of(gm: GoMod) -> Summary:
    return Summary(gm.graph_requires, gm.go)


@dataclass
class ModuleGraph:
    """The graph of one main module; ``main`` is its path, ``roots`` its requirements."""

    main: str
    roots: list[ModuleVersion]
    pruned: bool
    replaces: tuple[Replace, ...] = ()
    excludes: frozenset[ModuleVersion] = frozenset()
    _summaries: dict[ModuleVersion, Summary] = field(default_factory=dict)
    _pending: dict[ModuleVersion, list[bool]] = field(default_factory=dict)  # version -> prunings waiting
    _seen: set[tuple[ModuleVersion, bool]] = field(default_factory=set)
    _failed: dict[ModuleVersion, str] = field(default_factory=dict)
    _required_by: dict[ModuleVersion, ModuleVersion | None] = field(default_factory=dict)
    _selected: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self._drop_excluded(self.roots):
            self._edge(None, r)
            self._enqueue(r, self.pruned)

    # -- feeding ------------------------------------------------------------------------------

    def wanted(self) -> list[ModuleVersion]:
        """Module versions (graph nodes, before replacement) whose go.mod must be given next."""
        return sorted(self._pending, key=lambda m: (m.path, semver.sort_key(m.version)))

    def give(self, mv: ModuleVersion, summary: Summary) -> None:
        self._summaries[mv] = summary
        for r in self._drop_excluded(summary.requires):
            self._edge(mv, r)
        for pruning in self._pending.pop(mv, []):
            self._expand(mv, pruning)

    def fail(self, mv: ModuleVersion, why: str) -> None:
        """The go.mod of ``mv`` cannot be had: its requirements stay unknown."""
        self._failed[mv] = why
        self._pending.pop(mv, None)

    # -- results ------------------------------------------------------------------------------

    def selected(self) -> list[ModuleVersion]:
        """The build list (without the main module), sorted."""
        return sorted((ModuleVersion(p, v) for p, v in self._selected.items()),
                      key=lambda m: m.path)

    def loaded(self) -> list[ModuleVersion]:
        """Every module version whose go.mod was read (the go command fetches each one's .mod)."""
        return sorted(self._summaries, key=lambda m: (m.path, semver.sort_key(m.version)))

    def failures(self) -> dict[ModuleVersion, str]:
        return dict(self._failed)

    def path_to(self, mv: ModuleVersion) -> list[ModuleVersion]:
        """How ``mv`` entered the graph: the chain of requirements from a root down to it."""
        chain = [mv]
        seen = {mv}
        while (parent := self._required_by.get(chain[-1])) is not None and parent not in seen:
            chain.append(parent)
            seen.add(parent)
        return list(reversed(chain))

    def go_versions(self) -> dict[ModuleVersion, str]:
        """The ``go`` line of every loaded go.mod that has one."""
        return {mv: s.go for mv, s in self._summaries.items() if s.go}

    def replacement(self, mv: ModuleVersion) -> Replace | None:
        """The main module's replace directive for ``mv`` (an exact version wins over a wildcard)."""
        exact = wildcard = None
        for r in self.replaces:
            if r.old == mv.path:
                if r.old_version == mv.version:
                    exact = r
                elif r.old_version == "":
                    wildcard = r
        return exact or wildcard

    # -- inside -------------------------------------------------------------------------------

    def _drop_excluded(self, reqs: Iterable[ModuleVersion]) -> list[ModuleVersion]:
        return [r for r in reqs if r not in self.excludes]

    def _edge(self, parent: ModuleVersion | None, r: ModuleVersion) -> None:
        self._required_by.setdefault(r, parent)
        if r.path == self.main:
            return  # the main module is always itself, whatever others require of it
        cur = self._selected.get(r.path)
        if cur is None or semver.compare(r.version, cur) > 0:
            self._selected[r.path] = r.version

    def _enqueue(self, mv: ModuleVersion, pruning: bool) -> None:
        if mv.version == "none" or mv.path == self.main or (mv, pruning) in self._seen:
            return
        self._seen.add((mv, pruning))
        if mv in self._summaries:
            self._expand(mv, pruning)
        elif mv not in self._failed:
            self._pending.setdefault(mv, []).append(pruning)

    def _expand(self, mv: ModuleVersion, pruning: bool) -> None:
        """readModGraph's enqueue body: follow ``mv``'s requirements unless pruning stops it."""
        s = self._summaries[mv]
        next_pruning = s.pruned and pruning
        if pruning and s.pruned:
            return  # a pruned module under a pruned graph: its requirements are edges only
        for r in self._drop_excluded(s.requires):
            self._enqueue(r, next_pruning)
