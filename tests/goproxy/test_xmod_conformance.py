"""airsync's Go-format functions against golang.org/x/mod's own tests: the same answers, case by case.

x/mod's test data is read where x/mod is installed (``tests.helpers.xmod``: Debian's x/mod and a
newer one from the Go module proxy, each dumped once per session by the go command, offline). Each
table row, recorded call and txtar file is a test id of its own, named after the copy
(``xmod0.7.0-...``), the x/mod table or test, and the input. What airsync must answer is what x/mod
says: the table's own columns; for a test without tables, the answer x/mod's function gave to the
call that test made; for functions x/mod's tables leave untested (EscapeVersion, Major, ...), x/mod's
function asked about the same test data (the oracle). The zip cases build their zip from the
txtar file as x/mod's zip_test.go does and compare airsync's verdict with the one the file states.

Where airsync departs from x/mod on purpose, ``DEVIATIONS`` says so with the reason, and the case
checks that the departure is still exactly that one. Everything else must agree.

Not covered: what airsync has no counterpart for (module.PseudoVersion and its Time, Rev and Base,
semver.Max, the lookup API of note.VerifierList, dirhash.DirFiles, and zip's Create, CheckFiles and
CheckDir, whose ``exclude_*`` cases say what a zip being made leaves out: airsync only checks zips);
tests that need the network or git (TestVCS, TestCreateFromVCS_*, and 0.7.0's
TestCertificateTransparency, which fetches its vectors); TestUnzipSizeLimitsSpecial, whose cases are
functions that write zips; and TestTileHashReader (0.43.0), whose 30,000 tile reads would take longer
than all of the above (tests/trust/test_tlog.py tampers with tiles itself).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from airsync.errors import ModulePathError, ZipRuleError
from airsync.goproxy import dirhash, modpath, modzip, semver
from airsync.trust import note, sumdb, tlog
from tests.helpers import xmod
from tests.helpers.xmod import Copy, XmodUnavailable

# (x/mod function, copy label) -> why airsync answers differently from that x/mod, on purpose.
DEVIATIONS: dict[tuple[str, str], str] = {
    ("tlog.NewTiles", "xmod0.7.0"): "x/mod 0.7.0 also lists a level's unchanged tile and each narrower "
    "partial one; newer x/mod lists only the tiles that changed, at their final width, and so does airsync",
}


def _deviates(fn: str, label: str) -> bool:
    return (fn, label) in DEVIATIONS


def _changed_tiles(h: int, old: int, new: int, tiles: list[tlog.Tile]) -> list[tlog.Tile]:
    """x/mod 0.7.0's NewTiles answer less what newer x/mod leaves out: tiles of levels the growth
    does not reach, and partial tiles a wider one at the same place supersedes."""
    widest: dict[tuple[int, int], int] = {}
    for t in tiles:
        widest[t.l, t.n] = max(widest.get((t.l, t.n), 0), t.w)
    return [t for t in tiles if old >> (h * t.l) != new >> (h * t.l) and t.w == widest[t.l, t.n]]


def _new_tiles_agree(label: str, h: int, old: int, new: int, go_tiles) -> bool:
    want = [_tile(t) for t in go_tiles or ()]
    if _deviates("tlog.NewTiles", label):
        want = _changed_tiles(h, old, new, want)
    return tlog.new_tiles(h, old, new) == want


def _q(s: object) -> str:
    """A short, ASCII-only rendering of an input for a test id."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "surrogateescape")
    text = json.dumps(s, ensure_ascii=True)
    return text if len(text) <= 60 else text[:50] + f"...({len(text)})"


# --- collection: one parameter per case ----------------------------------------------------------

_GENERATORS = {}


def _cases(fn):
    """Registers fn(copy, dump) -> [(id, data)] as the cases of the test of the same name."""
    _GENERATORS["test_" + fn.__name__.removeprefix("_cases_")] = fn
    return fn


def pytest_generate_tests(metafunc):
    gen = _GENERATORS.get(metafunc.function.__name__)
    if gen is None:
        return
    params, ids = [], set()
    for copy in xmod.copies():
        try:
            cases = [(f"{copy.label}-{case_id}", data) for case_id, data in gen(copy, xmod.dump(copy))]
        except XmodUnavailable as e:
            # Never a skip: CI installs go and both copies of x/mod, so this is a broken setup.
            cases = [(f"{copy.label}-unavailable", e)]
        for case_id, data in cases:
            assert case_id not in ids, f"duplicate case id {case_id}"
            ids.add(case_id)
            params.append(pytest.param(data, id=case_id))
    metafunc.parametrize("case", params)


def _given(case):
    if isinstance(case, XmodUnavailable):
        pytest.fail(f"x/mod's test data is unavailable: {case}", pytrace=False)
    return case


def _calls(dump: dict, *fns: str, test: str | None = None) -> list[dict]:
    return [c for c in dump["calls"] if c["fn"] in fns and (test is None or c["test"] == test)]


