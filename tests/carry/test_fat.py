"""A real FAT file system as the medium: mkfs.vfat image mounted with fusefat (no vfat kernel
module on these machines; FUSE gives real FAT behaviour: case-insensitive names, no symlinks).

sync, verify and the go command reading the medium; and a stick pulled mid-sync (the fusefat
process killed) stops the sync with a clear error, after which a remount and rerun finish it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airsync import sample
from airsync.carry import manifest
from airsync.sample import build_sumdb
from tests.helpers.fat import need_tool
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import build_demo_app

pytestmark = pytest.mark.e2e


def _mirror(tmp: Path, modules) -> tuple[Path, object]:
    upstream = tmp / "upstream"
    sample.build_proxy_tree(upstream, modules)
    db = build_sumdb(upstream, modules, padding=20)
    mirror = tmp / "mirror"
    with FaultServer(upstream) as srv:
        r = subprocess.run([sys.executable, "-m", "airsync", "mirror", *[f"--module={m.path}@{m.version}" for m in modules],
                            "--to", str(mirror), "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress"],
                           capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    return mirror, db


def airsync(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "airsync", *args], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_sync_verify_and_go_build_on_fat(tmp_path, fat):
    mnt, _, _, _ = fat
    mirror, db = _mirror(tmp_path, sample.demo_modules())
    manifest.keygen(tmp_path / "k")
    r = airsync("sync", "--mirror", str(mirror), "--to", str(mnt), "--signing-key", str(tmp_path / "k.key"))
    assert r.returncode == 0, r.stderr
    r = airsync("verify", str(mnt), "--key", str(tmp_path / "k.pub"))
    assert r.returncode == 0, r.stdout + r.stderr
    # FAT keeps no symlinks and folds case; Go's '!' escaping keeps module paths apart anyway.
    assert (mnt / "example.com" / "!big!corp").is_dir() and (mnt / "EXAMPLE.COM").is_dir()
    r = airsync("sync", "--mirror", str(mirror), "--to", str(mnt), "--signing-key", str(tmp_path / "k.key"))
    assert r.returncode == 0 and "wrote 0 files" in r.stdout, r.stdout + r.stderr
    build_demo_app(tmp_path, mnt.as_uri(), db.vkey)


def test_pulled_stick_mid_sync_then_rerun_finishes(tmp_path, fat):
    mnt, state, mount, img = fat
    mirror, _ = _mirror(tmp_path, [sample.big_module("example.com/big", "v1.0.0", 40 << 20, seed=9)])
    manifest.keygen(tmp_path / "k")
    cmd = [sys.executable, "-m", "airsync", "sync", "--mirror", str(mirror), "--to", str(mnt),
           "--signing-key", str(tmp_path / "k.key")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = mnt / ".airsync-partial"
    deadline = time.monotonic() + 60
    while not (staging.is_dir() and any(p.name.endswith(".part") and p.stat().st_size > (4 << 20) for p in staging.iterdir())):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the copy never got going"
        time.sleep(0.02)
    state["proc"].send_signal(signal.SIGKILL)  # the stick is pulled
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert "run the sync again" in err
    subprocess.run(["fusermount", "-u", "-z", str(mnt)], capture_output=True)
    state["proc"].wait(timeout=10)
    # As after any pulled stick, repair the file system before using it again.
    subprocess.run([need_tool("fsck.vfat"), "-a", "-w", str(img)], capture_output=True)
    state["proc"] = mount()  # plugged in again
    assert not (mnt / "airsync-manifest").exists()  # visibly incomplete
    r = airsync("sync", "--mirror", str(mirror), "--to", str(mnt), "--signing-key", str(tmp_path / "k.key"))
    assert r.returncode == 0, r.stderr
    assert airsync("verify", str(mnt), "--key", str(tmp_path / "k.pub")).returncode == 0
