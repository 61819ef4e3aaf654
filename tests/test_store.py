import os

import pytest

from airsync.store import MirrorStore, StoreError


def test_publish_is_a_rename_into_the_tree(tmp_path):
    st = MirrorStore(tmp_path / "m")
    part = st.partial_path("example.com/a/@v/v1.0.0.zip")
    part.write_bytes(b"zip")
    st.publish(part, "example.com/a/@v/v1.0.0.zip")
    assert (tmp_path / "m/example.com/a/@v/v1.0.0.zip").read_bytes() == b"zip"
    assert not part.exists()
    assert st.is_published("example.com/a/@v/v1.0.0.zip")


def test_partial_paths_are_flat_and_inside_the_workdir(tmp_path):
    st = MirrorStore(tmp_path / "m")
    p = st.partial_path("example.com/a/@v/v1.0.0.zip")
    assert p.parent == tmp_path / "m/.airsync/partial" and "/" not in p.name
    assert p != st.partial_path("example.com/a/@v/v1.0.0.mod")


def test_reject_keeps_bytes_outside_the_tree(tmp_path):
    st = MirrorStore(tmp_path / "m")
    part = st.partial_path("example.com/a/@v/v1.0.0.zip")
    part.write_bytes(b"bad")
    kept = st.reject(part, "example.com/a/@v/v1.0.0.zip")
    assert kept.read_bytes() == b"bad" and kept.parent == tmp_path / "m/.airsync/rejected"
    assert not st.is_published("example.com/a/@v/v1.0.0.zip")


def test_list_is_semver_sorted_deduplicated_and_atomic(tmp_path):
    st = MirrorStore(tmp_path / "m")
    for v in ("v1.10.0", "v1.2.0", "v1.2.0-rc.1", "v1.2.0"):
        st.add_to_list("example.com/a/@v/list", v)
    assert (tmp_path / "m/example.com/a/@v/list").read_text() == "v1.2.0-rc.1\nv1.2.0\nv1.10.0\n"
    assert not st.add_to_list("example.com/a/@v/list", "v1.10.0")
    assert list((tmp_path / "m/.airsync/partial").iterdir()) == []  # no staging leftovers


def test_mirror_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="cannot use"):
        MirrorStore(tmp_path / "f")


def test_repeated_rejections_keep_every_copy(tmp_path):
    st = MirrorStore(tmp_path / "m")
    for data in (b"one", b"two", b"three"):
        part = st.partial_path("example.com/a/@v/v1.0.0.zip")
        part.write_bytes(data)
        st.reject(part, "example.com/a/@v/v1.0.0.zip")
    kept = sorted(p.read_bytes() for p in (tmp_path / "m/.airsync/rejected").iterdir())
    assert kept == [b"one", b"three", b"two"]


def test_one_process_at_a_time(tmp_path):
    first = MirrorStore(tmp_path / "m")
    with pytest.raises(StoreError, match=f"in use by another airsync process \\(pid {os.getpid()}\\)"):
        MirrorStore(tmp_path / "m")
    first.close()
    MirrorStore(tmp_path / "m").close()  # free again


def test_clean_partial_keeps_only_resumable_files(tmp_path):
    st = MirrorStore(tmp_path / "m")
    keep = st.partial_path("example.com/a/@v/v1.0.0.zip")
    keep.write_bytes(b"resumable")
    st.partial_path("example.com/b/@v/v1.0.0.zip").write_bytes(b"orphan")
    (st.partial_dir / "0123.list.tmp").write_bytes(b"staged list of a killed run")
    assert st.clean_partial({"example.com/a/@v/v1.0.0.zip"}) == 2
    assert [p.name for p in st.partial_dir.iterdir()] == [keep.name]


def test_readers_share_the_mirror_and_exclude_a_writer(tmp_path):
    a = MirrorStore(tmp_path, shared=True)
    b = MirrorStore(tmp_path, shared=True)  # two syncs at once
    try:
        with pytest.raises(StoreError, match="in use by another airsync process"):
            MirrorStore(tmp_path)
    finally:
        a.close()
        b.close()
    w = MirrorStore(tmp_path)
    try:
        with pytest.raises(StoreError, match=f"being written by another airsync process \\(pid {os.getpid()}\\)"):
            MirrorStore(tmp_path, shared=True)
    finally:
        w.close()


