"""The transparency log behind the Go checksum database: a Python port of golang.org/x/mod/sumdb/tlog.

The log is an append-only list of records hashed into an RFC 6962 Merkle tree (a record's hash is
``sha256(0x00 ‖ data)``, an interior node's ``sha256(0x01 ‖ left ‖ right)``). A tree of ``n`` records
is named by its size and root hash (a ``Tree``); inclusion proofs show that a record is in a tree,
consistency proofs that a bigger tree extends a smaller one. Every hash the log ever computes — the
node at ``level`` covering records ``[n·2^level, (n+1)·2^level)`` — is written once, right after the
record that completes it, so hashes live in one dense sequence numbered by *stored-hash indexes*
(``stored_hash_index``; Crosby and Wallach's ordering). A server publishes the hashes in *tiles*: a
tile of height H at tile level L holds up to 2^H consecutive hashes of tree level H·L, and the
hashes above them inside the tile are recomputed from those. Tiles at the right edge of a tree are
partial (``.p/W``). The go command fetches tiles and accepts their hashes only after tying them to a
signed tree hash (``tile_hash_reader``).

Everything here is pure computation; hashes are 32-byte ``bytes``, and a *hash reader* is any
callable taking a list of stored-hash indexes and returning the hashes at those indexes. Behaviour
follows the Go package (tlog.go, tile.go, note.go); errors Go returns are raised as ``TlogError``
subclasses, and Go's internal "bad math" panics as ``RuntimeError``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from airsync.errors import AirsyncError

__all__ = [
    "HASH_SIZE",
    "EMPTY_HASH",
    "TlogError",
    "ProofError",
    "TileError",
    "FormatError",
    "HashReader",
    "hash_string",
    "parse_hash",
    "record_hash",
    "node_hash",
    "stored_hash_index",
    "split_stored_hash_index",
    "stored_hash_count",
    "stored_hashes",
    "stored_hashes_for_record_hash",
    "tree_hash",
    "prove_record",
    "check_record",
    "prove_tree",
    "check_tree",
    "Tile",
    "parse_tile_path",
    "tile_for_index",
    "hash_from_tile",
    "new_tiles",
    "read_tile_data",
    "tile_hash_reader",
    "Tree",
    "format_tree",
    "parse_tree",
    "format_record",
    "format_record_id",
    "parse_record",
    "MemoryLog",
]

HASH_SIZE = 32

# The root hash of the empty tree (RFC 6962 §2.1): SHA-256 of the empty string.
EMPTY_HASH = hashlib.sha256(b"").digest()

_INT64_MAX = (1 << 63) - 1

HashReader = Callable[[list[int]], Sequence[bytes]]


class TlogError(AirsyncError):
    """A transparency-log operation failed (bad input, short hash reader answer)."""


class ProofError(TlogError):
    """An inclusion or consistency proof does not verify, or its inputs are invalid."""


class TileError(TlogError):
    """A malformed tile path, an unusable tile, or tile data that does not match the tree."""


class FormatError(TlogError, ValueError):
    """Malformed tree note text or record data."""


# --- hashes -------------------------------------------------------------------------------------


def hash_string(h: bytes) -> str:
    """The standard base64 form of a hash (Go's Hash.String)."""
    return base64.b64encode(h).decode("ascii")


_B64_STD = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _go_b64decode(s: bytes) -> bytes | None:
    """Go's base64.StdEncoding.DecodeString: padded standard alphabet, CR and LF ignored."""
    s = s.replace(b"\r", b"").replace(b"\n", b"")
    if not _B64_STD.fullmatch(s):
        return None
    return base64.b64decode(s)


def parse_hash(s: str | bytes) -> bytes:
    """Parse the base64 form of a hash (Go's ParseHash)."""
    raw = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
    h = _go_b64decode(raw)
    if h is None or len(h) != HASH_SIZE:
        raise FormatError("malformed hash")
    return h


def _check_hash(h: object, what: str) -> bytes:
    if not isinstance(h, (bytes, bytearray, memoryview)) or len(h) != HASH_SIZE:
        raise ValueError(f"tlog: {what} is not a {HASH_SIZE}-byte hash")
    return bytes(h)


def record_hash(data: bytes) -> bytes:
    """The content hash of a record: SHA-256(0x00 ‖ data) (RFC 6962 §2.1)."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right) (RFC 6962 §2.1)."""
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError(f"tlog: node_hash needs two {HASH_SIZE}-byte hashes")
    return hashlib.sha256(b"\x01" + bytes(left) + bytes(right)).digest()


def _maxpow2(n: int) -> tuple[int, int]:
    """(k, l): k = 2**l is the largest power of two smaller than n (1, 0 when n <= 2)."""
    level = max(0, (n - 1).bit_length() - 1)
    return 1 << level, level


def _trailing_zeros(x: int) -> int:
    """Go's bits.TrailingZeros64 for 0 < x."""
    return (x & -x).bit_length() - 1


def _read(read_hashes: HashReader, indexes: list[int]) -> list[bytes]:
    """Call a hash reader and check that it answered one hash per index."""
    hashes = list(read_hashes(indexes))
    if len(hashes) != len(indexes):
        raise TlogError(f"tlog: ReadHashes({len(indexes)} indexes) = {len(hashes)} hashes")
    return [_check_hash(h, "ReadHashes result") for h in hashes]


# --- stored hash indexes ------------------------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Where the hash of node (level, n) sits in the dense stored-hash sequence."""
    if level < 0 or n < 0:
        raise ValueError(f"tlog: invalid stored hash coordinates ({level}, {n})")
    # Level L's n'th hash follows level L+1's (2n+1)'th; go down to level 0 ...
    for _ in range(level):
        n = 2 * n + 1
    # ... where record n's leaf hash is at n + n/2 + n/4 + ...
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The inverse of stored_hash_index: (level, n) for a stored-hash index."""
    if index < 0:
        raise ValueError(f"tlog: invalid stored hash index {index}")
    # stored_hash_index(0, n) < 2n, so the record that wrote the hash is in [index/2, index/2+log index].
    n = index // 2
    index_n = stored_hash_index(0, n)
    if index_n > index:
        raise RuntimeError("tlog: bad math in split_stored_hash_index")
    while True:
        # Record n adds 1 + trailing_zeros(n+1) hashes.
        x = index_n + 1 + _trailing_zeros(n + 1)
        if x > index:
            break
        n += 1
        index_n = x
    # The hash was written with record n: it is one of (0, n), (1, n/2), (2, n/4), ...
    level = index - index_n
    return level, n >> level


def stored_hash_count(n: int) -> int:
    """How many hashes a log of n records has stored."""
    if n < 0:
        raise ValueError(f"tlog: invalid tree size {n}")
    if n == 0:
        return 0
    count = stored_hash_index(0, n - 1) + 1  # up to the last leaf hash
    i = n - 1
    while i & 1:  # plus the subtrees that leaf completes
        count += 1
        i >>= 1
    return count


def stored_hashes(n: int, data: bytes, read_hashes: HashReader) -> list[bytes]:
    """The hashes to store, from stored_hash_index(0, n) on, when record n with ``data`` is logged."""
    return stored_hashes_for_record_hash(n, record_hash(data), read_hashes)


def stored_hashes_for_record_hash(n: int, h: bytes, read_hashes: HashReader) -> list[bytes]:
    """Like stored_hashes, given the record hash instead of the record data."""
    if n < 0:
        raise ValueError(f"tlog: invalid record number {n}")
    h = _check_hash(h, "record hash")
    hashes = [h]
    # Each trailing 1 bit of n completes a subtree, whose left half is an earlier stored hash.
    m = _trailing_zeros(n + 1)
    indexes = [stored_hash_index(i, (n >> i) - 1) for i in reversed(range(m))]  # sorted
    old = _read(read_hashes, indexes)
    for i in range(m):
        h = node_hash(old[m - 1 - i], h)
        hashes.append(h)
    return hashes


# --- tree hashes and proofs ---------------------------------------------------------------------


def _sub_tree_index(lo: int, hi: int, need: list[int]) -> list[int]:
    """Append the stored-hash indexes needed to hash records [lo, hi) (RFC 6962 §2.1)."""
    while lo < hi:
        k, level = _maxpow2(hi - lo + 1)
        if lo & (k - 1):
            raise RuntimeError("tlog: bad math in sub_tree_index")
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def _sub_tree_hash(lo: int, hi: int, hashes: list[bytes], pos: int) -> tuple[bytes, int]:
    """Hash records [lo, hi) from the hashes _sub_tree_index asked for, starting at hashes[pos].

    Returns the hash and the position of the first unused hash.
    """
    # The range splits into maximal complete subtrees, left to right; each is one stored hash,
    # and the tree hash folds them together from the right.
    num_tree = 0
    while lo < hi:
        k, _ = _maxpow2(hi - lo + 1)
        if lo & (k - 1):
            raise RuntimeError("tlog: bad math in sub_tree_hash")
        num_tree += 1
        lo += k
    if num_tree == 0 or len(hashes) - pos < num_tree:
        raise RuntimeError("tlog: bad index math in sub_tree_hash")
    h = hashes[pos + num_tree - 1]
    for i in range(num_tree - 2, -1, -1):
        h = node_hash(hashes[pos + i], h)
    return h, pos + num_tree


def tree_hash(n: int, read_hashes: HashReader) -> bytes:
    """The root hash of the tree of the first n records, from at most 1 + log₂ n stored hashes."""
    if n < 0:
        raise ValueError(f"tlog: invalid tree size {n}")
    if n == 0:
        return EMPTY_HASH
    indexes = _sub_tree_index(0, n, [])
    hashes = _read(read_hashes, indexes)
    h, pos = _sub_tree_hash(0, n, hashes, 0)
    if pos != len(hashes):
        raise RuntimeError("tlog: bad index math in tree_hash")
    return h


def _leaf_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    """Append the indexes needed to prove leaf n is in the subtree of records [lo, hi)."""
    if not lo <= n < hi:
        raise RuntimeError("tlog: bad math in leaf_proof_index")
    if lo + 1 == hi:
        return need
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        _leaf_proof_index(lo, lo + k, n, need)
        _sub_tree_index(lo + k, hi, need)
    else:
        _sub_tree_index(lo, lo + k, need)
        _leaf_proof_index(lo + k, hi, n, need)
    return need


def _leaf_proof(lo: int, hi: int, n: int, hashes: list[bytes], pos: int) -> tuple[list[bytes], int]:
    """The audit path for leaf n in records [lo, hi) (RFC 6962 §2.1.1), deepest sibling first."""
    if not lo <= n < hi:
        raise RuntimeError("tlog: bad math in leaf_proof")
    if lo + 1 == hi:
        # The leaf itself: the verifier knows its hash.
        return [], pos
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        proof, pos = _leaf_proof(lo, lo + k, n, hashes, pos)
        sibling, pos = _sub_tree_hash(lo + k, hi, hashes, pos)
    else:
        sibling, pos = _sub_tree_hash(lo, lo + k, hashes, pos)
        proof, pos = _leaf_proof(lo + k, hi, n, hashes, pos)
    proof.append(sibling)
    return proof, pos


def prove_record(t: int, n: int, read_hashes: HashReader) -> list[bytes]:
    """The proof (RFC 6962 "Merkle audit path") that the tree of size t contains record n."""
    if t < 0 or n < 0 or n >= t:
        raise ProofError("tlog: invalid inputs in ProveRecord")
    indexes = _leaf_proof_index(0, t, n, [])
    if not indexes:
        return []
    hashes = _read(read_hashes, indexes)
    proof, pos = _leaf_proof(0, t, n, hashes, 0)
    if pos != len(hashes):
        raise RuntimeError("tlog: bad index math in prove_record")
    return proof


def _proof_hashes(proof: Sequence[bytes]) -> list[bytes] | None:
    out = []
    for h in proof:
        if not isinstance(h, (bytes, bytearray, memoryview)) or len(h) != HASH_SIZE:
            return None
        out.append(bytes(h))
    return out


def check_record(proof: Sequence[bytes], t: int, th: bytes, n: int, h: bytes) -> None:
    """Check that ``proof`` shows the tree of size t with hash th has record n with hash h.

    Raises ProofError if it does not.
    """
    if t < 0 or n < 0 or n >= t:
        raise ProofError("tlog: invalid inputs in CheckRecord")
    p = _proof_hashes(proof)
    if p is None or len(h) != HASH_SIZE:
        raise ProofError("invalid transparency proof")
    th2 = _run_record_proof(p, 0, t, n, bytes(h))
    if th2 is None or th2 != th:
        raise ProofError("invalid transparency proof")


def _run_record_proof(p: list[bytes], lo: int, hi: int, n: int, leaf: bytes) -> bytes | None:
    """The hash of records [lo, hi) implied by audit path p for leaf n; None if p has the wrong length."""
    if not lo <= n < hi:
        raise RuntimeError("tlog: bad math in run_record_proof")
    if lo + 1 == hi:
        # At the leaf the proof must be used up.
        return leaf if not p else None
    if not p:
        return None
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        th = _run_record_proof(p[:-1], lo, lo + k, n, leaf)
        return None if th is None else node_hash(th, p[-1])
    th = _run_record_proof(p[:-1], lo + k, hi, n, leaf)
    return None if th is None else node_hash(p[-1], th)


def _tree_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    """Append the indexes needed for the consistency sub-proof of records [lo, hi) and old size n."""
    if not lo < n <= hi:
        raise RuntimeError("tlog: bad math in tree_proof_index")
    if n == hi:
        if lo == 0:
            return need
        return _sub_tree_index(lo, hi, need)
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        _tree_proof_index(lo, lo + k, n, need)
        _sub_tree_index(lo + k, hi, need)
    else:
        _sub_tree_index(lo, lo + k, need)
        _tree_proof_index(lo + k, hi, n, need)
    return need


def _tree_proof(lo: int, hi: int, n: int, hashes: list[bytes], pos: int) -> tuple[list[bytes], int]:
    """The consistency sub-proof for records [lo, hi) and old size n (RFC 6962 §2.1.2)."""
    if not lo < n <= hi:
        raise RuntimeError("tlog: bad math in tree_proof")
    if n == hi:
        if lo == 0:
            # Exactly the old tree: the verifier knows its hash.
            return [], pos
        h, pos = _sub_tree_hash(lo, hi, hashes, pos)
        return [h], pos
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        proof, pos = _tree_proof(lo, lo + k, n, hashes, pos)
        sibling, pos = _sub_tree_hash(lo + k, hi, hashes, pos)
    else:
        sibling, pos = _sub_tree_hash(lo, lo + k, hashes, pos)
        proof, pos = _tree_proof(lo + k, hi, n, hashes, pos)
    proof.append(sibling)
    return proof, pos


def prove_tree(t: int, n: int, read_hashes: HashReader) -> list[bytes]:
    """The proof (RFC 6962 "Merkle consistency proof") that the tree of size t extends that of size n."""
    if t < 1 or n < 1 or n > t:
        raise ProofError("tlog: invalid inputs in ProveTree")
    indexes = _tree_proof_index(0, t, n, [])
    if not indexes:
        return []
    hashes = _read(read_hashes, indexes)
    proof, pos = _tree_proof(0, t, n, hashes, 0)
    if pos != len(hashes):
        raise RuntimeError("tlog: bad index math in prove_tree")
    return proof


def check_tree(proof: Sequence[bytes], t: int, th: bytes, n: int, h: bytes) -> None:
    """Check that ``proof`` shows the tree of size t with hash th extends the tree of size n with hash h.

    Raises ProofError if it does not.
    """
    if t < 1 or n < 1 or n > t:
        raise ProofError("tlog: invalid inputs in CheckTree")
    p = _proof_hashes(proof)
    if p is None or len(h) != HASH_SIZE:
        raise ProofError("invalid transparency proof")
    got = _run_tree_proof(p, 0, t, n, bytes(h))
    if got is None or got[0] != h or got[1] != th:
        raise ProofError("invalid transparency proof")


def _run_tree_proof(p: list[bytes], lo: int, hi: int, n: int, old: bytes) -> tuple[bytes, bytes] | None:
    """The (old tree, new tree) hashes of records [lo, hi) implied by sub-proof p; None if malformed."""
    if not lo < n <= hi:
        raise RuntimeError("tlog: bad math in run_tree_proof")
    if n == hi:
        if lo == 0:
            return (old, old) if not p else None
        return (p[0], p[0]) if len(p) == 1 else None
    if not p:
        return None
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        sub = _run_tree_proof(p[:-1], lo, lo + k, n, old)
        if sub is None:
            return None
        return sub[0], node_hash(sub[1], p[-1])
    sub = _run_tree_proof(p[:-1], lo + k, hi, n, old)
    if sub is None:
        return None
    return node_hash(p[-1], sub[0]), node_hash(p[-1], sub[1])


# --- tiles --------------------------------------------------------------------------------------

# N is written three decimal digits per path element, so no directory has more than 3000 entries.
_PATH_BASE = 1000


@dataclass(frozen=True)
class Tile:
    """A tile: W consecutive hashes of tree level h·l, starting at hash n·2^h.

    A complete tile has w == 2**h; a partial one fewer. Level -1 holds record data, not hashes.
    Valid tiles have 1 <= h <= 30, -1 <= l <= 63, 0 <= n, 1 <= w <= 2**h.
    """

    h: int  # height
    l: int  # noqa: E741 - level in the tiling (Go's Tile.L)
    n: int  # number within the level
    w: int  # width

    def path(self) -> str:
        """The tile coordinate path, e.g. tile/3/4/x001/x234/067.p/1 (Go's Tile.Path)."""
        n = self.n
        n_str = f"{n % _PATH_BASE:03d}"
        while n >= _PATH_BASE:
            n //= _PATH_BASE
            n_str = f"x{n % _PATH_BASE:03d}/{n_str}"
        p_str = f".p/{self.w}" if self.w != 1 << self.h else ""
        level = "data" if self.l == -1 else str(self.l)
        return f"tile/{self.h}/{level}/{n_str}{p_str}"


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _go_atoi(s: str) -> int | None:
    """Go's strconv.Atoi/ParseInt(s, 10, 64): optional sign, ASCII digits, int64 range; else None."""
    if not _GO_INT.fullmatch(s):
        return None
    v = int(s)
    if not -_INT64_MAX - 1 <= v <= _INT64_MAX:
        return None
    return v


def parse_tile_path(path: str) -> Tile:
    """Parse a tile coordinate path; only the canonical form Tile.path() writes is accepted."""
    bad = TileError(f"malformed tile path {path!r}")
    f = path.split("/")
    if len(f) < 4 or f[0] != "tile":
        raise bad
    h = _go_atoi(f[1])
    is_data = f[2] == "data"
    level = 0 if is_data else _go_atoi(f[2])
    if h is None or level is None or h < 1 or level < 0 or h > 30:
        raise bad
    w = 1 << h
    if f[-2].endswith(".p"):
        ww = _go_atoi(f[-1])
        if ww is None or ww <= 0 or ww >= w:
            raise bad
        w = ww
        f[-2] = f[-2][: -len(".p")]
        f = f[:-1]
    n = 0
    for s in f[3:]:
        nn = _go_atoi(s.removeprefix("x"))
        if nn is None or nn < 0 or nn >= _PATH_BASE:
            raise bad
        n = n * _PATH_BASE + nn
    if n > _INT64_MAX:  # Go's int64 N would overflow and fail the round trip below
        raise bad
    t = Tile(h, -1 if is_data else level, n, w)
    if path != t.path():
        raise bad
    return t


def _tile_for_index(h: int, index: int) -> tuple[Tile, int, int]:
    """The least-width tile of height h holding stored hash ``index``, and the byte range
    [start, end) of its data whose tile-internal hash is that stored hash."""
    level, n = split_stored_hash_index(index)
    tl = level // h
    level -= tl * h  # level within the tile
    tn = (n << level) >> h
    n -= (tn << h) >> level  # n within the tile, at that level
    tw = (n + 1) << level
    return Tile(h, tl, tn, tw), (n << level) * HASH_SIZE, ((n + 1) << level) * HASH_SIZE


def tile_for_index(h: int, index: int) -> Tile:
    """The tile of height h >= 1 and least width that holds stored hash ``index``."""
    if h <= 0:
        raise ValueError(f"tile_for_index: invalid height {h}")
    return _tile_for_index(h, index)[0]


def _tile_hash(data: bytes) -> bytes:
    """The subtree hash over the 2^k hashes in data."""
    if not data:
        raise RuntimeError("tlog: bad math in tile_hash")
    if len(data) == HASH_SIZE:
        return bytes(data)
    half = len(data) // 2
    return node_hash(_tile_hash(data[:half]), _tile_hash(data[half:]))


def hash_from_tile(t: Tile, data: bytes, index: int) -> bytes:
    """The stored hash at ``index``, from tile t's data (t must be tile_for_index(t.h, index) or wider)."""
    if not (1 <= t.h <= 30 and 0 <= t.l < 64 and 1 <= t.w <= 1 << t.h):
        raise TileError(f"invalid tile {t.path()}")
    if len(data) < t.w * HASH_SIZE:
        raise TileError(f"data len {len(data)} too short for tile {t.path()}")
    t1, start, end = _tile_for_index(t.h, index)
    if t.l != t1.l or t.n != t1.n or t.w < t1.w:
        raise TileError(f"index {index} is in {t1.path()} not {t.path()}")
    return _tile_hash(bytes(data[start:end]))


def new_tiles(h: int, old_tree_size: int, new_tree_size: int) -> list[Tile]:
    """The tiles of height h to publish when the tree grows from old_tree_size to new_tree_size."""
    if h <= 0:
        raise ValueError(f"new_tiles: invalid height {h}")
    tiles = []
    level = 0
    while new_tree_size >> (h * level) > 0:
        old_n = old_tree_size >> (h * level)
        new_n = new_tree_size >> (h * level)
        if old_n != new_n:
            for n in range(old_n >> h, new_n >> h):
                tiles.append(Tile(h, level, n, 1 << h))
            n = new_n >> h
            w = new_n - (n << h)
            if w > 0:
                tiles.append(Tile(h, level, n, w))
        level += 1
    return tiles


def read_tile_data(t: Tile, read_hashes: HashReader) -> bytes:
    """The data of hash tile t: its hashes, read through read_hashes, concatenated."""
    size = t.w or 1 << t.h
    start = t.n << t.h
    indexes = [stored_hash_index(t.h * t.l, start + i) for i in range(size)]
    return b"".join(_read(read_hashes, indexes))


def _tile_parent(t: Tile, k: int, n: int) -> Tile | None:
    """t's k'th tile ancestor among the tiles of a tree of size n (None if there is none)."""
    level = t.l + k
    tn = t.n >> (k * t.h)
    w = 1 << t.h
    limit = n >> (level * t.h)  # hashes at this tree level
    if (tn << t.h) + w >= limit:
        if tn << t.h >= limit:
            return None
        w = limit - (tn << t.h)
    return Tile(t.h, level, tn, w)


@dataclass(frozen=True)
class _TileHashReader:
    tree: Tree
    height: int
    read_tiles: Callable[[list[Tile]], Sequence[bytes]]
    save_tiles: Callable[[list[Tile], list[bytes]], None] | None

    def __call__(self, indexes: list[int]) -> list[bytes]:
        return self.read_hashes(indexes)

    def read_hashes(self, indexes: list[int]) -> list[bytes]:
        h, tree_n = self.height, self.tree.n
        tile_order: dict[Tile, int] = {}
        tiles: list[Tile] = []

        # The tiles holding the hashes that make up the tree hash: fetched first,
        # they are authenticated together by recomputing the tree hash.
        stx = _sub_tree_index(0, tree_n, [])
        stx_tile_order = []
        for x in stx:
            tile = _tile_parent(_tile_for_index(h, x)[0], 0, tree_n)
            if tile is None:
                raise RuntimeError(f"tlog: bad math in tile_hash_reader {tree_n} {x}")
            if tile not in tile_order:
                tile_order[tile] = len(tiles)
                tiles.append(tile)
            stx_tile_order.append(tile_order[tile])
        num_stx_tiles = len(tiles)

        # The tiles holding the requested hashes, each after the ancestors needed to authenticate it.
        index_tile_order = []
        limit = stored_hash_index(0, tree_n)
        for x in indexes:
            if x < 0 or x >= limit:
                raise TileError("indexes not in tree")
            tile = _tile_for_index(h, x)[0]
            # Walk up to the nearest ancestor already planned (authenticated before its children) ...
            k = 0
            while True:
                p = _tile_parent(tile, k, tree_n)
                if p is None:
                    raise RuntimeError(f"tlog: bad math in tile_hash_reader: {tree_n} {x} lost tile")
                if p in tile_order:
                    if k == 0:
                        index_tile_order.append(tile_order[p])
                    break
                k += 1
            # ... then back down, planning each child after its parent; ends at this index's tile.
            for k in range(k - 1, -1, -1):
                p = _tile_parent(tile, k, tree_n)
                if p is None or p.w != 1 << p.h:
                    # Only full tiles have parents, and this one has a parent.
                    raise RuntimeError(f"tlog: bad math in tile_hash_reader: {tree_n} {x} {p}")
                tile_order[p] = len(tiles)
                if k == 0:
                    index_tile_order.append(len(tiles))
                tiles.append(p)

        if not stx:
            # Empty tree and nothing asked (any index was refused above). Go indexes past the end here.
            return []

        data = list(self.read_tiles(list(tiles)))
        if len(data) != len(tiles):
            raise TileError(f"TileReader returned bad result slice (len={len(data)}, want {len(tiles)})")
        for i, tile in enumerate(tiles):
            d = data[i]
            is_bytes = isinstance(d, (bytes, bytearray, memoryview))
            if not is_bytes or len(d) != tile.w * HASH_SIZE:
                got = len(d) if is_bytes else type(d).__name__
                want_len = tile.w * HASH_SIZE
                raise TileError(
                    f"TileReader returned bad result slice ({tile.path()} len={got}, want {want_len})"
                )
            data[i] = bytes(d)

        # Authenticate the tree-hash tiles against the tree hash ...
        last = stx_tile_order[-1]
        th = hash_from_tile(tiles[last], data[last], stx[-1])
        for i in range(len(stx) - 2, -1, -1):
            j = stx_tile_order[i]
            th = node_hash(hash_from_tile(tiles[j], data[j], stx[i]), th)
        if th != self.tree.hash:
            # At least one of them is wrong; there is no telling which.
            paths = " ".join(sorted({tiles[j].path() for j in stx_tile_order}))
            raise TileError(f"downloaded inconsistent tile (one of {paths} does not match tree {tree_n})")

        # ... then every further (full) tile against the hash its parent holds for it. Go starts
        # this loop at len(stx), the number of tree-hash *hashes*, which exceeds the number of
        # tree-hash *tiles* whenever two of those hashes share a tile, and so leaves the first
        # requested tiles unchecked; here every tile after the tree-hash tiles is checked.
        for i in range(num_stx_tiles, len(tiles)):
            tile = tiles[i]
            p = _tile_parent(tile, 1, tree_n)
            j = tile_order.get(p) if p is not None else None
            if j is None:
                raise RuntimeError(f"tlog: bad math in tile_hash_reader {tree_n}: lost parent of {tile}")
            try:
                want = hash_from_tile(p, data[j], stored_hash_index(p.l * p.h, tile.n))
            except TileError as e:
                raise RuntimeError(f"tlog: bad math in tile_hash_reader: lost hash of {tile}: {e}") from e
            if want != _tile_hash(data[i]):
                raise TileError(f"downloaded inconsistent tile {tile.path()} (does not match {p.path()})")

        # Every tile is now tied to the trusted tree hash.
        if self.save_tiles is not None:
            self.save_tiles(list(tiles), list(data))

        hashes = []
        for i, x in enumerate(indexes):
            j = index_tile_order[i]
            try:
                hashes.append(hash_from_tile(tiles[j], data[j], x))
            except TileError as e:
                raise RuntimeError(f"tlog: bad math in tile_hash_reader: lost hash {x}: {e}") from e
        return hashes


def tile_hash_reader(
    tree: Tree,
    tile_height: int,
    read_tiles: Callable[[list[Tile]], Sequence[bytes]],
    save_tiles: Callable[[list[Tile], list[bytes]], None] | None = None,
) -> Callable[[list[int]], list[bytes]]:
    """A hash reader answering from the tiles of ``tree`` (Go's TileHashReader).

    For each call it works out which tiles of height ``tile_height`` hold the hashes asked for and
    the hashes of the tree hash, gets them all in one ``read_tiles(tiles)`` call (which must return
    each tile's data, ``tile.w * HASH_SIZE`` bytes), and checks them: the tree-hash tiles by
    recomputing ``tree.hash``, every other tile against the hash its parent tile holds for it. Only
    then does it pass the tiles to ``save_tiles`` (if given) and return the hashes, which are thus
    proven to be in the tree. A tile that does not check out raises TileError.
    """
    if not 1 <= tile_height <= 30:
        raise ValueError(f"tile_hash_reader: invalid tile height {tile_height}")
    return _TileHashReader(tree, tile_height, read_tiles, save_tiles)


# --- tree notes and records ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A tree: its size (number of records) and root hash. Signed by a checksum database."""

    n: int
    hash: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.n <= _INT64_MAX:
            raise ValueError(f"tlog: invalid tree size {self.n}")
        object.__setattr__(self, "hash", _check_hash(self.hash, "tree hash"))


_TREE_PREFIX = b"go.sum database tree\n"
_CANONICAL_SIZE = re.compile(rb"0|[1-9][0-9]*")


def format_tree(tree: Tree) -> bytes:
    """The tree description a checksum database signs: ``go.sum database tree\\n<N>\\n<hash>\\n``."""
    return b"%s%d\n%s\n" % (_TREE_PREFIX, tree.n, hash_string(tree.hash).encode("ascii"))


def parse_tree(text: bytes) -> Tree:
    """Parse a tree description (lines after the third are ignored, as in Go)."""
    bad = FormatError("malformed tree note")
    text = bytes(text)
    if not text.startswith(_TREE_PREFIX) or text.count(b"\n") < 3 or len(text) > 1_000_000:
        raise bad
    lines = text.split(b"\n", 3)
    if not _CANONICAL_SIZE.fullmatch(lines[1]) or int(lines[1]) > _INT64_MAX:
        raise bad
    h = _go_b64decode(lines[2])
    if h is None or len(h) != HASH_SIZE:
        raise bad
    return Tree(int(lines[1]), h)


def _is_valid_record_text(text: bytes) -> bool:
    """UTF-8, no control characters but newline, ending in a newline, no blank lines."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not s.endswith("\n") or "\n\n" in s:
        return False
    return not any(c < " " and c != "\n" for c in s)


def format_record(id: int, text: bytes) -> bytes:  # noqa: A002 - Go's name
    """A record as a lookup answer starts: the id, the record text, a blank line (Go's FormatRecord)."""
    text = bytes(text)
    if not _is_valid_record_text(text):
        raise FormatError("malformed record data")
    return b"%d\n%s\n" % (id, text)


format_record_id = format_record


def parse_record(msg: bytes) -> tuple[int, bytes, bytes]:
    """Parse the record at the start of msg: (id, record text, rest after the blank line).

    The first line is the decimal id (Go's strconv.ParseInt rules: optional sign, int64); the text
    runs to the first blank line, which it excludes but for its own final newline. In a lookup
    answer ``rest`` is the signed tree note.
    """
    msg = bytes(msg)
    bad = FormatError("malformed record data")
    i = msg.find(b"\n")
    if i < 0:
        raise bad
    id_ = _go_atoi(msg[:i].decode("latin-1"))
    if id_ is None:
        raise bad
    msg = msg[i + 1 :]
    i = msg.find(b"\n\n")
    if i < 0:
        raise bad
    text, rest = msg[: i + 1], msg[i + 2 :]
    if not _is_valid_record_text(text):
        raise bad
    return id_, text, rest


# --- an in-memory log, for tests and test databases ---------------------------------------------


class MemoryLog:
    """A log kept in memory: its records and every stored hash."""

    def __init__(self) -> None:
        self._records: list[bytes] = []
        self._hashes: list[bytes] = []

    def __len__(self) -> int:
        return len(self._records)

    def append(self, record_data: bytes) -> int:
        """Log a record; returns its id (0, 1, ...)."""
        n = len(self._records)
        self._hashes.extend(stored_hashes(n, record_data, self.read_hashes))
        self._records.append(bytes(record_data))
        return n

    def record(self, id: int) -> bytes:  # noqa: A002
        return self._records[id]

    def tree(self) -> Tree:
        n = len(self._records)
        return Tree(n, tree_hash(n, self.read_hashes))

    def read_hashes(self, indexes: list[int]) -> list[bytes]:
        out = []
        for x in indexes:
            if not 0 <= x < len(self._hashes):
                raise TlogError(f"tlog: stored hash {x} not in log of {len(self._records)} records")
            out.append(self._hashes[x])
        return out

    def tile(self, t: Tile) -> bytes:
        """The data of tile t of the current tree: hashes, or for level -1 the records as a
        checksum database serves them (each record's text and a blank line)."""
        if not (1 <= t.h <= 30 and -1 <= t.l < 64 and t.n >= 0 and 1 <= t.w <= 1 << t.h):
            raise TileError(f"invalid tile {t.path()}")
        start = t.n << t.h
        if t.l == -1:
            if start + t.w > len(self._records):
                raise TileError(f"tile {t.path()} is not in a tree of {len(self._records)} records")
            out = []
            for i in range(start, start + t.w):
                # A formatted record without its first (id) line.
                out.append(format_record(i, self._records[i]).split(b"\n", 1)[1])
            return b"".join(out)
        if start + t.w > len(self._records) >> (t.h * t.l):
            raise TileError(f"tile {t.path()} is not in a tree of {len(self._records)} records")
        return read_tile_data(t, self.read_hashes)
