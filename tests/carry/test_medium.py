"""What a medium holds and where it may be: overlap of directories."""

from __future__ import annotations

from airsync.carry.medium import overlap


def test_overlap(tmp_path):
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "mm").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "m")
    assert overlap(tmp_path / "m", tmp_path / "m")
    assert overlap(tmp_path / "m", tmp_path / "m" / "sub") and overlap(tmp_path / "m" / "sub", tmp_path / "m")
    assert overlap(tmp_path / "link" / "sub", tmp_path / "m")
    assert overlap(tmp_path / "m" / ".." / "m", tmp_path / "m")
    assert not overlap(tmp_path / "m", tmp_path / "mm")  # a shared prefix of names is not nesting
