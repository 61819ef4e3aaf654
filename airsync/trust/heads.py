"""The checksum-database heads a machine or a mirror knows, and heads waiting to be proved.

What this is: the I/O behind ``airsync sumdb-heads`` and ``airsync mirror --prove-heads``. A
machine that was online once (an image built with internet, a laptop brought inside) remembers in
``$GOPATH/pkg/sumdb/<name>/latest`` a head no carry ever held; its go command then needs tiles that
prove that head consistent with the mirror's, which only the border can fetch. ``sumdb-heads``
writes the heads a machine (or a mirror: its state database, carried head files and lookup
answers) knows as a small text file (``carried.format_heads_file``: the signed notes, whole);
``queue`` takes such a file at the border, opens each note with the database's key and records the
heads as pending in the mirror's state database. The next mirror job (``Checksums.finish``) proves
them consistent with its newest head (a forked one stops it loudly), stores the tiles that prove
it, and carries them from then on like any head it carried itself.
"""

from __future__ import annotations

from pathlib import Path

from airsync.errors import AirsyncError, ConfigError
from airsync.state import StateDB
from airsync.store import WORKDIR
from airsync.trust import carried, note, ondisk, sumdb, tlog


def _head(msg: bytes) -> carried.Head | None:
    """A head from a signed tree note, not yet checked against any key (None if not one)."""
    try:
        return carried.Head(tlog.parse_tree(msg), bytes(msg))
    except (tlog.FormatError, ValueError):
        return None


def gopath_heads(gopath: Path) -> list[tuple[str, carried.Head]]:
    """The head each database's ``latest`` file under ``$GOPATH/pkg/sumdb`` remembers."""
    base = Path(gopath) / "pkg" / "sumdb"
    out = []
    if base.is_dir():
        for latest in sorted(base.glob("*/latest")):
            data = ondisk.read_small(latest)
            head = _head(data) if data else None
            if head is not None:
                out.append((latest.parent.name, head))
    return out


def mirror_heads(root: Path) -> list[tuple[str, carried.Head]]:
    """Every head a mirror knows: carried (state and head files) and in its lookup answers."""
    found: dict[tuple[str, tlog.Tree], carried.Head] = {}
    dbs = ondisk.mirror_databases(root)
    msgs: list[tuple[str, bytes]] = []
    for name, db in dbs.items():
        msgs += [(name, m) for m in db.head_files().values()]
        for body in db.lookups().values():
            try:
                msgs.append((name, carried.split_lookup(body)[3]))
            except AirsyncError:
                continue
    state_path = Path(root) / WORKDIR / "state.db"
    if state_path.is_file():
        st = StateDB(state_path)
        try:
            for name in dbs:
                msgs += [(name, m) for m in st.sumdb_heads(name)]
        finally:
            st.close()
    for name, msg in msgs:
        head = _head(msg)
        if head is not None:
            found.setdefault((name, head.tree), head)
    return sorted(((name, h) for (name, _), h in found.items()), key=lambda x: (x[0], x[1].n))


def heads_file(heads: list[tuple[str, carried.Head]], where: str) -> str:
    return carried.format_heads_file(heads, where)


def queue(mirror: Path, db: sumdb.SumDB, text: str, source: str = "heads file") -> list[carried.Head]:
    """Record the heads of ``db`` in a heads file as pending in the mirror's state; returns them.

    Each note must open with the database's key: a head that does not is refused here, before
    anything is recorded (ConfigError naming it).
    """
    verifier = note.parse_verifier(db.vkey)
    try:
        lines = carried.parse_heads_file(text)
    except AirsyncError as e:
        raise ConfigError(f"{source}: {e}") from None
    heads = []
    for name, n, msg in lines:
        if name != db.name:
            continue
        try:
            head = carried.open_head(msg, verifier)
        except AirsyncError as e:
            raise ConfigError(f"{source}: the head of tree {n} does not open with the key of {db.name}: {e}") from None
        if head.n != n:
            raise ConfigError(f"{source}: the line for tree {n} carries tree {head.n}")
        heads.append(head)
    if heads:
        st = StateDB(Path(mirror) / WORKDIR / "state.db")
        try:
            st.add_sumdb_heads(db.name, [(h.n, h.note) for h in heads], "pending")
        finally:
            st.close()
    return heads