@_cases
def _cases_dump_complete(copy: Copy, dump):
    for pkg in xmod.PACKAGES:
        yield f"dump-{pkg}", (copy, dump[pkg]["missing"])


def test_dump_complete(case):
    """Every table and test asked for was found, unless an older x/mod lacks it (a newer test) or it
    needs the network: a renamed table would otherwise quietly take its cases away."""
    copy, missing = _given(case)
    newest = xmod.copies()[-1]
    if copy == newest:
        assert missing == []
    else:
        newest_missing = {m for d in xmod.dump(newest).values() for m in d["missing"]}
        for name in missing:
            assert name.split(" ")[0] not in newest_missing, f"{name}: in neither {copy.label} nor {newest.label}"


@_cases
def _cases_deviation_is_real(copy: Copy, dump):
    for fn, label in DEVIATIONS:
        if label == copy.label:
            yield f"deviation-{fn}", (fn, dump)


def test_deviation_is_real(case):
    """A deviation no case shows any more is stale: the x/mod copy changed, so DEVIATIONS must."""
    fn, dump = _given(case)
    shown = {
        "tlog.NewTiles": lambda: any(
            tlog.new_tiles(c["h"], c["old"], c["new"]) != [_tile(t) for t in c["tiles"] or ()]
            for c in _calls(dump["sumdb/tlog"], "NewTiles")
        ),
    }
    assert shown[fn](), f"airsync now agrees with this x/mod's {fn}: drop the deviation"


def test_deviations_name_tested_copies():
    labels = {c.label for c in xmod.copies()}
    assert {label for _, label in DEVIATIONS} <= labels, f"DEVIATIONS names a copy not tested here ({labels})"


# --- module paths and versions (module_test.go, pseudo_test.go) ---------------------------------

_PATH_CHECKS = {
    "CheckPath": (modpath.check_path, "ok"),
    "CheckImportPath": (modpath.check_import_path, "importOK"),
    "CheckFilePath": (modpath.check_file_path, "fileOK"),
}


def _accepts(fn, *args) -> bool:
    try:
        fn(*args)
    except ModulePathError:
        return False
    return True


@_cases
def _cases_check_path_table(copy: Copy, dump):
    for i, row in enumerate(dump["module"]["tables"]["checkPathTests"]):
        for name, (_, column) in _PATH_CHECKS.items():
            yield f"checkPathTests[{i}]-{name}-{_q(row['path'])}", (name, row["path"], row[column])


def test_check_path_table(case):
    name, path, ok = _given(case)
    assert _accepts(_PATH_CHECKS[name][0], path) == ok, f"x/mod's {name}({_q(path)}) ok={ok}"


@_cases
def _cases_split_path_version_table(copy: Copy, dump):
    tables = dump["module"]["tables"]
    for i, row in enumerate(tables["splitPathVersionTests"]):
        yield f"splitPathVersionTests[{i}]-{_q(row['pathPrefix'] + row['version'])}", (row, None)
    # TestSplitPathVersion also wants every checkPathTests path split into parts that add up to it.
    for i, row in enumerate(tables["checkPathTests"]):
        yield f"checkPathTests[{i}]-SplitPathVersion-{_q(row['path'])}", (None, row["path"])


def test_split_path_version_table(case):
    row, path = _given(case)
    if row is not None:
        whole = row["pathPrefix"] + row["version"]
        assert modpath.split_path_version(whole) == (row["pathPrefix"], row["version"], True)
    else:
        prefix, major, _ = modpath.split_path_version(path)
        assert prefix + major == path


@_cases
def _cases_escape_path_table(copy: Copy, dump):
    tables = dump["module"]["tables"]
    for i, row in enumerate(tables["checkPathTests"]):
        if not row["ok"]:
            yield f"checkPathTests[{i}]-EscapePath-{_q(row['path'])}", (row["path"], None)
    for i, row in enumerate(tables["escapeTests"]):
        yield f"escapeTests[{i}]-{_q(row['path'])}", (row["path"], row["esc"] or row["path"])


def test_escape_path_table(case):
    path, esc = _given(case)
    if esc is None:
        with pytest.raises(ModulePathError):
            modpath.escape_path(path)
    else:
        assert modpath.escape_path(path) == esc


@_cases
def _cases_unescape_path_table(copy: Copy, dump):
    tables = dump["module"]["tables"]
    for i, bad in enumerate(tables["badUnescape"]):
        yield f"badUnescape[{i}]-{_q(bad)}", (bad, None)
    for i, row in enumerate(tables["checkPathTests"]):
        if not row["ok"]:
            yield f"checkPathTests[{i}]-UnescapePath-{_q(row['path'])}", (row["path"], None)
    for i, row in enumerate(tables["escapeTests"]):
        escaped = row["esc"] or row["path"]
        yield f"escapeTests[{i}]-UnescapePath-{_q(escaped)}", (escaped, row["path"])


