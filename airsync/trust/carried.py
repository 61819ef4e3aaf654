"""The carried checksum database as the go command checks it (pure).

What this is: the rules a set of carried lookups, tree heads and tiles must satisfy for the go
command (golang.org/x/mod/sumdb Client) to verify every module from them alone, in any order of
lookups, whatever head a machine remembers from an earlier carry; and the few transformations
airsync makes to get there.

How the go command reads a carried database: it keeps one *latest* head (remembered across runs
in ``$GOPATH/pkg/sumdb/<name>/latest``). For each lookup answer (record + the signed note of some
head) ``mergeLatest`` opens the note with the key, then ``checkTrees(older, newer)`` recomputes the
older head's tree hash from the *newer* head's tiles (``tree_hash(older.n, reader(newer))``; the
same head's own right-edge tiles when sizes are equal), and ``checkRecord`` proves the record
against its *current latest*, not the answer's own head. So:

* every pair of heads it can hold (the heads of the carried lookups, and the heads a machine may
  remember: every head ever carried) must be provably consistent from the newer one's tiles, and
  each head from its own right-edge tiles (a go command that starts with a remembered head checks
  it against itself: ``mergeLatest`` reads the config back after installing it);
* every record must be provable in every such head at least as new as its own answer's head.

airsync keeps that small by carrying one newest signed head ``L`` and making every lookup answer
carry L's note (``with_head``: the record lines the database returned, unchanged, followed by L's
signed note, which the database itself produced; nothing is re-signed, and this is only done after
the record is proved included in L); then the records need tiles in L only, and the remembered
heads need their own right-edge tiles and L's tiles around their right edges. Earlier heads' signed notes are carried beside the
database as ``airsync/heads/<size>`` (``HEADS_DIR``) so that an inside check and a later border run
know them; the verifier key the border used is carried as ``airsync/key``. The go command asks only
for ``supported``, ``lookup/...`` and ``tile/...``, so these files never reach it.

``check_database`` runs the go command's checks over such a set of files, from its tiles alone,
and names each problem by path: a note another key signed, a record its head does not include,
two heads that are not consistent (a forked log), a tile that is missing.

Everything here is pure: files come in as bytes and through a ``read_tile`` callable.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from airsync.errors import AirsyncError
from airsync.trust import note, tlog

TILE_HEIGHT = 8
HEADS_DIR = "airsync/heads"
KEY_FILE = "airsync/key"
SUPPORTED = "supported"

__all__ = [
    "TILE_HEIGHT",
    "HEADS_DIR",
    "KEY_FILE",
    "SUPPORTED",
    "Head",
    "MissingTile",
    "Forked",
    "NotIncluded",
    "open_head",
    "head_path",
    "parse_head_path",
    "split_lookup",
    "with_head",
    "tile_reader",
    "check_consistent",
    "check_included",
    "check_database",
    "compare_lookups",
    "format_heads_file",
    "parse_heads_file",
]


class MissingTile(AirsyncError):
    """A tile a proof needs is not there."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path}: missing")


class Forked(AirsyncError):
    """Two signed heads of one database that no single log can have produced."""


class NotIncluded(AirsyncError):
    """A record that its tree does not hold (a tampered answer)."""


@dataclass(frozen=True)
class Head:
    """A tree head and the database's signed note for it."""

    tree: tlog.Tree
    note: bytes

    @property
    def n(self) -> int:
        return self.tree.n

    def describe(self) -> str:
        return f"tree {self.tree.n} ({tlog.hash_string(self.tree.hash)})"


def open_head(msg: bytes, verifier: note.Verifier) -> Head:
    """A signed tree note, opened with the database's key (raises note.NoteError, tlog.FormatError)."""
    return Head(tlog.parse_tree(note.open_note(msg, [verifier]).text), bytes(msg))


def head_path(n: int) -> str:
    return f"{HEADS_DIR}/{n}"


def parse_head_path(rel: str) -> int | None:
    """The tree size a carried head file is named by, or None for any other path."""
    prefix = HEADS_DIR + "/"
    if not rel.startswith(prefix):
        return None
    name = rel[len(prefix) :]
    return int(name) if name.isdigit() and (name == "0" or not name.startswith("0")) else None


def split_lookup(body: bytes) -> tuple[int, bytes, bytes, bytes]:
    """A lookup answer's (record id, record text, record part, signed note).

    The record part is the answer's bytes before the note, exactly as the database wrote them
    (id line, record lines, blank line), so ``with_head`` never reformats what the go client parses.
    """
    rid, text, rest = tlog.parse_record(body)
    return rid, text, bytes(body[: len(body) - len(rest)]), rest


def with_head(body: bytes, head: Head) -> bytes:
    """The lookup answer ``body`` carrying ``head``'s signed note instead of its own.

    Only for a record already proved included in ``head`` (the caller's duty): the result is
    then exactly what the database would answer for this record at that head.
    """
    _, _, record, _ = split_lookup(body)
    return record + head.note


