import os
import subprocess

import pytest

from airsync import log


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs():
    # In-process jobs log through structlog; keep test output to warnings and errors.
    log.setup("warning", "console")


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a small tmpfs (a real full disk at its size); needs root, as CI has."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = []

    def mount(size: str):
        mnt = tmp_path / f"tmpfs-{len(mounted)}"
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def fat(tmp_path):
    """A FAT medium: an image made with mkfs.vfat, mounted with fusefat (tests.helpers.fat)."""
    from tests.helpers.fat import fat_stick

    yield from fat_stick(tmp_path)