def test_a_mirror_job_that_cannot_open_its_state_leaves_no_lock_behind(tmp_path):
    from airsync.fetch.fetcher import FetchSettings
    from airsync.mirror.job import MirrorJob
    from airsync.state import StateError

    (tmp_path / ".airsync").mkdir()
    (tmp_path / ".airsync/state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError):
        MirrorJob(tmp_path, [], FetchSettings())
    MirrorStore(tmp_path).close()  # in a long-running service the next job must get the mirror


def test_update_latest_follows_the_list(tmp_path):
    store = MirrorStore(tmp_path / "m")
    base = tmp_path / "m" / "example.com/a/@v"
    base.mkdir(parents=True)
    for v in ("v1.0.0", "v1.1.0-rc.1", "v0.0.0-20240102150405-abcdef123456"):
        (base / f"{v}.info").write_text(f'{{"Version":"{v}"}}')
    latest = tmp_path / "m" / "example.com/a/@latest"
    assert not store.update_latest("example.com/a")  # no list yet: nothing to follow
    (base / "list").write_text("v0.0.0-20240102150405-abcdef123456\n")
    assert store.update_latest("example.com/a")
    assert latest.read_text() == '{"Version":"v0.0.0-20240102150405-abcdef123456"}'
    (base / "list").write_text("v0.0.0-20240102150405-abcdef123456\nv1.1.0-rc.1\nv1.0.0\n")
    assert store.update_latest("example.com/a") and latest.read_text() == '{"Version":"v1.0.0"}'
    assert not store.update_latest("example.com/a")  # unchanged: not rewritten
    store.close()


def _counted(flusher, fail=()):
    """The flusher's syncfs replaced by a counter (the n-th calls in ``fail`` raise EIO)."""
    calls = []

    def sync_all():
        calls.append(1)
        if len(calls) in fail:
            raise OSError(5, "Input/output error")

    flusher._sync_all = sync_all
    return calls


def test_renames_left_for_later_ride_on_the_next_flush(tmp_path):
    from airsync.store import Flusher

    fl = Flusher(tmp_path)
    assert fl._syncfs is not None  # the test's tmp file system takes syncfs
    calls = _counted(fl)
    fl.dirs_later({tmp_path / "a"})
    fl.files([tmp_path / "f"])  # starts after the renames: covers them
    assert len(calls) == 1
    fl.settle()
    assert len(calls) == 1  # nothing owed any more
    fl.dirs_later({tmp_path / "b"})
    fl.settle()
    assert len(calls) == 2
    fl.settle()
    assert len(calls) == 2


def test_a_failed_flush_leaves_the_renames_owed(tmp_path):
    from airsync.store import Flusher

    fl = Flusher(tmp_path)
    calls = _counted(fl, fail=(1, 2))
    fl.dirs_later({tmp_path / "a"})
    with pytest.raises(OSError):
        fl.files([tmp_path / "f"])
    with pytest.raises(OSError):
        fl.settle()
    fl.settle()  # the third syncfs works: only now is nothing owed
    assert len(calls) == 3
    fl.settle()
    assert len(calls) == 3


def test_without_syncfs_settle_fsyncs_each_owed_directory(tmp_path, monkeypatch):
    import airsync.store as store_mod
    from airsync.store import Flusher

    fl = Flusher(tmp_path)
    fl._syncfs = None  # as on a FUSE or network file system
    synced = []
    monkeypatch.setattr(store_mod, "fsync_dir", synced.append)
    (tmp_path / "a/b").mkdir(parents=True)
    fl.dirs_later({tmp_path / "a"})
    fl.dirs_later({tmp_path / "a/b"})
    fl.files([])
    assert synced == []
    fl.settle()
    assert synced == [tmp_path / "a/b", tmp_path / "a"]  # deepest first
    fl.settle()
    assert len(synced) == 2


def test_settle_waits_out_a_flush_that_took_the_renames_and_failed(tmp_path):
    import threading

    from airsync.store import Flusher

    fl = Flusher(tmp_path)
    started, release, calls = threading.Event(), threading.Event(), []

    def sync_all():
        calls.append(1)
        if len(calls) == 1:  # the first: takes the owed renames, then fails
            started.set()
            release.wait(5)
            raise OSError(5, "Input/output error")

    fl._sync_all = sync_all
    fl.dirs_later({tmp_path / "a"})
    failed = []
    t = threading.Thread(target=lambda: failed.append(pytest.raises(OSError, fl.files, [tmp_path / "f"])))
    t.start()
    assert started.wait(5)
    settled = threading.Thread(target=fl.settle)
    settled.start()
    release.set()
    t.join(5)
    settled.join(5)
    assert failed and len(calls) == 2  # settle's own syncfs, after the failed one
    assert fl._owed == set()