def test_unescape_path_table(case):
    escaped, path = _given(case)
    if path is None:
        with pytest.raises(ModulePathError):
            modpath.unescape_path(escaped)
    else:
        assert modpath.unescape_path(escaped) == path


@_cases
def _cases_check_table(copy: Copy, dump):
    for i, row in enumerate(dump["module"]["tables"]["checkTests"]):
        yield f"checkTests[{i}]-{_q(row['path'] + '@' + row['version'])}", row


def test_check_table(case):
    """module.Check(path, version): airsync's check_version, which also wants the version canonical."""
    row = _given(case)
    assert _accepts(modpath.check_version, row["path"], row["version"]) == row["ok"]


@_cases
def _cases_pseudo_table(copy: Copy, dump):
    for i, row in enumerate(dump["module"]["tables"]["pseudoTests"]):
        yield f"pseudoTests[{i}]-IsPseudoVersion-{_q(row['version'])}", (row["version"], True)
        yield f"pseudoTests[{i}]-IsPseudoVersion-older-{_q(row['older'])}", (row["older"], False)


def test_pseudo_table(case):
    version, want = _given(case)
    assert semver.is_pseudo(version) == want


@_cases
def _cases_match_path_major(copy: Copy, dump):
    for i, call in enumerate(_calls(dump["module"], "MatchPathMajor")):
        yield f"TestMatchPathMajor[{i}]-{_q(call['v'])}-{_q(call['pathMajor'])}", call


def test_match_path_major(case):
    call = _given(case)
    assert (modpath.check_path_major(call["v"], call["pathMajor"]) is None) == call["ok"]


@_cases
def _cases_match_prefix_patterns(copy: Copy, dump):
    for i, call in enumerate(_calls(dump["module"], "MatchPrefixPatterns")):
        yield f"TestMatchPrefixPatterns[{i}]-{_q(call['globs'])}-{_q(call['target'])}", call


def test_match_prefix_patterns(case):
    """GONOSUMDB-style globs: airsync.trust.sumdb.matches_patterns is module.MatchPrefixPatterns."""
    call = _given(case)
    assert sumdb.matches_patterns(call["globs"], call["target"]) == call["ok"]


def _answer(fn, *args):
    """(result, None) or (None, the ModulePathError's message): comparable with x/mod's answers."""
    try:
        return fn(*args), None
    except ModulePathError as e:
        return None, str(e)


def _oracle_path_check(fn):
    return lambda s, go: (_answer(fn, s)[1] is None) == (go is None)


def _oracle_pair(fn):
    def check(s, go):
        result, err = _answer(fn, s)
        return (err is None) == (go[1] is None) and (err is not None or result == go[0])

    return check


_MODULE_ORACLE = {
    "CheckPath": _oracle_path_check(modpath.check_path),
    "CheckImportPath": _oracle_path_check(modpath.check_import_path),
    "CheckFilePath": _oracle_path_check(modpath.check_file_path),
    "EscapePath": _oracle_pair(modpath.escape_path),
    "UnescapePath": _oracle_pair(modpath.unescape_path),
    "EscapeVersion": _oracle_pair(modpath.escape_version),
    "UnescapeVersion": _oracle_pair(modpath.unescape_version),
    "SplitPathVersion": lambda s, go: list(modpath.split_path_version(s)) == go,
    "CanonicalVersion": lambda s, go: modpath.canonical_version(s) == go,
    "IsPseudoVersion": lambda s, go: semver.is_pseudo(s) == go,
}


@_cases
def _cases_module_oracle(copy: Copy, dump):
    for answer in dump["module"]["oracle"]["strings"]:
        for name in _MODULE_ORACLE:
            yield f"oracle-{name}-{_q(answer['s'])}", (name, answer["s"], answer[name])


def test_module_oracle(case):
    """Every string of x/mod's module test tables, through every path and version function."""
    name, s, go = _given(case)
    assert _MODULE_ORACLE[name](s, go), f"x/mod's {name}({_q(s)}) = {go!r}"


@_cases
def _cases_check_path_major_oracle(copy: Copy, dump):
    for i, answer in enumerate(dump["module"]["oracle"]["CheckPathMajor"]):
        yield f"oracle-CheckPathMajor[{i}]-{_q(answer['v'])}-{_q(answer['pathMajor'])}", answer


def test_check_path_major_oracle(case):
    answer = _given(case)
    assert (modpath.check_path_major(answer["v"], answer["pathMajor"]) is None) == (answer["err"] is None)


# --- semver (semver_test.go) ---------------------------------------------------------------------


@_cases
def _cases_semver_table(copy: Copy, dump):
    for i, row in enumerate(dump["semver"]["tables"]["tests"]):
        yield f"tests[{i}]-IsValid-{_q(row['in'])}", ("IsValid", row["in"], row["out"] != "")
        yield f"tests[{i}]-Canonical-{_q(row['in'])}", ("Canonical", row["in"], row["out"])


