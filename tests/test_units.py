from airsync.units import count, human_bytes


def test_human_bytes():
    assert human_bytes(801) == "801 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 << 20) == "3.0 MiB"
    assert human_bytes(5 << 40) == "5120.0 GiB"


def test_count():
    assert count(1, "file") == "1 file"
    assert count(0, "file") == "0 files"
    assert count(2, "entry", "entries") == "2 entries"
