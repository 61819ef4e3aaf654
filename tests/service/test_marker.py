"""The medium marker: written once, read back, refused when absent, odd or a symlink."""

import os

import pytest

from airsync.service import marker
from airsync.service.marker import MARKER, MarkerError


def test_write_then_read(tmp_path):
    m = marker.write(tmp_path, "stick-a")
    assert marker.read(tmp_path) == m and m.label == "stick-a" and len(m.id) == 16
    assert not (tmp_path / f"{MARKER}.tmp").exists()
    with pytest.raises(MarkerError, match="already is a medium"):
        marker.write(tmp_path, "other")
    assert marker.read(tmp_path).label == "stick-a"


def test_a_directory_without_marker_is_refused(tmp_path):
    with pytest.raises(MarkerError, match=f"no {MARKER} here.*airsync usb-init"):
        marker.read(tmp_path)
    with pytest.raises(MarkerError, match="no such directory"):
        marker.write(tmp_path / "absent", "x")


@pytest.mark.parametrize("data,match", [(b"hello", "not JSON"), (b'{"airsync-medium": 2}', "format 1"),
                                        (b'{"airsync-medium": 1, "label": 3}', "lacks label, id, created")])
def test_foreign_markers_are_refused(tmp_path, data, match):
    (tmp_path / MARKER).write_bytes(data)
    with pytest.raises(MarkerError, match=match):
        marker.read(tmp_path)


def test_a_symlinked_marker_is_not_followed(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    marker.write(real, "x")
    medium = tmp_path / "medium"
    medium.mkdir()
    os.symlink(real / MARKER, medium / MARKER)
    with pytest.raises(MarkerError, match="cannot read"):
        marker.read(medium)


def test_a_failed_write_is_a_marker_error_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(MarkerError, match="cannot write the marker: No space left on device"):
        marker.write(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_medium_is_a_marker_error(tmp_path):
    (tmp_path / f"{MARKER}.tmp").mkdir()  # cannot be opened for writing, as on a read-only medium
    with pytest.raises(MarkerError, match="cannot write the marker"):
        marker.write(tmp_path, "x")


def test_a_fifo_as_the_marker_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / marker.MARKER)
    with pytest.raises(marker.MarkerError, match="not a regular file"):
        marker.read(tmp_path)
