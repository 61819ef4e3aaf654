from airsync.fetch.fetcher import Stats
from airsync.mirror.job import Failure, Summary
from airsync.mirror.progress import _line, human_bytes, summary_text


def test_line_shows_files_bytes_rate_retries_and_byte_based_eta():
    st = Stats(files_total=10, files_done=4, files_skipped=1, bytes_received=30 << 20, bytes_expected=100 << 20, retries=2)
    text = _line(st, elapsed=10.0, rate=10 << 20).plain
    assert "5/10 files" in text and "30.0 MiB" in text and "10.0 MiB/s" in text and "retries 2" in text
    assert "ETA 10s" in text  # 70 MiB left at 10 MiB/s beats the file-count estimate


def test_summary_lists_failures_and_unpinned():
    s = Summary(fetched=3, skipped=2, bytes=3 << 20, seconds=1.5, retries=1,
                failures=[Failure("example.com/a@v1.0.0", "example.com/a/@v/v1.0.0.zip", "HTTP 503")],
                unpinned=["example.com/b@v1.0.0"])
    text = summary_text(s)
    assert "fetched 3 files" in text and "skipped 2" in text and "failed 1" in text
    assert "FAILED example.com/a/@v/v1.0.0.zip: HTTP 503" in text
    assert "not hash-pinned" in text and "example.com/b@v1.0.0" in text


def test_human_bytes():
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KiB" and human_bytes(3 << 30) == "3.0 GiB"