_SEMVER = {
    "IsValid": semver.is_valid,
    "Canonical": semver.canonical,
    "Major": semver.major,
    "MajorMinor": semver.major_minor,
    "Prerelease": semver.prerelease,
    "Build": semver.build,
}


def test_semver_table(case):
    name, v, want = _given(case)
    assert _SEMVER[name](v) == want


@_cases
def _cases_semver_oracle(copy: Copy, dump):
    for i, answer in enumerate(dump["semver"]["oracle"]):
        for name in ("Major", "MajorMinor", "Prerelease", "Build"):
            yield f"tests[{i}]-{name}-{_q(answer['v'])}", (name, answer["v"], answer[name])


def test_semver_oracle(case):
    name, v, want = _given(case)
    assert _SEMVER[name](v) == want


@_cases
def _cases_semver_compare(copy: Copy, dump):
    rows = dump["semver"]["oracle"]
    for i, answer in enumerate(rows):
        against = [(r["v"], c) for r, c in zip(rows, answer["Compare"])]
        yield f"tests[{i}]-Compare-{_q(answer['v'])}", (answer["v"], against)


def test_semver_compare(case):
    """TestCompare, one row of the table against every row."""
    v, against = _given(case)
    got = {w: semver.compare(v, w) for w, _ in against}
    assert got == dict(against)


@_cases
def _cases_semver_sort(copy: Copy, dump):
    for i, call in enumerate(_calls(dump["semver"], "Sort")):
        yield f"TestSort[{i}]", call


def test_semver_sort(case):
    call = _given(case)
    assert sorted(call["in"], key=semver.sort_key) == call["out"]


# --- signed notes (sumdb/note/note_test.go) ------------------------------------------------------


def _note_error(message: str) -> type[Exception]:
    if message == "malformed note":
        return note.MalformedNoteError
    if message.startswith("ambiguous key "):
        return note.InvalidKeyError
    raise AssertionError(f"x/mod error {message!r} has no airsync counterpart known to this test")


def _utf8(s: str) -> bytes:
    """A Go string's bytes back (the dump keeps bytes that are not UTF-8 as surrogate escapes)."""
    return s.encode("utf-8", "surrogateescape")


def _sigs(go_sigs) -> tuple[note.Signature, ...]:
    return tuple(note.Signature(s["Name"], s["Hash"], s["Base64"]) for s in go_sigs or ())


@_cases
def _cases_note_call(copy: Copy, dump):
    counts: dict[str, int] = defaultdict(int)
    for call in dump["sumdb/note"]["calls"]:
        k = counts[call["test"] + call["fn"]]
        counts[call["test"] + call["fn"]] += 1
        # Keys name the key-parsing cases; GenerateKey's keys are random, so they stay out of ids.
        key = {"NewVerifier": call.get("vkey"), "NewSigner": call.get("skey")}.get(call["fn"])
        yield f"{call['test']}-{call['fn']}[{k}]" + (f"-{_q(key)}" if key is not None else ""), call


def test_note_call(case):
    call = _given(case)
    check = {
        "NewVerifier": _check_new_verifier,
        "NewSigner": _check_new_signer,
        "GenerateKey": _check_generate_key,
        "NewEd25519VerifierKey": _check_ed25519_verifier_key,
        "Open": _check_open,
        "Sign": _check_sign,
    }[call["fn"]]
    check(call)


def _check_new_verifier(call):
    if call["err"] is not None:
        with pytest.raises(note.InvalidKeyError):
            note.parse_verifier(call["vkey"])
        return
    v = note.parse_verifier(call["vkey"])
    assert (v.name, v.key_hash, v.vkey) == (call["name"], call["hash"], call["vkey"])


def _check_new_signer(call):
    if call["err"] is not None:
        with pytest.raises(note.InvalidKeyError):
            note.parse_signer(call["skey"])
        return
    s = note.parse_signer(call["skey"])
    assert (s.name, s.key_hash, s.skey) == (call["name"], call["hash"], call["skey"])


def _check_generate_key(call):
    signer, verifier = note.parse_signer(call["skey"]), note.parse_verifier(call["vkey"])
    assert signer.name == verifier.name == call["name"]
    assert signer.verifier == verifier
    assert verifier.verify(b"hi", signer.sign(b"hi"))


def _check_ed25519_verifier_key(call):
    if call["err"] is not None:
        with pytest.raises(note.InvalidKeyError):
            note.Verifier.from_public_key(call["name"], call["key"])
        return
    assert note.Verifier.from_public_key(call["name"], call["key"]).vkey == call["vkey"]