def tile_reader(tree: tlog.Tree, read_tile: Callable[[str], bytes | None]) -> Callable[[list[int]], list[bytes]]:
    """A hash reader for ``tree`` over stored tiles (``read_tile(path)`` gives bytes or None).

    The tiles it reads are exactly those the go command's client reads for the same hashes
    (``tlog.tile_hash_reader`` ports Go's); a partial tile that is missing is cut from the full
    one when that is there, as the client does.
    """

    def read_tiles(tiles: list[tlog.Tile]) -> list[bytes]:
        out = []
        for t in tiles:
            data = read_tile(t.path())
            if data is None and t.w != 1 << t.h:
                full = read_tile(tlog.Tile(t.h, t.l, t.n, 1 << t.h).path())
                data = None if full is None else full[: t.w * tlog.HASH_SIZE]
            if data is None:
                raise MissingTile(t.path())
            out.append(data)
        return out

    return tlog.tile_hash_reader(tree, TILE_HEIGHT, read_tiles)


def check_consistent(older: Head | tlog.Tree, newer: Head | tlog.Tree, read_tile: Callable[[str], bytes | None]) -> None:
    """The go command's checkTrees: ``older``'s hash recomputed from ``newer``'s tiles.

    Raises MissingTile, or Forked when the tiles tie to ``newer`` but give another hash for
    ``older`` (or do not tie to ``newer`` at all: one of the two heads is not from this log).
    """
    a = older.tree if isinstance(older, Head) else older
    b = newer.tree if isinstance(newer, Head) else newer
    if a.n > b.n:
        a, b = b, a
    if a.n == b.n and a.hash != b.hash:
        raise Forked(f"tree {a.n} signed with two hashes ({tlog.hash_string(a.hash)}, {tlog.hash_string(b.hash)})")
    try:
        h = tlog.tree_hash(a.n, tile_reader(b, read_tile))
    except tlog.TileError as e:
        raise Forked(f"the tiles of tree {b.n} do not match it: {e}") from None
    if h != a.hash:
        raise Forked(
            f"tree {a.n} ({tlog.hash_string(a.hash)}) is not a prefix of tree {b.n}: its tiles give "
            f"{tlog.hash_string(h)} for size {a.n}"
        )


def check_included(records: Iterable[tuple[int, bytes]], tree: tlog.Tree,
                   read_tile: Callable[[str], bytes | None]) -> None:
    """The go command's checkRecord for each (id, text), in one pass over the tiles.

    Raises NotIncluded (naming the record id), MissingTile, or tlog.TileError for tiles that
    do not tie to ``tree``.
    """
    records = list(records)
    for rid, _ in records:
        if not 0 <= rid < tree.n:
            raise NotIncluded(f"record {rid} is not in the tree of size {tree.n}")
    if not records:
        return
    hashes = tile_reader(tree, read_tile)([tlog.stored_hash_index(0, rid) for rid, _ in records])
    for (rid, text), h in zip(records, hashes, strict=True):
        if h != tlog.record_hash(text):
            raise NotIncluded(f"record {rid} does not match tree {tree.n} (tampered answer)")


# --- the go command's checks over a carried database --------------------------------------------


def _key_name(verifier: note.Verifier) -> str:
    return f"{verifier.name}+{verifier.key_hash:08x}"


