"""The signature cache: computed once per (size, mtime), recorded at publish, signed again when stale."""

from __future__ import annotations

import hashlib
import os

from airsync import sample
from airsync.carry import chunks
from airsync.carry.signatures import SignatureCache, h1_of, module_file


def test_get_computes_once_and_again_when_the_file_changes(tmp_path, monkeypatch):
    (tmp_path / "a").write_bytes(b"x" * 300_000)
    cache = SignatureCache(tmp_path / "state.db")
    try:
        first = cache.get(tmp_path, "a")
        assert first.sha256 == hashlib.sha256(b"x" * 300_000).hexdigest() and first.h1 is None
        # A row that matches size and mtime is trusted: the file is not read again.
        with monkeypatch.context() as m:
            m.setattr(chunks, "signature_of_file", lambda _p: (_ for _ in ()).throw(AssertionError("read")))
            assert cache.get(tmp_path, "a") == first
        (tmp_path / "a").write_bytes(b"y" * 300_001)
        assert cache.get(tmp_path, "a").sha256 == hashlib.sha256(b"y" * 300_001).hexdigest()
    finally:
        cache.close()


def test_put_records_what_the_mirror_knows_and_survives_reopening(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    sig = chunks.signature_of_bytes(b"data")
    cache = SignatureCache(tmp_path / "state.db")
    cache.put("f", os.lstat(tmp_path / "f"), sig, "h1:given")
    cache.close()
    again = SignatureCache(tmp_path / "state.db")
    try:
        assert again.get(tmp_path, "f").h1 == "h1:given"
    finally:
        again.close()


def test_a_row_from_other_chunk_settings_is_signed_again(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    cache = SignatureCache(tmp_path / "state.db")
    try:
        st = os.lstat(tmp_path / "f")
        cache.get(tmp_path, "f")
        with cache._lock:
            cache._db.execute("UPDATE signatures SET sig = ? WHERE relpath = 'f'", (b"ASYNCSIG-garbage",))
        assert cache.get(tmp_path, "f", st).sha256 == hashlib.sha256(b"data").hexdigest()
    finally:
        cache.close()


def test_for_tree_keeps_signatures_in_memory_without_a_workspace(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    cache = SignatureCache.for_tree(tmp_path)
    try:
        assert cache.get(tmp_path, "f").size == 4
    finally:
        cache.close()
    assert not (tmp_path / ".airsync").exists()


def test_h1_of_module_files(tmp_path):
    m = sample.demo_modules()[0]
    sample.build_proxy_tree(tmp_path, [m])
    rel_zip = f"{m.path}/@v/{m.version}.zip"
    rel_mod = f"{m.path}/@v/{m.version}.mod"
    assert module_file(rel_zip)[1] == "zip" and module_file(f"{m.path}/@v/list") is None
    assert h1_of(tmp_path / rel_zip, rel_zip) == sample.module_h1(m)
    assert h1_of(tmp_path / rel_mod, rel_mod).startswith("h1:")
    assert h1_of(tmp_path / rel_zip, "sumdb/x/latest") is None


def test_get_many_answers_as_get_does_with_chunks_decoded_on_demand(tmp_path):
    for name, size in (("a", 600_000), ("b", 10), ("c", 300_000)):
        (tmp_path / name).write_bytes(os.urandom(size))
    cache = SignatureCache(tmp_path / "state.db")
    try:
        cache.get(tmp_path, "a")
        cache.get(tmp_path, "b")
        (tmp_path / "b").write_bytes(b"changed")  # stale row: signed again
        files = {n: os.lstat(tmp_path / n) for n in ("a", "b", "c")}
        many = cache.get_many(tmp_path, files)
        assert list(many) == ["a", "b", "c"]
        for n in files:
            one = cache.get(tmp_path, n)
            assert many[n] == one
            assert many[n].sig == chunks.signature_of_file(tmp_path / n)
            assert chunks.encode(many[n].sig) == many[n].encoded
        assert many["b"].size == len(b"changed")
    finally:
        cache.close()


def test_gather_batches_rows_and_close_writes_the_rest(tmp_path, monkeypatch):
    from airsync.carry import signatures

    monkeypatch.setattr(signatures, "SOON_ROWS", 3)
    monkeypatch.setattr(signatures, "SOON_SECONDS", 3600.0)
    rows = []
    for i in range(4):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"%d" % i * 1000)
        rows.append((f"f{i}", os.lstat(p), chunks.signature_of_file(p), None))
    db = tmp_path / "state.db"

    def stored() -> set[str]:
        reader = SignatureCache(db)
        try:
            return {r[0] for r in reader._db.execute("SELECT relpath FROM signatures")}
        finally:
            reader.close()

    cache = SignatureCache(db)

    def put_soon(rows):  # as the mirror job does
        if due := cache.gather(rows):
            cache.put_many(due)

    put_soon(rows[:2])
    assert stored() == set()  # held: fewer than SOON_ROWS
    put_soon(rows[2:3])
    assert stored() == {"f0", "f1", "f2"}  # written together
    put_soon(rows[3:])
    assert stored() == {"f0", "f1", "f2"}
    cache.close()
    assert stored() == {"f0", "f1", "f2", "f3"}  # close writes what was held