def _check_open(call):
    verifiers = [note.parse_verifier(k) for k in call["vkeys"]]
    go = call["note"]
    if call["errKind"] == "":
        opened = note.open_note(call["msg"], verifiers)
    elif call["errKind"] == "unverified":
        with pytest.raises(note.UnverifiedNoteError) as e:
            note.open_note(call["msg"], verifiers)
        opened = e.value.note
    elif call["errKind"] == "invalid signature":
        with pytest.raises(note.InvalidSignatureError) as e:
            note.open_note(call["msg"], verifiers)
        assert str(e.value) == call["err"]  # the key, named as x/mod names it
        return
    else:
        with pytest.raises(_note_error(call["err"])) as e:
            note.open_note(call["msg"], verifiers)
        if e.type is note.InvalidKeyError:
            assert str(e.value) == call["err"]  # "ambiguous key <name>+<hash>"
        return
    assert opened.text == _utf8(go["Text"])
    assert opened.sigs == _sigs(go["Sigs"])
    assert opened.unverified == _sigs(go["UnverifiedSigs"])


def _check_sign(call):
    go = call["note"]
    text = note.Note(_utf8(go["Text"]), _sigs(go["Sigs"]), _sigs(go["UnverifiedSigs"]))
    signers = [note.parse_signer(k) for k in call["skeys"]]
    if call["err"] is not None:
        with pytest.raises(_note_error(call["err"])):
            note.sign(text, *signers)
        return
    assert note.sign(text, *signers) == call["msg"]


# --- the transparency log (sumdb/tlog/*_test.go) -------------------------------------------------


def _tile(go) -> tlog.Tile:
    return tlog.Tile(go["H"], go["L"], go["N"], go["W"])


@_cases
def _cases_tile_path_table(copy: Copy, dump):
    for i, row in enumerate(dump["sumdb/tlog"]["tables"]["tilePaths"]):
        yield f"tilePaths[{i}]-{_q(row['path'])}", row


def test_tile_path_table(case):
    row = _given(case)
    if row["tile"]["H"] > 0:
        assert _tile(row["tile"]).path() == row["path"]
        assert tlog.parse_tile_path(row["path"]) == _tile(row["tile"])
    else:  # a zero Tile: the path must be refused
        with pytest.raises(tlog.TileError):
            tlog.parse_tile_path(row["path"])


@_cases
def _cases_tlog_call(copy: Copy, dump):
    counts: dict[str, int] = defaultdict(int)
    for call in dump["sumdb/tlog"]["calls"]:
        if call["test"] in ("TestTree", "TestSplitStoredHashIndex"):
            continue  # grouped below, by tree and by level
        key = call["test"] + "-" + call["fn"]
        yield f"{key}[{counts[key]}]", (copy.label, call)
        counts[key] += 1


def _raises(exc, fn, *args) -> bool:
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_tlog_call(case):
    label, call = _given(case)
    fn = call["fn"]
    failed = call.get("err") is not None
    if fn == "ParseTilePath":
        if failed:
            assert _raises(tlog.TileError, tlog.parse_tile_path, call["path"])
        else:
            assert tlog.parse_tile_path(call["path"]) == _tile(call["tile"])
    elif fn == "FormatTree":
        assert tlog.format_tree(tlog.Tree(call["tree"]["N"], call["tree"]["Hash"])) == call["text"]
    elif fn == "ParseTree":
        if failed:
            assert _raises(tlog.FormatError, tlog.parse_tree, call["text"])
        else:
            assert tlog.parse_tree(call["text"]) == tlog.Tree(call["tree"]["N"], call["tree"]["Hash"])
    elif fn == "FormatRecord":
        if failed:
            assert _raises(tlog.FormatError, tlog.format_record, call["id"], call["text"])
        else:
            assert tlog.format_record(call["id"], call["text"]) == call["msg"]
    elif fn == "ParseRecord":
        if failed:
            assert _raises(tlog.FormatError, tlog.parse_record, call["msg"])
        else:
            assert tlog.parse_record(call["msg"]) == (call["id"], call["text"], call["rest"])
    elif fn == "NewTiles":
        assert _new_tiles_agree(label, call["h"], call["old"], call["new"], call["tiles"])
    elif fn == "TreeHash":
        assert call["reader"] is None and not failed  # TestEmptyTree: no hash is read
        assert tlog.tree_hash(call["n"], lambda indexes: []) == call["hash"]
    elif fn == "ParseHash":
        if failed:
            assert _raises(tlog.FormatError, tlog.parse_hash, call["s"])
        else:
            assert tlog.parse_hash(call["s"]) == call["hash"]
    elif fn in ("CheckRecord", "CheckTree"):
        check = tlog.check_record if fn == "CheckRecord" else tlog.check_tree
        args = (call["proof"] or [], call["t"], call["th"], call["n"], call["h"])
        assert _raises(tlog.ProofError, check, *args) == failed
    else:
        raise AssertionError(f"no airsync counterpart known for tlog.{fn}")


