"""A checksum database of our own for tests (a helper module, not a test file).

``build_sumdb(root, modules)`` logs one record per module version (its two go.sum lines) in a
transparency log built with ``airsync.tlog``, signs the tree with a fresh ed25519 key through
``airsync.note``, and writes what a GOPROXY serves for it: ``sumdb/<name>/supported``, one
``lookup/<path>@<version>`` answer per version (record id, record text, signed tree note, as the
go command's sumdb server writes it) and every hash tile of the tree (full tiles and the partial
tiles at its right edge). The go command then verifies modules against it with
``GOSUMDB=<verifier key>`` and ``GOPROXY=file://root`` (or any static server over root).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airsync import dirhash, note, sumdb, tlog
from airsync.modpath import ModuleVersion
from airsync.sample import SampleModule, module_h1

NAME = "sumdb.airsync.test"


@dataclass(frozen=True)
class TestSumDB:
    name: str
    vkey: str
    skey: str
    tree: tlog.Tree
    dir: Path


def record_text(m: SampleModule) -> bytes:
    gomod = dirhash.hash_gomod(dict(m.files)["go.mod"])
    return f"{m.path} {m.version} {module_h1(m)}\n{m.path} {m.version}/go.mod {gomod}\n".encode()


def build_sumdb(
    root: Path,
    modules: list[SampleModule],
    name: str = NAME,
    padding: int = 0,
    skey: str | None = None,
    records: dict[ModuleVersion, bytes] | None = None,
    gap: tuple[int, int] = (0, 0),
) -> TestSumDB:
    """Write a signed database for ``modules`` under ``root/sumdb/<name>/``.

    ``padding`` unrelated records are logged first, so that trees span several tiles;
    ``skey`` reuses a signer key (a second log under the same key is a fork); ``records``
    replaces the logged text of some versions (a database that vouches for other bytes);
    ``gap=(k, n)`` logs n unrelated records after the first k modules (a log that grew).
    """
    if skey is None:
        skey, vkey = note.generate_key(name)
    else:
        vkey = note.parse_signer(skey).verifier.vkey
    records = records or {}
    log = tlog.MemoryLog()
    for i in range(padding):
        log.append(f"example.invalid/pad{i} v1.0.0 h1:pad\n".encode())
    texts = {m.mv: records.get(m.mv, record_text(m)) for m in modules}
    ids = {}
    for k, (mv, text) in enumerate(texts.items()):
        if k == gap[0]:
            for i in range(gap[1]):
                log.append(f"example.invalid/gap{i} v1.0.0 h1:gap\n".encode())
        ids[mv] = log.append(text)
    tree = log.tree()
    signed = note.sign(tlog.format_tree(tree), note.parse_signer(skey))
    base = root / "sumdb" / name
    base.mkdir(parents=True, exist_ok=True)
    (base / "supported").write_bytes(b"")
    for m in modules:
        path = base / sumdb.lookup_path(ModuleVersion(m.path, m.version))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{ids[m.mv]}\n".encode() + texts[m.mv] + b"\n" + signed)
    for t in tlog.new_tiles(8, 0, tree.n):
        path = base / t.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log.tile(t))
    return TestSumDB(name=name, vkey=vkey, skey=skey, tree=tree, dir=base)
