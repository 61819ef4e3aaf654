"""`airsync sync` to directory targets: first sync, no-op, growth, damage, full medium, resume,
symlinks, and the go command building offline from the medium with GOSUMDB on."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash

from airsync import sample
from airsync.carry import chunks, manifest
from airsync.carry.medium import MANIFEST, SIDECAR_SUFFIX, STAGING, sha256_file, tree_files
from airsync.carry.signatures import selected
from airsync.carry.sync import SyncError, sync
from airsync.errors import ConfigError
from airsync.sample import build_sumdb
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import build_demo_app

MODULES = sample.demo_modules()
BIG = "example.com/big"
BIG_ZIP = f"{BIG}/@v/v1.0.0.zip"


def mirror_from(tmp: Path, modules, name="mirror", extra=()) -> tuple[Path, object]:
    upstream = tmp / f"{name}-upstream"
    sample.build_proxy_tree(upstream, modules)
    db = build_sumdb(upstream, modules, padding=20)
    mirror = tmp / name
    with FaultServer(upstream) as srv:
        r = subprocess.run(
            [sys.executable, "-m", "airsync", "mirror", *[f"--module={m.path}@{m.version}" for m in modules],
             "--to", str(mirror), "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress", *extra],
            capture_output=True, text=True, timeout=180,
        )
    assert r.returncode == 0, r.stdout + r.stderr
    return mirror, db


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    key, pub = manifest.keygen(d / "border")
    return manifest.load_signer(key), manifest.load_verifier(pub)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sync")
    return mirror_from(tmp, MODULES)


def same_tree(a: Path, b: Path) -> None:
    fa, fb = tree_files(a).files, tree_files(b).files
    assert sorted(fa) == sorted(fb)
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_first_sync_noop_and_signed_manifest(mirrored, keys, tmp_path):
    mirror, db = mirrored
    signer, verifier = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    r = sync(mirror, usb, signer)
    assert r.written and r.unchanged == 0
    same_tree(mirror, usb)
    m = manifest.open_manifest((usb / MANIFEST).read_bytes(), verifier)
    assert {e.path for e in m.entries} == set(tree_files(mirror).files)
    assert any(line.endswith("/go.mod " + line.split()[-1]) for line in m.gosum)
    assert f"{sample.STRS} v1.1.0 {sample.module_h1(next(x for x in MODULES if x.path == sample.STRS and x.version == 'v1.1.0'))}" in m.gosum
    r2 = sync(mirror, usb, signer)
    assert r2.written == [] and r2.unchanged == len(m.entries)


def test_small_files_are_copied_one_at_a_time_beside_the_large_ones(mirrored, keys, tmp_path, monkeypatch):
    # Threads of small files handed the GIL over at every system call and cost more CPU than
    # they overlapped: small files go one after another in one thread, large ones in others.
    import threading

    from airsync.carry import sync as sync_module

    copied: list[tuple[str, int, int]] = []  # (relative path, size, thread)
    real = sync_module._copy_resumable

    def recording(src, part, sf, *a, **kw):
        copied.append((sf.rel, sf.size, threading.get_ident()))
        return real(src, part, sf, *a, **kw)

    mirror, _db = mirrored
    line = 1 + max(p.stat().st_size for p in mirror.rglob("*.info"))  # the zips are larger
    monkeypatch.setattr(sync_module, "_copy_resumable", recording)
    monkeypatch.setattr(sync_module, "LARGE_COPY", line)
    usb = tmp_path / "usb"
    usb.mkdir()
    r = sync(mirror, usb, keys[0])
    same_tree(mirror, usb)
    small = {t for _rel, size, t in copied if size < line}
    large = {t for _rel, size, t in copied if size >= line}
    assert len(small) == 1 and large and not small & large and threading.get_ident() not in small | large
    assert r.written == sorted(r.written) == [rel for rel, _size, _t in sorted(copied)]


def test_copies_come_in_order_and_none_starts_once_one_failed():
    # A copy that fails (a full or pulled medium) stops the sync: the copies still queued in
    # either pool are cancelled before the running ones are waited for.
    import threading
    import time
    from types import SimpleNamespace

    from airsync.carry.sync import LARGE_COPY, _copies

    started: list[str] = []
    threads: dict[str, int] = {}

    def copy(f):
        started.append(f.rel)
        threads[f.rel] = threading.get_ident()
        if f.rel == "fails":
            raise OSError(28, "No space left on device")
        time.sleep(0.3 if f.size >= LARGE_COPY else 0.01)
        return f.rel

    small = [SimpleNamespace(rel=f"s{i:02d}", size=10) for i in range(40)]
    large = [SimpleNamespace(rel=f"l{i}", size=LARGE_COPY) for i in range(2)]
    assert list(_copies(copy, [large[0], *small[:5], large[1]], True)) == ["l0", "s00", "s01", "s02", "s03", "s04", "l1"]
    assert len({threads[f.rel] for f in small[:5]}) == 1 and not {threads["l0"], threads["l1"]} & {threads["s00"]}

    started.clear()
    todo = [SimpleNamespace(rel="fails", size=10), *large, *small]
    with pytest.raises(OSError, match="No space"):
        list(_copies(copy, todo, True))
    assert len([r for r in started if r.startswith("s")]) <= 2, started  # at most the one running then
    assert list(_copies(copy, small[:3], False)) == ["s00", "s01", "s02"]  # elsewhere: in the caller's thread
    assert {threads[f.rel] for f in small[:3]} == {threading.get_ident()}


def test_resync_after_adding_versions_writes_only_those(keys, tmp_path):
    signer, _ = keys
    first = [m for m in MODULES if m.path != sample.TOOLS]
    mirror, _ = mirror_from(tmp_path, first)
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(mirror, usb, signer)
    upstream = tmp_path / "more-upstream"
    sample.build_proxy_tree(upstream, MODULES)
    build_sumdb(upstream, MODULES, padding=20)
    with FaultServer(upstream) as srv:
        subprocess.run([sys.executable, "-m", "airsync", "mirror", f"--module={sample.TOOLS}@v0.3.1", "--to",
                        str(mirror), "--upstream", srv.url, "--sumdb", "off", "--no-progress"],
                       capture_output=True, timeout=120, check=True)
    r = sync(mirror, usb, signer)
    assert sorted(r.written) == sorted(p for p in tree_files(mirror).files if p.startswith("example.com/tools/"))
    same_tree(mirror, usb)


def test_altered_file_on_the_target_is_rewritten(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, _ = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(mirror, usb, signer)
    victim = usb / "example.com/lib/strs/@v/v1.1.0.zip"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    time.sleep(0.01)
    victim.write_bytes(bytes(data))
    future = time.time() + 10  # clearly after the manifest
    os.utime(victim, (future, future))
    r = sync(mirror, usb, signer)
    assert r.written == ["example.com/lib/strs/@v/v1.1.0.zip"]
    same_tree(mirror, usb)
    # With an old mtime only --verify notices.
    victim.write_bytes(bytes(data))
    os.utime(victim, (1, 1))
    assert sync(mirror, usb, signer).written == []
    assert sync(mirror, usb, signer, verify=True).written == ["example.com/lib/strs/@v/v1.1.0.zip"]
    same_tree(mirror, usb)


def test_resume_from_the_intact_prefix(keys, tmp_path):
    signer, _ = keys
    mirror, _ = mirror_from(tmp_path, [sample.big_module(BIG, "v1.0.0", 6 << 20, seed=4)], extra=("--sumdb", "off"))
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / STAGING).mkdir()
    import xxhash

    part = usb / STAGING / f"{xxhash.xxh3_64_hexdigest(BIG_ZIP.encode())}.part"
    src = (mirror / BIG_ZIP).read_bytes()
    part.write_bytes(src[: 4 << 20])  # a copy cut short by a pulled stick
    r = sync(mirror, usb, signer)
    assert BIG_ZIP in r.written and r.resumed_bytes >= 3 << 20
    same_tree(mirror, usb)
    # A torn tail is detected chunk by chunk and written again.
    os.unlink(usb / BIG_ZIP)
    (usb / STAGING).mkdir(exist_ok=True)
    part.write_bytes(src[: 2 << 20] + b"\0" * (2 << 20))
    r = sync(mirror, usb, signer)
    assert (usb / BIG_ZIP).read_bytes() == src and r.resumed_bytes < 2 << 20


def test_symlink_on_the_target_is_not_followed(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, _ = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, usb / "example.com")
    with pytest.raises(SyncError, match="symlink"):
        sync(mirror, usb, signer)
    assert list(outside.iterdir()) == []


@pytest.fixture
def small_tmpfs(mount_tmpfs):
    return mount_tmpfs("4m")


def test_full_medium_is_refused_before_writing(keys, tmp_path, small_tmpfs):
    signer, verifier = keys
    mirror, _ = mirror_from(tmp_path, MODULES)
    assert sync(mirror, small_tmpfs, signer).written  # the small demo set fits
    before = (small_tmpfs / MANIFEST).read_bytes()
    # The mirror grows past what the medium can hold.
    upstream = tmp_path / "big-upstream"
    sample.build_proxy_tree(upstream, [sample.big_module(BIG, "v1.0.0", 6 << 20, seed=4)])
    with FaultServer(upstream) as srv:
        subprocess.run([sys.executable, "-m", "airsync", "mirror", f"--module={BIG}@v1.0.0", "--to", str(mirror),
                        "--upstream", srv.url, "--sumdb", "off", "--no-progress"], capture_output=True, timeout=120, check=True)
    with pytest.raises(SyncError, match=r"not enough room: the sync needs .* MiB, .* MiB are free"):
        sync(mirror, small_tmpfs, signer)
    # Refused before anything was touched: the medium is still whole and still says so.
    assert not (small_tmpfs / BIG_ZIP).exists()
    assert (small_tmpfs / MANIFEST).read_bytes() == before
    manifest.open_manifest(before, verifier)


def test_noop_sync_leaves_the_manifest_alone(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, _ = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(mirror, usb, signer)
    before = (usb / MANIFEST).stat()
    r = sync(mirror, usb, signer)
    assert r.written == [] and r.removed == []
    after = (usb / MANIFEST).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_go_builds_offline_from_the_medium_with_gosumdb_on(mirrored, keys, tmp_path):
    mirror, db = mirrored
    signer, _ = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(mirror, usb, signer)
    build_demo_app(tmp_path, usb.as_uri(), db.vkey)


def test_cli_sync_and_errors(mirrored, tmp_path):
    mirror, _ = mirrored
    run = lambda *a: subprocess.run([sys.executable, "-m", "airsync", *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    assert run("keygen", "--out", str(tmp_path / "k")).returncode == 0
    (tmp_path / "usb").mkdir()
    r = run("sync", "--mirror", str(mirror), "--to", str(tmp_path / "usb"), "--signing-key", str(tmp_path / "k.key"))
    assert r.returncode == 0 and "signed manifest written" in r.stdout, r.stderr
    r = run("sync", "--mirror", str(mirror), "--to", str(tmp_path / "nope"), "--signing-key", str(tmp_path / "k.key"))
    assert r.returncode == 2 and "no such directory" in r.stderr and "Traceback" not in r.stderr
    r = run("sync", "--mirror", str(mirror), "--to", str(tmp_path / "usb"), "--signing-key", str(tmp_path / "k.pub"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "rel, only, expected",
    [
        ("example.com/lib/strs/@v/v1.0.0.zip", "", True),
        ("example.com/lib/strs/@v/v1.0.0.zip", "example.com/lib", True),
        ("example.com/lib/strs/@v/list", "example.com/lib/*", True),
        ("example.com/lib/strs/@v/v1.0.0.zip", "example.org", False),
        ("example.com/!big!corp/util/@v/v1.2.0.mod", "example.com/BigCorp", True),
        ("sumdb/sum.example/lookup/example.com/x@v1.0.0", "example.org", True),
        ("README", "example.org", False),
    ],
)
def test_selected_subset(rel, only, expected):
    assert selected(rel, only) is expected


def test_sync_a_subset_writes_sidecars_and_removes_what_left(keys, tmp_path):
    signer, verifier = keys
    big = sample.big_module(BIG, "v1.0.0", 2 << 20, seed=3)
    mirror, _ = mirror_from(tmp_path, [*MODULES, big])
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(mirror, usb, signer)
    side = usb / (BIG_ZIP + SIDECAR_SUFFIX)
    assert chunks.decode(side.read_bytes()).sha256.hex() == sha256_file(mirror / BIG_ZIP)[1]
    assert not (usb / f"{sample.STRS}/@v/v1.1.0.zip{SIDECAR_SUFFIX}").exists()  # too small to need one
    r = sync(mirror, usb, signer, only=sample.STRS)
    assert not side.exists() and not (usb / BIG_ZIP).exists()
    assert BIG_ZIP in r.removed
    m = manifest.open_manifest((usb / MANIFEST).read_bytes(), verifier)
    paths = {e.path for e in m.entries}
    assert any(p.startswith("sumdb/") for p in paths)
    assert {p for p in paths if "/@v/" in p or p.endswith("/@latest")} == \
        {p for p in tree_files(mirror).files if p.startswith(sample.STRS + "/")}


def test_one_sync_at_a_time_per_medium_and_no_staging_symlink(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, _ = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / STAGING).mkdir()
    held = os.open(usb / STAGING / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # another sync, e.g. reaching the medium by another path
    try:
        with pytest.raises(SyncError, match="another sync is writing to this medium"):
            sync(mirror, tmp_path / "usb" / ".." / "usb", signer)
    finally:
        os.close(held)
    assert not (usb / MANIFEST).exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = tmp_path / "usb2"
    other.mkdir()
    (other / STAGING).symlink_to(elsewhere)
    with pytest.raises(SyncError, match="refusing to follow"):
        sync(mirror, other, signer)
    assert not any(elsewhere.iterdir())


def test_a_mistyped_mirror_or_an_overlapping_target_is_refused_and_the_medium_kept(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, verifier = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(mirror, usb, signer)
    before = sorted(tree_files(usb).files)
    with pytest.raises(ConfigError, match="no such mirror directory"):
        sync(tmp_path / "typo", usb, signer)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="an empty directory, not a mirror"):
        sync(tmp_path / "empty", usb, signer)
    assert sorted(tree_files(usb).files) == before
    manifest.open_manifest((usb / MANIFEST).read_bytes(), verifier)
    for target in (mirror, mirror / "example.com"):
        with pytest.raises(ConfigError, match="overlap"):
            sync(mirror, target, signer)
    assert not (mirror / MANIFEST).exists()


def test_planted_symlinks_in_the_staging_area_are_never_written_through(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, verifier = keys
    usb = tmp_path / "usb"
    (usb / STAGING).mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    rel = next(iter(sorted(tree_files(mirror).files)))
    for name in (xxhash.xxh3_64_hexdigest(rel.encode()) + ".part", "manifest.tmp", "CaseProbe", "previous-manifest"):
        (usb / STAGING / name).symlink_to(victim)
    sync(mirror, usb, signer)
    assert victim.read_text() == "precious\n"
    assert not (usb / rel).is_symlink()
    same_tree(mirror, usb)
    manifest.open_manifest((usb / MANIFEST).read_bytes(), verifier)


def test_parts_left_by_a_full_medium_count_as_room_and_orphans_go(keys, small_tmpfs, tmp_path):
    signer, _ = keys
    big = sample.big_module(BIG, "v1.0.0", 2 << 20, seed=4)
    mirror, _ = mirror_from(tmp_path, [big])
    staging = small_tmpfs / STAGING
    staging.mkdir()
    # What a sync cut short by a full medium leaves: most of the big zip (it resumes, and the
    # room it takes is its own), and a part nothing needs any more (1.5 MiB of the 4 MiB).
    data = (mirror / BIG_ZIP).read_bytes()
    (staging / (xxhash.xxh3_64_hexdigest(BIG_ZIP.encode()) + ".part")).write_bytes(data[: len(data) - 100_000])
    (staging / "0123456789abcdef.part").write_bytes(b"x" * (3 << 19))
    r = sync(mirror, small_tmpfs, signer)
    assert r.resumed_bytes > 1 << 20 and BIG_ZIP in r.written
    assert not (staging / "0123456789abcdef.part").exists()
    same_tree(mirror, small_tmpfs)


def test_someone_elses_sidecar_is_left_alone(mirrored, keys, tmp_path):
    mirror, _ = mirrored
    signer, _ = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "notes.airsig").write_text("mine\n")
    r = sync(mirror, usb, signer)
    assert (usb / "notes.airsig").read_text() == "mine\n"
    assert "notes.airsig" in r.unknown


def test_a_goproxy_tree_made_by_other_means_can_be_synced(keys, tmp_path):
    signer, verifier = keys
    tree = tmp_path / "tree"
    sample.build_proxy_tree(tree, MODULES)  # no .airsync/ in it yet
    usb = tmp_path / "usb"
    usb.mkdir()
    sync(tree, usb, signer)
    same_tree(tree, usb)
    manifest.open_manifest((usb / MANIFEST).read_bytes(), verifier)


def test_a_noop_resync_ends_at_the_quick_check_and_any_change_takes_the_full_path(keys, tmp_path, monkeypatch):
    from airsync.carry import signatures

    mirror, _ = mirror_from(tmp_path, [m for m in MODULES if m.path != sample.TOOLS])
    signer, verifier = keys
    usb = tmp_path / "usb"
    usb.mkdir()
    first = sync(mirror, usb, signer)
    records = list((mirror / ".airsync" / "synced").iterdir())
    assert len(records) == 1
    opened = []
    real_cache = signatures.SignatureCache

    def counting_cache(*a, **k):
        opened.append(1)
        return real_cache(*a, **k)

    monkeypatch.setattr(signatures, "SignatureCache", counting_cache)

    def resync(**kw):
        before = len(opened)
        r = sync(mirror, usb, kw.pop("key", signer), **kw)
        return r, len(opened) > before  # True: the full path ran

    r, full = resync()
    assert not full and r.written == [] and r.unchanged == len(first.written) and not r.manifest_written

    # Something not ours on the target: the full path notes it once, the quick check after it too.
    (usb / "stray.txt").write_text("mine\n")
    r, full = resync()
    assert full and r.unknown == ["stray.txt"] and not r.manifest_written
    r, full = resync()
    assert not full and r.unknown == ["stray.txt"]

    # A file of the target gone, or shortened: put back.
    victim = usb / "example.com/lib/strs/@v/v1.1.0.zip"
    victim.unlink()
    r, full = resync()
    assert full and r.written == ["example.com/lib/strs/@v/v1.1.0.zip"]
    with open(victim, "r+b") as f:
        f.truncate(10)
    r, full = resync()
    assert full and r.written == ["example.com/lib/strs/@v/v1.1.0.zip"]
    assert victim.read_bytes() == (mirror / "example.com/lib/strs/@v/v1.1.0.zip").read_bytes()

    # The manifest gone: written again.
    (usb / MANIFEST).unlink()
    r, full = resync()
    assert full and r.manifest_written and (usb / MANIFEST).exists()

    # A mirror file only touched: the full path runs and finds nothing to write.
    touched = mirror / "example.com/lib/strs/@v/list"
    os.utime(touched, ns=(touched.stat().st_mtime_ns + 10**9,) * 2)
    r, full = resync()
    assert full and r.written == [] and not r.manifest_written
    r, full = resync()
    assert not full

    # Another key: the manifest is signed again with it.
    other_key, other_pub = manifest.keygen(tmp_path / "other")
    r, full = resync(key=manifest.load_signer(other_key))
    assert full and r.manifest_written
    manifest.open_manifest((usb / MANIFEST).read_bytes(), manifest.load_verifier(other_pub))

    # --only: another selection is another stamp.
    r, full = resync(key=manifest.load_signer(other_key), only=sample.STRS)
    assert full and r.removed

    # --verify never trusts the record; a damaged record is no record.
    r, full = resync(key=manifest.load_signer(other_key), only=sample.STRS, verify=True)
    assert full and r.written == []
    records[0].write_bytes(b"{damaged")
    r, full = resync(key=manifest.load_signer(other_key), only=sample.STRS)
    assert full and r.written == [] and not r.manifest_written
    r, full = resync(key=manifest.load_signer(other_key), only=sample.STRS)
    assert not full
