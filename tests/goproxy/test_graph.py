"""goproxy.graph: the module graph loaded as cmd/go's readModGraph loads it (MVS, graph pruning)."""

from __future__ import annotations

from airsync.goproxy.gomod import Replace
from airsync.goproxy.graph import ModuleGraph, Summary, pruned_go
from airsync.goproxy.modpath import ModuleVersion as MV


def load(g: ModuleGraph, world: dict[MV, Summary]) -> list[list[MV]]:
    """Feed ``g`` from ``world`` until it wants nothing; the rounds of what it asked for."""
    rounds = []
    while wanted := g.wanted():
        rounds.append(wanted)
        for mv in wanted:
            if mv in world:
                g.give(mv, world[mv])
            else:
                g.fail(mv, "not found")
    return rounds


A1, B1, B2, C1, D1, E1 = MV("a", "v1.0.0"), MV("b", "v1.1.0"), MV("b", "v1.2.0"), MV("c", "v1.0.0"), MV("d", "v1.0.0"), MV("e", "v1.0.0")


def test_pruning_follows_the_go_version():
    assert not pruned_go(None) and not pruned_go("1.16") and pruned_go("1.17") and pruned_go("1.21.3")


def test_a_pruned_dependency_contributes_edges_but_its_requirements_are_not_read():
    world = {
        A1: Summary((B1,), "1.21"),        # pruned: B's go.mod is not read through A
        C1: Summary((D1,), None),          # unpruned (no go line): its whole graph is read
        D1: Summary((E1, B2), "1.21"),     # below an unpruned module, pruning stops nothing
        E1: Summary((), "1.18"),
        B2: Summary((), "1.21"),
    }
    g = ModuleGraph("main", [A1, C1], pruned=True)
    load(g, world)
    assert g.loaded() == [A1, B2, C1, D1, E1]  # B1 never: only an edge from a pruned module
    assert g.selected() == [A1, B2, C1, D1, E1]  # MVS: the higher of b's two versions
    assert g.path_to(E1) == [C1, D1, E1]
    assert g.go_versions()[A1] == "1.21"


def test_an_unpruned_main_module_reads_everything():
    world = {A1: Summary((B1,), "1.21"), B1: Summary((D1,), "1.21"), D1: Summary((), "1.21")}
    g = ModuleGraph("main", [A1], pruned=False)
    rounds = load(g, world)
    assert rounds == [[A1], [B1], [D1]]
    assert g.selected() == [A1, B1, D1]


def test_replace_exclude_failures_and_the_main_module_itself():
    world = {A1: Summary((MV("main", "v9.0.0"), C1, B1), None), C1: Summary((), None)}
    g = ModuleGraph("main", [A1], pruned=False, excludes=frozenset({B1}),
                    replaces=(Replace("c", "", "example.com/fork", "v1.0.1", 3),))
    load(g, {**world, MV("x", "v1.0.0"): Summary((), None)})
    assert g.selected() == [A1, C1]  # main is never selected; the excluded b is no edge
    assert g.replacement(C1).new == "example.com/fork" and g.replacement(A1) is None
    g2 = ModuleGraph("main", [A1, MV("gone", "v1.0.0")], pruned=False)
    load(g2, world)
    assert g2.failures() == {MV("gone", "v1.0.0"): "not found", B1: "not found"}
    assert MV("gone", "v1.0.0") in g2.selected()  # still required; what fails is its go.mod