def check_database(
    lookups: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    read_tile: Callable[[str], bytes | None],
    verifier: note.Verifier,
    supported: bool = True,
) -> list[tuple[str, str]]:
    """Every problem the go command would meet reading these files, as (path, problem).

    ``lookups``: path (``lookup/...``) -> answer; ``head_files``: path (``airsync/heads/N``) ->
    signed note; ``read_tile(path)`` gives a tile's bytes or None; paths are relative to the
    database's directory. Checks, from the carried tiles alone: every note opens with
    ``verifier``; every pair of heads is consistent; every record is included in its own head and
    in every head at least as new (the go command proves records against its latest head).
    """
    problems: list[tuple[str, str]] = []
    key = _key_name(verifier)
    heads: dict[tuple[int, bytes], Head] = {}
    where: dict[tuple[int, bytes], str] = {}  # a path that carries each head, for messages
    records: list[tuple[str, int, bytes, tlog.Tree]] = []

    def add_head(path: str, msg: bytes) -> Head | None:
        try:
            head = open_head(msg, verifier)
        except note.NoteError as e:
            problems.append((path, f"tree note not signed by the checksum database key {key} ({e})"))
            return None
        except tlog.FormatError as e:
            problems.append((path, f"malformed tree note: {e}"))
            return None
        k = (head.n, head.tree.hash)
        heads.setdefault(k, head)
        where.setdefault(k, path)
        return head

    for path, body in sorted(lookups.items()):
        try:
            rid, text, _, rest = split_lookup(body)
        except tlog.FormatError as e:
            problems.append((path, f"malformed lookup answer: {e}"))
            continue
        head = add_head(path, rest)
        if head is not None:
            records.append((path, rid, text, head.tree))
    for path, msg in sorted(head_files.items()):
        head = add_head(path, msg)
        if head is not None and parse_head_path(path) != head.n:
            problems.append((path, f"carries tree {head.n}, not the tree its name says"))
    if records and not supported:
        problems.append((SUPPORTED, "missing: without it the go command does not use the carried database"))

    # Pairs: same size with two hashes, then older against newer from the newer one's tiles; and
    # each head against itself, from its own right edge, as the go command does whenever it starts
    # with a remembered head (mergeLatest reads the config back: checkTrees(latest, latest)).
    ordered = sorted(heads.values(), key=lambda h: (h.n, h.tree.hash))
    missing: dict[str, str] = {}
    for i, a in enumerate(ordered):
        for b in ordered[i:]:
            try:
                check_consistent(a, b, read_tile)
            except MissingTile as e:
                what = f"checking tree {a.n}" + (f" against tree {b.n}" if b is not a else "")
                missing.setdefault(e.path, what)
            except Forked as e:
                problems.append((
                    where[(b.n, b.tree.hash)],
                    f"SECURITY: forked checksum database: {e} (heads from {where[(a.n, a.tree.hash)]} "
                    f"and this file)",
                ))

    # Records: in their own head and every newer one, one pass over the tiles per head.
    for head in ordered:
        batch = [(path, rid, text) for path, rid, text, own in records if own.n <= head.n]
        if not batch:
            continue
        try:
            check_included([(rid, text) for _, rid, text in batch], head.tree, read_tile)
            continue
        except (MissingTile, NotIncluded, tlog.TileError):
            pass  # find out which records, one at a time
        for path, rid, text in batch:
            try:
                check_included([(rid, text)], head.tree, read_tile)
            except MissingTile as e:
                missing.setdefault(e.path, f"proving {path} in tree {head.n}")
            except NotIncluded as e:
                problems.append((path, f"{e}"))
            except tlog.TileError as e:
                problems.append((path, f"cannot prove its record in tree {head.n}: {e}"))
    for path, why in missing.items():
        problems.append((path, f"missing tile: the go command needs it ({why})"))
    return problems


def compare_lookups(new: bytes, old: bytes) -> str:
    """How a lookup answer from a medium relates to the one a mirror holds for the same path:
    ``"newer"`` (same record, newer head: it replaces), ``"older"`` (same record, older or the same
    head: the mirror keeps its own), or why the two cannot both be true (tamper, fork).

    Signatures are not checked here; ``check_database`` checks whatever the mirror ends with.
    """
    try:
        rid_new, text_new, _, note_new = split_lookup(new)
        rid_old, text_old, _, note_old = split_lookup(old)
        tree_new, tree_old = tlog.parse_tree(note_new), tlog.parse_tree(note_old)
    except tlog.FormatError as e:
        return f"malformed checksum database lookup answer: {e}"
    if (rid_new, text_new) != (rid_old, text_old):
        return "its record differs from the one the inside mirror holds (the database never changes a record: tamper?)"
    if tree_new.n == tree_old.n and tree_new.hash != tree_old.hash:
        return f"SECURITY: tree {tree_new.n} with another hash than the inside mirror's (a forked log?)"
    return "newer" if tree_new.n > tree_old.n else "older"


# --- a small file of heads, from a machine or a mirror, for the border --------------------------

_HEADS_MAGIC = "# airsync sumdb-heads v1"


def format_heads_file(heads: Iterable[tuple[str, Head]], where: str) -> str:
    """Heads as a small text file: one ``<database> <size> <base64 signed note>`` line each.

    The signed note travels whole, so the border checks the database's own signature before it
    proves anything about the head.
    """
    lines = [f"{_HEADS_MAGIC}: checksum-database heads known to {where}",
             "# give it to the border host: airsync mirror --prove-heads FILE"]
    for name, head in sorted(heads, key=lambda x: (x[0], x[1].n)):
        lines.append(f"# {name}: {head.describe()}")
        lines.append(f"{name} {head.n} {base64.b64encode(head.note).decode('ascii')}")
    return "\n".join(lines) + "\n"


def parse_heads_file(text: str) -> list[tuple[str, int, bytes]]:
    """(database name, tree size, signed note) for each head line; raises AirsyncError naming the line."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            if len(fields) != 3 or not fields[1].isdigit():
                raise ValueError
            msg = base64.b64decode(fields[2], validate=True)
        except (ValueError, binascii.Error):
            raise AirsyncError(f"line {i}: want '<database> <size> <base64 signed note>'") from None
        out.append((fields[0], int(fields[1]), msg))
    return out
