"""airsync.trust.carried: the go command's checks over a carried checksum database (pure).

Logs are built in memory (tlog.MemoryLog) and signed with fresh keys; tiles are served from a
dict, so each test removes or changes exactly what it names.
"""

from __future__ import annotations

import pytest

from airsync.carry import manifest, verify
from airsync.errors import AirsyncError
from airsync.state import StateDB
from airsync.trust import carried, note, tlog

NAME = "sum.example"


class Log:
    def __init__(self, skey: str, pad: int = 600, seed: str = "") -> None:
        self.signer = note.parse_signer(skey)
        self.log = tlog.MemoryLog()
        for i in range(pad):
            self.log.append(f"example.invalid/pad{seed}{i} v1.0.0 h1:x\n".encode())

    def add(self, path: str) -> tuple[int, bytes]:
        text = f"{path} v1.0.0 h1:zip\n{path} v1.0.0/go.mod h1:mod\n".encode()
        return self.log.append(text), text

    def head(self) -> carried.Head:
        tree = self.log.tree()
        return carried.Head(tree, note.sign(tlog.format_tree(tree), self.signer))

    def answer(self, rid: int, text: bytes, head: carried.Head) -> bytes:
        return tlog.format_record(rid, text) + head.note

    def tiles(self) -> dict[str, bytes]:
        """Every tile of the current tree, full and partial, as a server publishes them over time."""
        out = {}
        n = len(self.log)
        for t in tlog.new_tiles(8, 0, n):
            out[t.path()] = self.log.tile(t)
        return out


@pytest.fixture
def keys():
    skey, vkey = note.generate_key(NAME)
    return skey, note.parse_verifier(vkey)


def carry(lg: Log, records, head: carried.Head, tiles: dict[str, bytes]) -> dict[str, bytes]:
    return {f"lookup/m{i}": lg.answer(rid, text, head) for i, (rid, text) in enumerate(records)}


def test_one_head_with_its_tiles_passes_and_with_head_keeps_the_record_bytes(keys):
    skey, verifier = keys
    lg = Log(skey)
    rec = [lg.add(f"example.com/m{i}") for i in range(3)]
    old = lg.head()
    old_tiles = lg.tiles()
    answer = lg.answer(*rec[0], old)
    for i in range(300):
        lg.log.append(f"later{i} v1 h1:x\n".encode())
    new = lg.head()
    moved = carried.with_head(answer, new)
    assert moved.startswith(tlog.format_record(*rec[0])) and moved.endswith(new.note)
    tiles = lg.tiles()
    lookups = carry(lg, rec, new, tiles)
    heads = {"airsync/heads/%d" % old.n: old.note}
    # A remembered head needs its own right edge too (the go command checks it against itself).
    problems = carried.check_database(lookups, heads, tiles.get, verifier)
    assert problems and all(f"(checking tree {old.n})" in why for _, why in problems)
    tiles = {**old_tiles, **tiles}
    assert carried.check_database(lookups, heads, tiles.get, verifier) == []


def test_a_note_signed_by_another_key_is_named(keys):
    skey, verifier = keys
    lg = Log(skey)
    rid, text = lg.add("example.com/a")
    other = Log(note.generate_key(NAME)[0], pad=0)
    other.log = lg.log
    problems = carried.check_database({"lookup/a": lg.answer(rid, text, other.head())}, {}, lg.tiles().get, verifier)
    assert [p for p, _ in problems] == ["lookup/a"] and "not signed by the checksum database key" in problems[0][1]


def test_a_missing_tile_is_named_by_its_path(keys):
    skey, verifier = keys
    lg = Log(skey)
    rec = [lg.add("example.com/a")]
    head = lg.head()
    tiles = lg.tiles()
    gone = tlog.Tile(8, 0, rec[0][0] >> 8, len(lg.log) - (rec[0][0] >> 8 << 8)).path()
    del tiles[gone]
    problems = carried.check_database(carry(lg, rec, head, tiles), {}, tiles.get, verifier)
    assert problems and problems[0][0] == gone and "missing tile" in problems[0][1]


def test_a_partial_tile_is_cut_from_the_full_one_as_the_go_client_does(keys):
    skey, verifier = keys
    lg = Log(skey, pad=100)
    rec = [lg.add("example.com/a")]
    head = lg.head()
    for i in range(300):
        lg.log.append(f"later{i} v1 h1:x\n".encode())
    full = lg.tiles()  # the level-0 tile 000 is full now; head's .p/101 is not served any more
    assert carried.check_database(carry(lg, rec, head, full), {}, full.get, verifier) == []


def test_forked_heads_are_named(keys):
    skey, verifier = keys
    a, b = Log(skey, pad=600, seed="a"), Log(skey, pad=600, seed="b")
    rec = [a.add("example.com/x")]
    b.add("example.com/x")
    for i in range(40):
        a.log.append(f"more{i} v1 h1:x\n".encode())
    head_a, old_b = a.head(), b.head()
    tiles = a.tiles()
    problems = carried.check_database(carry(a, rec, head_a, tiles), {f"airsync/heads/{old_b.n}": old_b.note},
                                      tiles.get, verifier)
    assert any("SECURITY: forked" in why for _, why in problems), problems
    with pytest.raises(carried.Forked):
        carried.check_consistent(old_b, head_a, tiles.get)


