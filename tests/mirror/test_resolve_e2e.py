"""Resolving without a go.sum, end to end: airsync walks the module graph, the real go builds offline.

A generated upstream holds a small module graph that exercises what the go command does when it
loads one: graph pruning (go 1.21 modules), a module without a ``go`` line (its whole graph is
read), minimal version selection (two versions of one module required), retracted versions, a
deprecated module and a dependency's go.mod with lines only a lax reader accepts. The app's go.mod
is made tidy by the real go command against the upstream; then ``airsync mirror --go-mod`` (no
go.sum) mirrors it, and the go command, with a fresh module cache, no go.sum, the checksum
database on and the upstream gone, runs ``go build ./...``, ``go list -m all`` and ``go mod tidy``
against the mirror alone. Queries (``@latest``, ``@v1.1``) and what cannot be resolved are checked
through the command line too; and with ``--latest`` the go command's own queries inside (``go get
@latest``, ``go list -m -u/-versions/-retracted``) answer from the mirror, over file:// and over
``airsync serve``, showing retractions and deprecations.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from airsync import sample
from airsync.sample import build_sumdb, library_module
from tests.helpers.cli import airsync
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import go_env, run_go
from tests.helpers.serving import airsync_serve

pytestmark = pytest.mark.e2e

G = "example.com/g"
PSEUDO = "v0.0.0-20230102150405-abcdef123456"


def _with_gomod(m: sample.SampleModule, extra: str) -> sample.SampleModule:
    files = tuple((n, d + extra.encode() if n == "go.mod" else d) for n, d in m.files)
    return dataclasses.replace(m, files=files)


def _deprecated(m: sample.SampleModule, why: str) -> sample.SampleModule:
    line = f"module {m.path}\n".encode()
    files = tuple((n, d.replace(line, f"// Deprecated: {why}\n".encode() + line) if n == "go.mod" else d)
                  for n, d in m.files)
    return dataclasses.replace(m, files=files)


def graph_modules() -> list[sample.SampleModule]:
    util = [library_module(f"{G}/util", v, go="1.21") for v in ("v1.1.0", "v1.2.0", "v1.3.0")]
    # v1.4.0 withdraws itself and v1.3.0: @latest is v1.2.0.
    util.append(_with_gomod(library_module(f"{G}/util", "v1.4.0", go="1.21"),
                            "\nretract [v1.3.0, v1.4.0] // broken: use v1.2.0\n"))
    return util + [
        library_module(f"{G}/leaf", "v1.0.0", go="1.21"),
        library_module(f"{G}/deep", "v1.0.0", [(f"{G}/leaf", "v1.0.0")], go="1.21"),
        # No go line: pre-1.17, so its whole graph is read (deep's go.mod through it).
        library_module(f"{G}/legacy", "v1.0.0", [(f"{G}/deep", "v1.0.0")], go=None),
        library_module(f"{G}/unused", "v1.0.0", go="1.21"),
        # A go.mod with a stray line from a dropped block and verbs only newer Go knows: read laxly.
        _with_gomod(library_module(f"{G}/mid", "v1.0.0", [(f"{G}/util", "v1.2.0")],
                                   indirect=[(f"{G}/unused", "v1.0.0")], go="1.21"),
                    "\texample.com/g/stray v1.0.0\n)\nfrobnicate example.com/g/mid\n"),
        _deprecated(library_module(f"{G}/old", "v1.0.0", go="1.21"), "use example.com/g/top instead."),
        library_module(f"{G}/pz", PSEUDO, go="1.21"),  # only a pseudo-version: @latest by time
        library_module(f"{G}/top", "v1.0.0", [(f"{G}/mid", "v1.0.0"), (f"{G}/legacy", "v1.0.0"),
                                              (f"{G}/util", "v1.1.0")], go="1.21"),
    ]


@pytest.fixture
def world(tmp_path: Path):
    root = tmp_path / "upstream"
    modules = graph_modules()
    sample.build_proxy_tree(root, modules)
    db = build_sumdb(root, modules, padding=40)
    # The app's go.mod made tidy by the real go command, against the upstream; its go.sum dropped.
    app = tmp_path / "app"
    sample.write_main_module(app, [(f"{G}/top", "v1.0.0")])
    (app / "go.mod").write_text((app / "go.mod").read_text().replace("go 1.19", "go 1.21"))
    env = go_env(tmp_path / "outside", root.as_uri(), gosumdb="off")
    r = run_go(["mod", "tidy"], app, env)
    assert r.returncode == 0, r.stderr
    (app / "go.sum").unlink()
    return root, db, app


def inside(tmp: Path, mirror: Path, db, app: Path, *commands: list[str]) -> None:
    env = go_env(tmp, mirror.as_uri(), goflags="-mod=mod", gosumdb=db.vkey)
    for cmd in commands:
        r = run_go(cmd, app, env)
        assert r.returncode == 0, f"go {' '.join(cmd)}: {r.stderr}"


def test_a_go_mod_alone_is_resolved_and_builds_offline(tmp_path, world):
    root, db, app = world
    mirror = tmp_path / "mirror"
    pinned = tmp_path / "resolved.sum"
    with FaultServer(root) as srv:
        r = airsync("mirror", "--go-mod", str(app / "go.mod"), "--to", str(mirror), "--upstream", srv.url,
                    "--sumdb", db.vkey, "--no-progress", "--write-go-sum", str(pinned))
    assert r.returncode == 0, r.stdout + r.stderr
    held = {p.relative_to(mirror).as_posix() for p in mirror.rglob("*.zip")}
    # MVS picked util v1.2.0 over top's v1.1.0; deep and leaf came through the unpruned legacy module.
    for m in ("top@v/v1.0.0", "mid@v/v1.0.0", "legacy@v/v1.0.0", "deep@v/v1.0.0", "leaf@v/v1.0.0",
              "util@v/v1.2.0", "unused@v/v1.0.0"):
        assert f"{G}/{m.replace('@v/', '/@v/')}.zip" in held, (m, held)
    # top is pruned (go 1.21): its requirement util v1.1.0 is an edge only; the go command never
    # reads that go.mod, and neither does airsync.
    assert not (mirror / f"{G}/util/@v/v1.1.0.mod").exists()

    # Inside: fresh caches, no go.sum, the checksum database on, the upstream gone.
    (app / "go.sum").unlink(missing_ok=True)
    inside(tmp_path / "in1", mirror, db, app, ["build", "./..."], ["list", "-m", "all"], ["mod", "tidy"])
    # What go mod tidy pinned is what airsync resolved (airsync may pin more, never less).
    needed = set((app / "go.sum").read_text().splitlines())
    assert needed <= set(pinned.read_text().splitlines()), needed - set(pinned.read_text().splitlines())


def test_queries_are_answered_with_retractions_and_problems_are_named(tmp_path, world):
    root, db, _app = world
    mirror = tmp_path / "mirror"
    with FaultServer(root) as srv:
        r = airsync("mirror", "--module", f"{G}/util@latest", "--module", f"{G}/top@v1",
                    "--module", f"{G}/util@v9", "--module", f"{G}/nope@latest", "--module", f"{G}/util@v1.1",
                    "--to", str(mirror), "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress")
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("airsync: --module")]
    assert len(errors) == 2, r.stderr
    assert any(f"{G}/util@v9" in e and "no matching versions" in e for e in errors)
    assert any(f"{G}/nope@latest" in e and "not found upstream" in e for e in errors)
    assert (mirror / f"{G}/util/@v/v1.2.0.zip").is_file()  # latest: v1.3.0 and v1.4.0 are retracted
    assert (mirror / f"{G}/util/@v/v1.1.0.zip").is_file()  # v1.1: the highest v1.1.x
    assert not (mirror / f"{G}/util/@v/v1.4.0.zip").exists()
    assert (mirror / f"{G}/top/@v/v1.0.0.zip").is_file() and (mirror / f"{G}/leaf/@v/v1.0.0.zip").is_file()


def test_no_deps_mirrors_only_what_is_named(tmp_path, world):
    root, db, _app = world
    mirror = tmp_path / "mirror"
    with FaultServer(root) as srv:
        r = airsync("mirror", "--module", f"{G}/top@v1.0.0", "--no-deps", "--to", str(mirror),
                    "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.parent.parent.name for p in mirror.rglob("*.zip")) == ["top"]


def test_queries_inside_answer_from_the_mirror(tmp_path, world):
    """go get @latest, go list -m -versions / -u / -retracted inside, over file:// and airsync serve."""
    root, db, _app = world
    app = tmp_path / "app2"  # requires a retracted util, a deprecated module and a pseudo-version-only one
    sample.write_main_module(app, [(f"{G}/top", "v1.0.0"), (f"{G}/old", "v1.0.0"), (f"{G}/util", "v1.3.0"),
                                   (f"{G}/pz", PSEUDO)])
    (app / "go.mod").write_text((app / "go.mod").read_text().replace("go 1.19", "go 1.21"))
    r = run_go(["mod", "tidy"], app, go_env(tmp_path / "outside2", root.as_uri(), gosumdb="off"))
    assert r.returncode == 0, r.stderr
    (app / "go.sum").unlink()
    mirror = tmp_path / "mirror"
    with FaultServer(root) as srv:
        r = airsync("mirror", "--go-mod", str(app / "go.mod"), "--latest", "--to", str(mirror), "--upstream", srv.url,
                    "--sumdb", db.vkey, "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    # Every listed version is whole; the retracting v1.4.0 is listed, so its retractions are seen.
    assert (mirror / f"{G}/util/@v/list").read_text() == "v1.2.0\nv1.3.0\nv1.4.0\n"
    assert (mirror / f"{G}/util/@latest").read_bytes() == (mirror / f"{G}/util/@v/v1.4.0.info").read_bytes()
    assert (mirror / f"{G}/pz/@latest").read_bytes() == (mirror / f"{G}/pz/@v/{PSEUDO}.info").read_bytes()
    with airsync_serve(mirror) as url:
        for n, goproxy in enumerate((mirror.as_uri(), url)):
            work = tmp_path / f"work{n}"
            shutil.copytree(app, work)
            env = go_env(tmp_path / f"inside{n}", goproxy, goflags="-mod=mod", gosumdb=db.vkey)

            def go(*args: str) -> str:
                r = run_go(list(args), work, env)
                assert r.returncode == 0, f"go {' '.join(args)} ({goproxy}): {r.stderr}"
                return r.stdout + r.stderr

            go("build", "./...")
            listing = go("list", "-m", "-u", "all")
            assert f"{G}/old v1.0.0 (deprecated)" in listing and f"{G}/util v1.3.0 (retracted)" in listing, listing
            assert go("list", "-m", "-versions", f"{G}/util").split() == [f"{G}/util", "v1.2.0"]
            assert go("list", "-m", "-retracted", "-versions", f"{G}/util").split()[1:] == ["v1.2.0", "v1.3.0", "v1.4.0"]
            assert "(retracted)" in go("list", "-m", "-retracted", f"{G}/util@v1.3.0")
            go("get", f"{G}/pz@latest")
            assert f"{G}/util v1.3.0 => v1.2.0" in go("get", f"{G}/util@latest")
