"""Toolchains inside the gap: ``--toolchain`` mirrors golang.org/toolchain, GOTOOLCHAIN switches offline.

The upstream holds toolchain modules built here (a ``bin/go`` that says which Go it is: the real
ones are 70 MB each and come from the real proxy in scripts/live-check), recorded in the test
checksum database like any module. airsync mirrors them by name (go1.27.3), by family (go1.27:
its newest release) and from a go.mod's ``go`` and ``toolchain`` lines (what the go command switches
to); the real go command inside, offline, with GOSUMDB on, downloads one from the mirror, verifies
it and runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airsync import sample
from airsync.goproxy import gover
from airsync.goproxy.gover import host_platform
from airsync.sample import SampleModule, build_sumdb
from tests.helpers.cli import airsync
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import go_env, run_go

pytestmark = pytest.mark.e2e

GOOS, GOARCH = host_platform().split("/")


def toolchain(version: str, goos: str = GOOS, goarch: str = GOARCH) -> SampleModule:
    go = f"#!/bin/sh\necho \"go version go{version} {goos}/{goarch}\"\n".encode()
    return SampleModule(gover.TOOLCHAIN_MODULE, gover.toolchain_module_version(version, goos, goarch),
                        (("go.mod", b"module golang.org/toolchain\n"), ("bin/go", go), ("bin/gofmt", go),
                         (f"pkg/tool/{goos}_{goarch}/compile", go), ("lib/wasm/README", b"wasm support files\n")))


@pytest.fixture
def upstream(tmp_path: Path):
    root = tmp_path / "up"
    modules = [toolchain("1.27.1"), toolchain("1.27.3"), toolchain("1.28rc1"), toolchain("1.27.3", "plan9", "386")]
    sample.build_proxy_tree(root, modules)
    db = build_sumdb(root, modules, padding=10)
    return root, db


def test_gotoolchain_switches_offline_to_a_mirrored_toolchain(tmp_path, upstream):
    root, db = upstream
    mirror = tmp_path / "m"
    with FaultServer(root) as srv:
        r = airsync("mirror", "--toolchain", "go1.27.3", "--toolchain", "go1.26.0", "--platform",
                    f"{host_platform()},windows/riscv64", "--to", str(mirror), "--upstream", srv.url,
                    "--sumdb", db.vkey, "--no-progress")
    assert r.returncode == 1, r.stdout + r.stderr
    # Every toolchain the upstream lacks is one line naming what was asked; the rest is mirrored.
    missing = [line for line in r.stderr.splitlines() if line.startswith("airsync:") and "no toolchain" in line]
    assert len(missing) == 3, r.stderr
    assert any("--toolchain go1.27.3 (windows/riscv64): no toolchain go1.27.3 for windows/riscv64" in m for m in missing)
    want = gover.toolchain_module_version("1.27.3", GOOS, GOARCH)
    assert (mirror / f"golang.org/toolchain/@v/{want}.zip").is_file()

    env = go_env(tmp_path / "inside", mirror.as_uri(), gosumdb=db.vkey)
    env["GOTOOLCHAIN"] = "go1.27.3"
    work = tmp_path / "work"
    work.mkdir()
    r = run_go(["version"], work, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"go version go1.27.3 {GOOS}/{GOARCH}"


def test_a_family_and_go_mod_lines_pick_what_the_go_command_would(tmp_path, upstream):
    root, db = upstream
    apps = {}
    for name, text in (("lang", "go 1.27\n"), ("tool", "go 1.27.1\ntoolchain go1.27.3\n")):
        apps[name] = tmp_path / name
        apps[name].mkdir()
        (apps[name] / "go.mod").write_text(f"module example.net/{name}\n\n{text}")
    mirror = tmp_path / "m"
    with FaultServer(root) as srv:
        r = airsync("mirror", "--go-mod", str(apps["lang"] / "go.mod"), "--go-mod", str(apps["tool"] / "go.mod"),
                    "--toolchain", "go1.27", "--platform", host_platform(), "--to", str(mirror),
                    "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress")
    # "go 1.27" asks for go1.27.0 (golang.org/issue/62278), which this upstream does not have.
    assert r.returncode == 1 and "no toolchain go1.27.0" in r.stderr, r.stdout + r.stderr
    held = sorted(p.name for p in (mirror / "golang.org/toolchain/@v").glob("*.zip"))
    assert held == [gover.toolchain_module_version("1.27.3", GOOS, GOARCH) + ".zip"]  # not 1.27.1, not 1.28rc1

    # Inside, a local go older than the toolchain line switches by itself (GOTOOLCHAIN=auto).
    env = go_env(tmp_path / "inside", mirror.as_uri(), gosumdb=db.vkey)
    env["GOTOOLCHAIN"] = "auto"
    r = run_go(["version"], apps["tool"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"go version go1.27.3 {GOOS}/{GOARCH}"
