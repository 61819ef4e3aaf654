"""Request files: kinds by name, work in progress ignored, only settled files read."""

import pytest

from airsync.service import inbox


@pytest.mark.parametrize("name,kind", [("go.sum", "go_sum"), ("app.sum", "go_sum"), ("go.mod", "go_mod"),
                                       ("mods.txt", "modules"), ("list", "modules"), (".go.sum", None),
                                       ("go.sum.tmp", None), ("go.sum~", None), ("x.part", None), ("", None)])
def test_kind_of(name, kind):
    assert inbox.kind_of(name) == kind


def test_a_file_is_settled_once_it_stopped_changing():
    s = inbox.Settler(quiet=1.0)
    s.observe("go.sum", (10, 1), now=0.0)
    assert s.settled(0.5) == []
    s.observe("go.sum", (20, 2), now=0.6)  # still being written: the clock starts again
    assert s.settled(1.2) == []
    s.observe("go.sum", (20, 2), now=1.3)  # same as before: does not restart it
    assert s.settled(1.6) == ["go.sum"]
    assert s.settled(5.0) == [] and s.pending == []


def test_a_removed_file_is_forgotten():
    s = inbox.Settler(quiet=0.1)
    s.observe("a.sum", (1, 1), 0.0)
    s.observe("a.sum", None, 0.05)
    assert s.settled(1.0) == []


def test_a_file_handed_out_is_not_handed_out_again_until_it_changes():
    s = inbox.Settler(quiet=0.1)
    s.observe("a.sum", (1, 1), 0.0)
    assert s.settled(1.0) == ["a.sum"]
    s.observe("a.sum", (1, 1), 2.0)  # a re-scan sees it again, unchanged
    assert s.settled(3.0) == []
    s.observe("a.sum", (2, 2), 4.0)  # rewritten
    assert s.settled(5.0) == ["a.sum"]
    s.present(set())  # moved away; the same bytes dropped again later are new work
    s.observe("a.sum", (2, 2), 6.0)
    assert s.settled(7.0) == ["a.sum"]
