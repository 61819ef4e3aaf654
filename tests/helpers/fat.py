"""A real FAT file system for tests: an image made with mkfs.vfat, mounted with fusefat.

These machines have no vfat kernel module; FUSE gives real FAT behaviour (case-insensitive
names, no symlinks). Mounting needs root and /dev/fuse, as CI has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def need_tool(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if path is None:
        pytest.fail(f"{tool} not installed: apt-get install dosfstools fusefat", pytrace=False)
    return path


def fat_stick(tmp_path: Path):
    """Yields (mount point, {'proc': fusefat}, mount(), image); unmounts after."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("FUSE mounts need root and /dev/fuse (CI runs as root)")
    img, mnt = tmp_path / "stick.img", tmp_path / "stick"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(96 << 20)
    subprocess.run([need_tool("mkfs.vfat"), str(img)], check=True, capture_output=True)

    def mount() -> subprocess.Popen:
        proc = subprocess.Popen([need_tool("fusefat"), "-f", "-o", "rw+", str(img), str(mnt)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt):
            assert proc.poll() is None and time.monotonic() < deadline, "fusefat did not mount"
            time.sleep(0.05)
        return proc

    state = {"proc": mount()}
    yield mnt, state, mount, img
    subprocess.run(["fusermount", "-u", "-z", str(mnt)], capture_output=True)
    if state["proc"].poll() is None:
        state["proc"].kill()
    state["proc"].wait(timeout=10)
