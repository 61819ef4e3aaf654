"""The quick check's stamp and record (pure): every field of every file counts, and a damaged
record is no record."""

from __future__ import annotations

import os

import pytest

from airsync.carry import syncstamp


def st(size=10, mtime=1, ctime=2, ino=3, mode=0o100644) -> os.stat_result:
    return os.stat_result((mode, ino, 0, 1, 0, 0, size, 0, 0, 0, 0.0, 0.0, 0.0, 0, mtime, ctime))


BASE = [("mirror", {"a/@v/list": st(), "a/@v/v1.0.0.zip": st(size=99)}), ("target", {"a/@v/list": st(ino=7)})]


def test_the_same_trees_give_the_same_stamp_in_any_order():
    again = [("mirror", dict(reversed(list(BASE[0][1].items())))), BASE[1]]
    assert syncstamp.stamp(BASE, ["only "]) == syncstamp.stamp(again, ["only "])


@pytest.mark.parametrize("field", ["size", "mtime", "ctime", "ino", "mode"])
def test_every_stat_field_changes_the_stamp(field):
    changed = [("mirror", {**BASE[0][1], "a/@v/list": st(**{field: 12345})}), BASE[1]]
    assert syncstamp.stamp(changed, []) != syncstamp.stamp(BASE, [])


def test_names_absence_trees_and_settings_change_the_stamp():
    ref = syncstamp.stamp(BASE, ["only ", "signer k+00000001"])
    renamed = [("mirror", {"a/@v/LIST": st(), "a/@v/v1.0.0.zip": st(size=99)}), BASE[1]]
    absent = [*BASE, ("meta", {"airsync-manifest.txt": None})]
    present = [*BASE, ("meta", {"airsync-manifest.txt": st()})]
    moved = [("target", BASE[0][1]), ("mirror", BASE[1][1])]
    stamps = {
        ref,
        syncstamp.stamp(renamed, ["only ", "signer k+00000001"]),
        syncstamp.stamp(absent, ["only ", "signer k+00000001"]),
        syncstamp.stamp(present, ["only ", "signer k+00000001"]),
        syncstamp.stamp(moved, ["only ", "signer k+00000001"]),
        syncstamp.stamp(BASE, ["only example.com/*", "signer k+00000001"]),
        syncstamp.stamp(BASE, ["only ", "signer k+00000002"]),
    }
    assert len(stamps) == 7


def test_a_record_round_trips():
    r = syncstamp.Record("ab" * 32, 1208, ("stray.txt", "x/y.airsig"))
    assert syncstamp.decode(syncstamp.encode(r)) == r


@pytest.mark.parametrize("data", [
    b"", b"{", b"[]", b'{"version": "airsync-syncstamp-0", "stamp": "x", "files": 1, "unknown": []}',
    b'{"version": "airsync-syncstamp-1", "stamp": 1, "files": 1, "unknown": []}',
    b'{"version": "airsync-syncstamp-1", "stamp": "x", "files": -1, "unknown": []}',
    b'{"version": "airsync-syncstamp-1", "stamp": "x", "files": true, "unknown": []}',
    b'{"version": "airsync-syncstamp-1", "stamp": "x", "files": 1, "unknown": [3]}',
    b'{"version": "airsync-syncstamp-1", "stamp": "x", "files": 1}',
    b"\xff\xfe",
])
def test_a_damaged_record_is_no_record(data):
    assert syncstamp.decode(data) is None