def test_mixed_heads_need_every_record_in_every_newer_head(keys):
    """What the go command needs when answers carry different heads (what issue 16 hit)."""
    skey, verifier = keys
    lg = Log(skey, pad=250)
    r1 = lg.add("example.com/old")
    h1 = lg.head()
    tiles_h1 = lg.tiles()
    for i in range(600):
        lg.log.append(f"later{i} v1 h1:x\n".encode())
    r2 = lg.add("example.com/new")
    h2 = lg.head()
    # Only what a prover of each record in its own head stores: h1's tiles for r1, h2's for r2.
    tiles = dict(tiles_h1)
    used: dict[str, bytes] = {}
    all_h2 = lg.tiles()

    def read(p):
        used[p] = all_h2.get(p)
        return all_h2.get(p)

    carried.check_included([r2], h2.tree, read)
    tiles.update(used)
    lookups = {"lookup/old": lg.answer(*r1, h1), "lookup/new": lg.answer(*r2, h2)}
    problems = carried.check_database(lookups, {}, tiles.get, verifier)
    assert problems and all("missing tile" in why for _, why in problems)
    assert carried.check_database(lookups, {}, all_h2.get, verifier) == []


def test_a_record_its_tree_does_not_hold_is_named(keys):
    skey, verifier = keys
    lg = Log(skey)
    rid, _ = lg.add("example.com/a")
    head = lg.head()
    body = tlog.format_record(rid, b"example.com/a v1.0.0 h1:OTHER\nexample.com/a v1.0.0/go.mod h1:mod\n") + head.note
    problems = carried.check_database({"lookup/a": body}, {}, lg.tiles().get, verifier)
    assert problems == [("lookup/a", f"record {rid} does not match tree {head.n} (tampered answer)")]


def test_compare_lookups(keys):
    skey, _ = keys
    lg = Log(skey)
    rec = lg.add("example.com/a")
    old = lg.answer(*rec, lg.head())
    lg.log.append(b"x v1 h1:x\n")
    new = lg.answer(*rec, lg.head())
    assert carried.compare_lookups(new, old) == "newer"
    assert carried.compare_lookups(old, new) == "older"
    other = tlog.format_record(rec[0], b"example.com/a v1.0.0 h1:B\n") + lg.head().note
    assert "record differs" in carried.compare_lookups(other, new)
    fork = Log(skey, seed="f")
    fork.add("pad")
    forked = tlog.format_record(*rec) + fork.head().note
    assert tlog.parse_tree(carried.split_lookup(forked)[3]).n == tlog.parse_tree(carried.split_lookup(old)[3]).n
    assert "SECURITY" in carried.compare_lookups(forked, old)


def test_plan_import_keeps_the_newer_answer():
    lookup = "sumdb/sum.example/lookup/example.com/a@v1.0.0"
    e = [manifest.Entry(lookup, 10, "a" * 64, "0" * 32), manifest.Entry("sumdb/sum.example/airsync/heads/7", 1, "b" * 64, "0" * 32)]
    m = manifest.Manifest("2024-05-01T12:00:00Z", "x", tuple(e))
    differs = ("file", 11, "c" * 64)
    plan = verify.plan_import(m, {lookup: differs}, {lookup: "newer"})
    assert [x.path for x in plan.copy] == ["sumdb/sum.example/airsync/heads/7", lookup]  # proofs first
    plan = verify.plan_import(m, {lookup: differs}, {lookup: "older"})
    assert [x.path for x in plan.skip] == [lookup]
    plan = verify.plan_import(m, {lookup: differs}, {lookup: "SECURITY: forked"})
    assert plan.conflicts == ((lookup, "SECURITY: forked"),)
    # A pull (no answers read): newer when the inside lacks the peer's newest head, kept otherwise.
    assert lookup in [x.path for x in verify.plan_import(m, {lookup: differs}).copy]
    have_head = {lookup: differs, "sumdb/sum.example/airsync/heads/7": ("file", 1, "b" * 64)}
    assert {x.path for x in verify.plan_import(m, have_head).skip} == {lookup, "sumdb/sum.example/airsync/heads/7"}


def test_heads_file_round_trip(keys):
    skey, _ = keys
    lg = Log(skey, pad=5)
    head = lg.head()
    text = carried.format_heads_file([(NAME, head)], "somewhere")
    assert carried.parse_heads_file(text) == [(NAME, head.n, head.note)]
    with pytest.raises(AirsyncError, match="line 1"):
        carried.parse_heads_file("sum.example 12\n")


def test_state_keeps_carried_and_pending_heads(tmp_path):
    st = StateDB(tmp_path / "state.db")
    st.add_sumdb_heads(NAME, [(5, b"five")], "pending")
    st.add_sumdb_heads(NAME, [(9, b"nine"), (3, b"three")])
    assert st.sumdb_heads(NAME) == [b"three", b"nine"]
    assert st.sumdb_heads(NAME, "pending") == [b"five"]
    st.add_sumdb_heads(NAME, [(5, b"five")])  # proved: carried now
    st.add_sumdb_heads(NAME, [(9, b"nine")], "pending")  # never back to pending
    assert st.sumdb_heads(NAME) == [b"three", b"five", b"nine"] and st.sumdb_heads(NAME, "pending") == []
    st.close()