@_cases
def _cases_tlog_split_stored_hash_index(copy: Copy, dump):
    by_level = defaultdict(list)
    test = "TestSplitStoredHashIndex"
    calls = _calls(dump["sumdb/tlog"], "StoredHashIndex", "SplitStoredHashIndex", test=test)
    for index_call, split_call in zip(calls[::2], calls[1::2]):
        by_level[index_call["level"]].append((index_call, split_call))
    for level, pairs in sorted(by_level.items()):
        yield f"TestSplitStoredHashIndex-level{level}", pairs


def test_tlog_split_stored_hash_index(case):
    for index_call, split_call in _given(case):
        assert tlog.stored_hash_index(index_call["level"], index_call["n"]) == index_call["index"]
        assert tlog.split_stored_hash_index(split_call["index"]) == (split_call["level"], split_call["n"])


@_cases
def _cases_tlog_tree(copy: Copy, dump):
    """TestTree, one id per tree size: its calls from one record's StoredHashes to the next's."""
    calls = _calls(dump["sumdb/tlog"], *_TREE_CALLS, test="TestTree")
    starts = [i for i, c in enumerate(calls) if c["fn"] == "StoredHashes"] + [len(calls)]
    log = _GoLog(calls)
    for a, b in zip(starts, starts[1:]):
        yield f"TestTree-N={calls[a]['n'] + 1}", (copy.label, log, a, b)


class _GoLog:
    """What TestTree had built when each record was added: stored hashes, tiles and tree hashes."""

    def __init__(self, calls: list[dict]) -> None:
        self.calls = calls
        self.states: dict[int, tuple[list[bytes], dict[tlog.Tile, bytes], dict[int, bytes]]] = {}
        storage: list[bytes] = []
        tiles: dict[tlog.Tile, bytes] = {}
        trees: dict[int, bytes] = {}
        for i, c in enumerate(calls):
            if c["fn"] == "StoredHashes":
                self.states[i] = (list(storage), dict(tiles), dict(trees))
                storage += c["hashes"]
            elif c["fn"] == "ReadTileData" and c["reader"] == "storage":
                tiles[_tile(c["tile"])] = c["data"]
            elif c["fn"] == "TreeHash" and c["reader"] == "storage":
                trees[c["n"]] = c["hash"]


_TREE_CALLS = (
    "StoredHashes",
    "StoredHashCount",
    "TreeHash",
    "NewTiles",
    "ReadTileData",
    "TileForIndex",
    "HashFromTile",
    "ProveRecord",
    "ProveTree",
)


def test_tlog_tree(case):
    label, log, start, end = _given(case)
    storage, tiles, trees = (type(x)(x) for x in log.states[start])
    leaves = [tlog.record_hash(c["data"]) for c in log.calls[:end] if c["fn"] == "StoredHashes"]

    def read_storage(indexes):
        return [storage[i] for i in indexes]

    def reader(go):
        if go == "storage":
            return read_storage
        # A TileHashReader over the tiles the test had stored, for the tree it was made for.
        tree = tlog.Tree(go["n"], go["hash"])
        return tlog.tile_hash_reader(tree, go["height"], lambda ts: [tiles[t] for t in ts])

    for c in log.calls[start:end]:
        fn = c["fn"]
        where = f"{fn} {json.dumps({k: v for k, v in c.items() if isinstance(v, int)})}"
        if fn == "StoredHashes":
            assert tlog.stored_hashes(c["n"], c["data"], read_storage) == c["hashes"], where
            storage += c["hashes"]
        elif fn == "StoredHashCount":
            assert tlog.stored_hash_count(c["n"]) == c["count"] == len(storage), where
        elif fn == "TreeHash":
            assert tlog.tree_hash(c["n"], reader(c["reader"])) == c["hash"], where
            if c["reader"] == "storage":
                trees[c["n"]] = c["hash"]
        elif fn == "NewTiles":
            assert _new_tiles_agree(label, c["h"], c["old"], c["new"], c["tiles"]), where
        elif fn == "ReadTileData":
            assert tlog.read_tile_data(_tile(c["tile"]), read_storage) == c["data"], where
            tiles[_tile(c["tile"])] = c["data"]
        elif fn == "TileForIndex":
            assert tlog.tile_for_index(c["h"], c["index"]) == _tile(c["tile"]), where
        elif fn == "HashFromTile":
            assert tlog.hash_from_tile(_tile(c["tile"]), c["data"], c["index"]) == c["hash"], where
        elif fn == "ProveRecord":
            proof = c["proof"] or []
            assert tlog.prove_record(c["t"], c["n"], reader(c["reader"])) == proof, where
            # TestTree checks every proof it makes, and corrupts those made from stored hashes.
            corrupt = c["reader"] == "storage"
            _check_proof(tlog.check_record, proof, c["t"], trees[c["t"]], c["n"], leaves[c["n"]], corrupt, where)
        elif fn == "ProveTree":
            proof = c["proof"] or []
            assert tlog.prove_tree(c["t"], c["n"], reader(c["reader"])) == proof, where
            _check_proof(tlog.check_tree, proof, c["t"], trees[c["t"]], c["n"], trees[c["n"]], True, where)


