from airsync.state import SpanRecord, StateDB


def test_download_and_spans_round_trip(tmp_path):
    db = StateDB(tmp_path / "s.db")
    db.start_download("a/@v/v1.0.0.zip", "http://x/a", '"etag"', 100)
    db.record_spans("a/@v/v1.0.0.zip", [SpanRecord(0, 10, "h0"), SpanRecord(50, 60, "h5")])
    db.record_spans("a/@v/v1.0.0.zip", [SpanRecord(0, 20, "h0b")])  # a span grows under its start
    db.close()
    db = StateDB(tmp_path / "s.db")  # survives reopening
    d = db.download("a/@v/v1.0.0.zip")
    assert (d.url, d.validator, d.size) == ("http://x/a", '"etag"', 100)
    assert db.spans("a/@v/v1.0.0.zip") == [SpanRecord(0, 20, "h0b"), SpanRecord(50, 60, "h5")]
    db.forget_spans("a/@v/v1.0.0.zip", [50])
    assert [(r.start, r.end) for r in db.spans("a/@v/v1.0.0.zip")] == [(0, 20)]


def test_restart_forgets_old_spans_and_finish_forgets_all(tmp_path):
    db = StateDB(tmp_path / "s.db")
    db.start_download("f", "u", None, 10)
    db.record_spans("f", [SpanRecord(0, 5, "h")])
    db.start_download("f", "u", None, 12)
    assert db.spans("f") == [] and db.download("f").size == 12
    db.finish_download("f")
    assert db.download("f") is None
    db.close()
    assert StateDB(tmp_path / "s.db").download("f") is None  # gone from the file too


def test_unpinned_is_idempotent(tmp_path):
    db = StateDB(tmp_path / "s.db")
    db.mark_unpinned([("example.com/a", "v1.0.0")])
    db.mark_unpinned([("example.com/a", "v1.0.0")])
    assert db.unpinned() == [("example.com/a", "v1.0.0")]


def test_forget_unpinned(tmp_path):
    db = StateDB(tmp_path / "s.db")
    db.mark_unpinned([("example.com/a", "v1.0.0"), ("example.com/b", "v1.0.0")])
    db.forget_unpinned([("example.com/a", "v1.0.0")])
    assert db.unpinned() == [("example.com/b", "v1.0.0")]