def _check_proof(check, proof, t, th, n, h, corrupt, where):
    """The proof checks out; with corrupt, each copy of it with one hash's first bit flipped does not."""
    check(proof, t, th, n, h)
    for k in range(len(proof) if corrupt else 0):
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        assert _raises(tlog.ProofError, check, bad, t, th, n, h), f"{where}: corrupt proof hash #{k} accepted"


# --- the h1 hash (sumdb/dirhash/hash_test.go) ----------------------------------------------------


@_cases
def _cases_dirhash_call(copy: Copy, dump):
    for i, call in enumerate(dump["sumdb/dirhash"]["calls"]):
        yield f"{call['test']}-{call['fn']}[{i}]", call


def test_dirhash_call(case, tmp_path):
    call = _given(case)
    if call["fn"] == "Hash1":
        files = list(zip(call["files"], call["contents"]))
        if call["err"] is not None:
            with pytest.raises(ValueError):
                dirhash.hash1(files)
        else:
            assert dirhash.hash1(files) == call["hash"]
    elif call["fn"] == "HashDir":
        # HashDir is Hash1 over the directory's files named prefix/<slash-separated path>.
        files = [(f"{call['prefix']}/{name}", data) for name, data in zip(call["files"], call["contents"])]
        assert dirhash.hash1(files) == call["hash"]
    elif call["fn"] == "HashZip":
        zip_path = tmp_path / "hash.zip"
        zip_path.write_bytes(call["zip"])
        assert dirhash.hash_zip(zip_path) == call["hash"]
    else:
        raise AssertionError(f"no airsync counterpart known for dirhash.{call['fn']}")


# --- module zips (zip/testdata/*, zip_test.go's sizeLimitTests) ----------------------------------


def _write_zip(path: Path, files: list[tuple[str, bytes]]) -> Path:
    """A zip as zip_test.go writes one with archive/zip's Create: deflated entries, in order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are some cases' point
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files:
                zf.writestr(name, data)
    return path


def _verdict(path: str, version: str, zip_path: Path) -> tuple[str | None, str | None]:
    """(h1, None) if airsync takes the zip for path@version, else (None, why): as a mirror checks
    a downloaded zip, the module version first (modpath) and then the zip (modzip)."""
    try:
        mv = modpath.ModuleVersion(path, version)
        modpath.check_version(path, version)
        return modzip.check_zip(zip_path, mv), None
    except (ModulePathError, ZipRuleError) as e:
        return None, str(e)


# Each rule a zip or module version can break, as x/mod states it -> as airsync does.
_RULES = {
    "path does not have prefix": "path does not have prefix",
    "file path is not clean": "file path is not clean",
    "malformed file path": "malformed file path",
    "invalid char": "invalid char",
    "go.mod files must have lowercase names": "go.mod files must have lowercase names",
    "go.mod file not in module root directory": "go.mod file not in module root directory",
    "multiple entries for file": "multiple entries for file",
    "is both a file and a directory": "is both a file and a directory",
    "case-insensitive file name collision": "case-insensitive file name collision",
    "missing dot in first path element": "missing dot in first path element",
    "invalid version: should be v0 or v1, not v2": "invalid version: should be v0 or v1, not v2",
    "is not canonical (should be": "not a canonical module version (canonical form",
    "invalid UTF-8": "invalid UTF-8",
}


def _same_rule(go_reason: str, why: str) -> bool:
    """Whether airsync's refusal states every rule x/mod's reason states (quoting aside)."""
    rules = [ours for theirs, ours in _RULES.items() if theirs in go_reason]
    assert rules, f"x/mod's reason {go_reason!r} names no rule this test knows: add it to _RULES"
    return all(rule in why for rule in rules)


def _want_sections(want: bytes) -> dict[str, list[tuple[str, str]]]:
    """The valid/omitted/invalid lists of a check_* case's ``want`` file: (name, reason) pairs."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in want.decode().split("\n"):
        if line.endswith(":") and line[:-1] in ("valid", "omitted", "invalid"):
            current = sections.setdefault(line[:-1], [])
        elif line and current is not None:
            name, _, reason = line.partition(": ")
            current.append((name.removeprefix("$work/"), reason))
    return sections


@_cases
def _cases_zip_txtar(copy: Copy, dump):
    for kind in ("check_zip", "unzip", "create", "create_from_dir", "check_files", "check_dir"):
        for zc in xmod.zip_cases(copy, kind):
            if kind.startswith("create") and zc.name.startswith("exclude_"):
                continue  # what Create leaves out of a zip it makes: airsync makes none
            yield f"zip-{kind}-{zc.name}", zc


def test_zip_txtar(case, tmp_path):
    zc = _given(case)
    files = [(n, d) for n, d in zc.files if n != "want"]
    path, version = zc.keys.get("path", "example.com/m"), zc.keys.get("version", "v1.0.0")
    prefix = f"{path}@{version}/"
    if zc.kind in ("check_zip", "unzip"):
        entries = files  # the names are the zip's own, prefix included
    elif zc.kind == "create_from_dir":
        entries = [(prefix + n, d) for n, d in dict(files).items()]  # a directory holds a name once
    elif zc.kind == "create":
        entries = [(prefix + n, d) for n, d in files]
    else:
        # check_files/check_dir list what Create would leave out; the rest make the zip.
        sections = _want_sections(dict(zc.files)["want"])
        omitted = [n for n, _ in sections.get("omitted", [])]
        kept = [(n, d) for n, d in files if not any(n == o or n.startswith(o + "/") for o in omitted)]
        entries = [(prefix + n, d) for n, d in kept]
    h1, why = _verdict(path, version, _write_zip(tmp_path / "case.zip", entries))

    if zc.kind in ("check_zip", "check_files", "check_dir"):
        invalid = _want_sections(dict(zc.files)["want"]).get("invalid", [])
        assert (why is None) == (not invalid), f"x/mod: invalid {invalid}; airsync: {why}"
        if why is not None:
            # airsync stops at the first problem: it must be one x/mod names, for the same rule.
            entry = why.split(": ", 2)[1]
            reasons = [r for n, r in invalid if entry in (repr(n), repr(prefix + n), json.dumps(prefix + n))]
            assert any(_same_rule(r, why) for r in reasons), f"x/mod: invalid {invalid}; airsync: {why}"
        return
    want_err, want_hash = zc.keys.get("wantErr"), zc.keys.get("hash")
    if want_err:
        assert why is not None, f"airsync took the zip; x/mod: {want_err}"
        assert _same_rule(want_err, why), f"x/mod: {want_err}; airsync: {why}"
    else:
        assert why is None, f"x/mod takes the zip ({want_hash}); airsync: {why}"
        assert h1 == want_hash
        assert dirhash.hash_zip(tmp_path / "case.zip") == want_hash


# files -> airsync's verdict on their zip: the zips hold up to 500 MiB of zeros, so each is made
# and checked once per session, whichever copy of x/mod asks (the copies' tables agree).
_SIZE_LIMIT_VERDICTS: dict[tuple, tuple[str | None, str | None]] = {}


def _size_limit_verdict(files: tuple[tuple[str, int], ...], path: str, version: str, work: Path):
    """airsync's verdict on the zip zip_test.go's TestUnzipSizeLimits writes for these files."""
    key = (files, path, version)
    if key not in _SIZE_LIMIT_VERDICTS:
        zip_path = work / "limits.zip"
        chunk = bytes(1 << 20)
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, size in files:
                info = zipfile.ZipInfo(f"{path}@{version}/{name}")
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w") as w:
                    for _ in range(size // len(chunk)):
                        w.write(chunk)
                    w.write(bytes(size % len(chunk)))
        _SIZE_LIMIT_VERDICTS[key] = _verdict(path, version, zip_path)
        zip_path.unlink()
    return _SIZE_LIMIT_VERDICTS[key]


@_cases
def _cases_zip_size_limits(copy: Copy, dump):
    tables = dump["zip"]["tables"]
    for row in tables["sizeLimitTests"]:
        yield f"sizeLimitTests-{row['desc']}", (row, tables["sizeLimitVersion"])


def test_zip_size_limits(case, tmp_path):
    """TestUnzipSizeLimits: CheckZip of zips at and just over the size limits."""
    row, mv = _given(case)
    files = tuple((f["name"], f["size"]) for f in row["files"])
    _, why = _size_limit_verdict(files, mv["Path"], mv["Version"], tmp_path)
    want = row["wantCheckZipErr"] or row["wantErr"]
    if want:
        assert why is not None and want in why, f"x/mod: {want}; airsync: {why}"
    else:
        assert why is None, f"x/mod takes the zip; airsync: {why}"


@_cases
def _cases_file_path(copy: Copy, dump):
    """Each file name the check_* cases list as valid, or invalid as a malformed file path."""
    for kind in ("check_zip", "check_files", "check_dir"):
        for zc in xmod.zip_cases(copy, kind):
            prefix = f"{zc.keys['path']}@{zc.keys['version']}/" if "path" in zc.keys else ""
            sections = _want_sections(dict(zc.files)["want"])
            seen = set()
            for section in ("valid", "invalid"):
                for name, reason in sections.get(section, []):
                    path_rule = section == "valid" or "malformed file path" in reason
                    if not name.startswith(prefix) or not path_rule:
                        continue
                    name = name.removeprefix(prefix)
                    if (name, section) not in seen:
                        seen.add((name, section))
                        yield f"zip-{kind}-{zc.name}-{section}-{_q(name)}", (name, section == "valid")


def test_file_path(case):
    name, ok = _given(case)
    assert (modzip.file_path_error(name) is None) == ok
