"""Tests for airsync.sample: the synthetic modules and the GOPROXY tree, checked against the real go command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from airsync import sample
from airsync.goproxy.dirhash import hash1, hash_gomod, hash_zip
from airsync.goproxy.modpath import ModuleVersion, proxy_file
from airsync.sample import (
    SampleModule,
    app_gosum,
    big_module,
    build_proxy_tree,
    demo_app_requires,
    demo_modules,
    gosum_lines,
    library_module,
    module_h1,
    small_modules,
    updated_module,
    write_main_module,
)
from tests.helpers.gotool import go_env, require_go

REPO = Path(__file__).resolve().parent.parent


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proxy")
    build_proxy_tree(root, demo_modules())
    return root


# --- the demo graph ------------------------------------------------------------------------------

def test_demo_modules_cover_the_awkward_cases() -> None:
    mods = demo_modules()
    paths = {m.path for m in mods}
    assert 5 <= len(paths) <= 8
    assert all(p.startswith(("example.com/", "example.org/")) for p in paths)
    assert any(p != p.lower() for p in paths), "an upper-case path for '!' escaping"
    assert any(p.endswith("/v2") for m in mods for p in [m.path] if m.version.startswith("v2.")), "a /v2 module"
    versions_of: dict[str, list[str]] = {}
    for m in mods:
        versions_of.setdefault(m.path, []).append(m.version)
    assert any(len(v) >= 2 for v in versions_of.values())
    assert any(sample.semver.is_pseudo(m.version) for m in mods)
    assert any(b"\ngo " not in m.gomod for m in mods), "a go.mod without go line"
    for m in mods:
        assert sample.semver.canonical(m.version) == m.version
        for line in m.gomod.decode().splitlines():
            if line.startswith("go "):
                assert tuple(map(int, line[3:].split("."))) <= (1, 19), "Debian's go is 1.19"
        assert m.gomod.startswith(f"module {m.path}\n".encode())
    # Every requirement of the demo graph exists.
    keys = {m.key for m in mods}
    for m in mods:
        assert set(m.requires) <= keys
    assert set(demo_app_requires()) <= keys


def test_sample_module_validation() -> None:
    with pytest.raises(ValueError, match="go.mod"):
        SampleModule("example.com/x", "v1.0.0", (("x.go", b"package x\n"),))
    with pytest.raises(ValueError, match="canonical"):
        SampleModule("example.com/x", "v1.0", (("go.mod", b"module example.com/x\n"),))
    with pytest.raises(ValueError, match="bad file name"):
        SampleModule("example.com/x", "v1.0.0", (("go.mod", b""), ("../x", b"")))


def test_library_module_source() -> None:
    m = library_module("example.org/greet/v2", "v2.0.0", [("example.com/A", "v1.0.0")],
                       indirect=[("example.com/b", "v0.1.0")], subpackages=["sub/pkg"])
    files = dict(m.files)
    assert files["go.mod"] == (b"module example.org/greet/v2\n\ngo 1.19\n\nrequire (\n"
                               b"\texample.com/A v1.0.0\n\texample.com/b v0.1.0 // indirect\n)\n")
    src = files["greet.go"].decode()
    assert "package greet\n" in src
    assert 'dep0 "example.com/A"' in src and 'dep1 "example.org/greet/v2/sub/pkg"' in src
    assert "func Describe() string" in src
    assert "package pkg\n" in files["sub/pkg/pkg.go"].decode()
    assert m.requires == (("example.com/A", "v1.0.0"), ("example.com/b", "v0.1.0"))
    nogo = library_module("example.com/old", "v1.0.0", go=None)
    assert nogo.gomod == b"module example.com/old\n"


# --- the proxy tree ------------------------------------------------------------------------------

def test_tree_layout_and_escaping(demo_tree: Path) -> None:
    files = tree_files(demo_tree)
    for m in demo_modules():
        for ext in ("info", "mod", "zip"):
            assert proxy_file(m.mv, ext) in files
    assert "example.com/!big!corp/!util/@v/v1.2.0.zip" in files
    assert "example.com/!big!corp/!util/@v/list" in files
    assert "example.org/greet/v2/@v/v2.1.0.mod" in files
    assert "example.com/lib/strs/@v/v1.2.0-rc.1.info" in files
    assert not any(c.isupper() for name in files for c in name), "nothing upper-case on disk"
    assert not any(name.endswith(".tmp-sample") for name in files)
    # Exactly list + 3 files per version.
    assert len(files) == 3 * len(demo_modules()) + len({m.path for m in demo_modules()})


def test_list_sorted_by_semver(tmp_path: Path) -> None:
    vs = ["v1.10.0", "v1.2.0", "v1.2.0-rc.1", "v1.2.0-beta.2", "v1.2.0-beta.10", "v0.9.0", "v1.0.0"]
    build_proxy_tree(tmp_path, [library_module("example.com/Sorted", v) for v in vs])
    listing = (tmp_path / "example.com/!sorted/@v/list").read_text()
    assert listing == "v0.9.0\nv1.0.0\nv1.2.0-beta.2\nv1.2.0-beta.10\nv1.2.0-rc.1\nv1.2.0\nv1.10.0\n"


def test_demo_list_files(demo_tree: Path) -> None:
    assert (demo_tree / "example.com/lib/strs/@v/list").read_text() == "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n"
    assert (demo_tree / "example.com/!big!corp/!util/@v/list").read_text() == "v1.2.0\n"


def test_info_json(demo_tree: Path) -> None:
    for m in demo_modules():
        raw = (demo_tree / proxy_file(m.mv, "info")).read_bytes()
        info = json.loads(raw)
        assert info == {"Version": m.version, "Time": m.time}
        assert info["Time"].endswith("Z") and "T" in info["Time"]
    pseudo = next(m for m in demo_modules() if sample.semver.is_pseudo(m.version))
    # A pseudo-version's timestamp matches its .info time.
    stamp = pseudo.version.split("-")[1]
    assert pseudo.time.replace("-", "").replace(":", "").replace("T", "").rstrip("Z") == stamp


def test_zip_contents(demo_tree: Path) -> None:
    for m in demo_modules():
        zpath = demo_tree / proxy_file(m.mv, "zip")
        with zipfile.ZipFile(zpath) as zf:
            names = zf.namelist()
            prefix = f"{m.path}@{m.version}/"  # unescaped, upper case kept
            assert all(n.startswith(prefix) for n in names)
            assert names == sorted(names)
            assert zf.read(prefix + "go.mod") == (demo_tree / proxy_file(m.mv, "mod")).read_bytes()
            assert {n[len(prefix):]: zf.read(n) for n in names} == dict(m.files)
            for zi in zf.infolist():
                assert zi.date_time == (1980, 1, 1, 0, 0, 0)
                assert zi.compress_type == zipfile.ZIP_DEFLATED
                assert not zi.is_dir()
        assert hash_zip(zpath) == module_h1(m)


def test_rebuild_is_byte_identical(tmp_path: Path, demo_tree: Path) -> None:
    other = tmp_path / "again"
    build_proxy_tree(other, demo_modules())
    assert tree_files(other) == tree_files(demo_tree)
    # Rebuilding in place rewrites nothing (mtimes stay).
    before = {p: p.stat().st_mtime_ns for p in other.rglob("*") if p.is_file()}
    os.utime(next(iter(before)), ns=(1, 1))
    before[next(iter(before))] = 1
    build_proxy_tree(other, demo_modules())
    after = {p: p.stat().st_mtime_ns for p in other.rglob("*") if p.is_file()}
    assert after == before
    # A changed file is put right.
    victim = other / "example.com/tools/@v/v0.3.1.zip"
    victim.write_bytes(b"junk")
    build_proxy_tree(other, demo_modules())
    assert victim.read_bytes() == (demo_tree / "example.com/tools/@v/v0.3.1.zip").read_bytes()


# --- go.sum --------------------------------------------------------------------------------------

def test_dirhash_vectors_used_by_gosum() -> None:
    assert hash1([("abc", b"data for abc"), ("xyz", b"data for xyz")]) == \
        "h1:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8="
    assert hash_gomod(b"") == "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="


def test_gosum_lines_format() -> None:
    a1 = library_module("example.com/a", "v1.10.0")
    a2 = library_module("example.com/a", "v1.9.0")
    b = library_module("example.com/B", "v0.1.0")
    text = gosum_lines([a1, a2, b], go_mod_only=[("example.com/a", "v1.9.0")])
    lines = text.splitlines()
    assert [ln.rsplit(" ", 1)[0] for ln in lines] == [
        "example.com/B v0.1.0",
        "example.com/B v0.1.0/go.mod",
        "example.com/a v1.9.0/go.mod",
        "example.com/a v1.10.0",
        "example.com/a v1.10.0/go.mod",
    ]
    assert lines[0].endswith(module_h1(b)) and lines[1].endswith(hash_gomod(b.gomod))
    assert text.endswith("\n")


def test_app_gosum_demo_shape() -> None:
    text = app_gosum(demo_modules(), demo_app_requires())
    keys = [ln.rsplit(" ", 1)[0] for ln in text.splitlines()]
    assert "example.com/lib/strs v1.0.0/go.mod" in keys
    assert "example.com/lib/strs v1.0.0" not in keys  # only reachable through the go.mod graph
    assert "example.com/BigCorp/Util v1.2.0" in keys  # indirect, but its package is built
    assert not any("rc.1" in k for k in keys)
    with pytest.raises(ValueError, match="not among"):
        app_gosum(demo_modules(), [("example.com/nope", "v1.0.0")])


# --- benchmark payloads ----------------------------------------------------------------------------

def test_big_module(tmp_path: Path) -> None:
    m = big_module("example.com/big/b00", "v1.0.0", 300_000, seed=7)
    assert not m.compress
    data = b"".join(d for n, d in m.files if n.startswith("data/"))
    assert len(data) == 300_000
    assert big_module("example.com/big/b00", "v1.0.0", 300_000, seed=7) == m
    assert big_module("example.com/big/b00", "v1.0.0", 300_000, seed=8) != m
    build_proxy_tree(tmp_path, [m])
    zpath = tmp_path / proxy_file(m.mv, "zip")
    assert 300_000 < zpath.stat().st_size < 302_000
    with zipfile.ZipFile(zpath) as zf:
        assert all(zi.compress_type == zipfile.ZIP_STORED for zi in zf.infolist())
        assert len(zf.namelist()) >= 3
    assert hash_zip(zpath) == module_h1(m)


def test_small_modules() -> None:
    mods = small_modules(25, seed=3)
    assert len(mods) == 25 and len({m.path for m in mods}) == 25
    assert small_modules(25, seed=3) == mods
    assert small_modules(25, seed=4) != mods
    assert all(m.size() < 1000 for m in mods)


def _blocks_kept(old: bytes, new: bytes, size: int = 4096) -> float:
    """Share of old's aligned blocks found anywhere in new."""
    blocks = [old[i:i + size] for i in range(0, len(old) - size + 1, size)]
    return sum(1 for b in blocks if b in new) / len(blocks)


def test_updated_module_big(tmp_path: Path) -> None:
    old = big_module("example.com/big/b00", "v1.0.0", 4_000_000, seed=7)
    new = updated_module(old, "v1.1.0", seed=5, change=0.02, runs=4, shifts=3, add=10_000)
    assert (new.path, new.version, new.compress, new.requires) == (old.path, "v1.1.0", False, old.requires)
    assert updated_module(old, "v1.1.0", seed=5, change=0.02, runs=4, shifts=3, add=10_000) == new
    assert updated_module(old, "v1.1.0", seed=6, change=0.02, runs=4, shifts=3, add=10_000) != new
    a, b = dict(old.files), dict(new.files)
    assert set(b) == set(a) | {"data/v1.1.0.bin"} and len(b["data/v1.1.0.bin"]) == 10_000
    assert b["go.mod"] == a["go.mod"]
    changed = [n for n in a if n.startswith("data/") and a[n] != b[n]]
    assert changed == ["data/part00.bin"]  # the largest file, the first of equals
    edited = b[changed[0]]
    assert len(edited) != len(a[changed[0]]) or edited != a[changed[0]]
    assert abs(len(edited) - len(a[changed[0]])) <= 3 * 64
    assert 0.9 <= _blocks_kept(a[changed[0]], edited) < 1.0  # 2% overwritten in 4 runs, 3+3 shifts: <= 14 of 244 blocks
    assert b"example.com/big/b00@v1.1.0" in b["b00.go"] and b"@v1.0.0" not in b["b00.go"]
    build_proxy_tree(tmp_path, [old, new])
    zpath = tmp_path / proxy_file(new.mv, "zip")
    with zipfile.ZipFile(zpath) as zf:
        assert all(zi.compress_type == zipfile.ZIP_STORED for zi in zf.infolist())
    assert hash_zip(zpath) == module_h1(new) != module_h1(old)
    assert (tmp_path / "example.com/big/b00/@v/list").read_text() == "v1.0.0\nv1.1.0\n"
    with pytest.raises(ValueError):
        updated_module(old, "v1.0.0", seed=1)
    with pytest.raises(ValueError):
        updated_module(old, "v1.2.0", seed=1, file="nope.bin")


def test_updated_module_source() -> None:
    src = b"// Helper docs.\npackage m\n\n// One does one thing.\nfunc One() int { return 1 }\n"
    old = library_module("example.com/lib/m0", "v1.0.0", extra_files=[("one.go", src)])
    new = updated_module(old, "v1.0.1", seed=3, file="one.go", runs=2, shifts=1)
    assert new.compress and new.version == "v1.0.1"
    a, b = dict(old.files), dict(new.files)
    assert set(a) == set(b)
    assert b["m0.go"] == a["m0.go"].replace(b"@v1.0.0", b"@v1.0.1")
    edited = b["one.go"]
    assert edited.isascii() and edited != src
    lines = edited.splitlines()
    assert sum(1 for ln in lines if ln.startswith(b"// revision note ")) == 2
    assert [ln for ln in lines if not ln.startswith(b"//")] == [ln for ln in src.splitlines() if not ln.startswith(b"//")]
    assert len(lines) == len(src.splitlines()) + 2 - 1  # two comment lines in, one out


def test_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    tree = tmp_path / "tree"
    r = subprocess.run([sys.executable, "-m", "airsync.sample", "build", str(tree), "--big", "2:10K",
                        "--small", "3"], env=env, capture_output=True, text=True, check=True)
    assert "wrote 13 module versions" in r.stdout
    assert (tree / "example.com/big/b01/@v/v1.0.0.zip").stat().st_size > 10_000
    assert (tree / "example.com/small/m0002/@v/list").read_text() == "v1.0.0\n"
    assert (tree / "example.com/!big!corp/!util/@v/v1.2.0.mod").exists()
    app = tmp_path / "app"
    subprocess.run([sys.executable, "-m", "airsync.sample", "app", str(app), "--gosum"], env=env,
                   capture_output=True, check=True)
    assert (app / "go.sum").read_text() == app_gosum(demo_modules(), demo_app_requires())
    assert b"func main()" in (app / "main.go").read_bytes()
    bad = subprocess.run([sys.executable, "-m", "airsync.sample", "build", str(tree), "--big", "x"],
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "N:SIZE" in bad.stderr


def test_write_main_module(tmp_path: Path) -> None:
    write_main_module(tmp_path, [("example.org/greet/v2", "v2.1.0"), ("example.com/BigCorp/Util", "v1.2.0")],
                      module_path="example.net/x")
    gomod = (tmp_path / "go.mod").read_text()
    assert gomod.startswith("module example.net/x\n\ngo 1.19\n")
    assert "\texample.com/BigCorp/Util v1.2.0\n" in gomod
    main_go = (tmp_path / "main.go").read_text()
    assert 'm0 "example.com/BigCorp/Util"' in main_go and "m1.Describe()" in main_go


# --- against the real go command -------------------------------------------------------------------

@pytest.fixture(scope="module")
def go() -> str:
    return require_go()


def run_go(go: str, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([go, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.e2e
def test_go_tidy_gosum_equals_ours(go: str, demo_tree: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write_main_module(app, demo_app_requires())
    env = go_env(tmp_path, demo_tree.as_uri())
    r = run_go(go, ["mod", "tidy"], app, env)
    assert r.returncode == 0, r.stderr
    assert (app / "go.sum").read_text() == app_gosum(demo_modules(), demo_app_requires())
    r = run_go(go, ["build", "-o", "app", "."], app, env)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(app / "app")], capture_output=True, text=True, check=True, timeout=60).stdout
    assert "example.org/greet/v2@v2.1.0 [example.com/BigCorp/Util@v1.2.0 [example.com/lib/strs@v1.1.0]]" in out
    assert "example.org/legacy@v1.0.0 [example.com/lib/strs@v1.1.0]" in out
    assert "example.com/tools@v0.3.1 [example.com/tools/fmtx@v0.3.1]" in out
    assert sample.PSEUDO_VERSION in out
    # The go command's own download cache holds byte-identical copies of what we served.
    dl = tmp_path / "gomodcache/cache/download"
    for m in demo_modules():
        cached = dl / proxy_file(m.mv, "mod")
        if cached.exists():
            assert cached.read_bytes() == m.gomod
        czip = dl / proxy_file(m.mv, "zip")
        if czip.exists():
            assert czip.read_bytes() == (demo_tree / proxy_file(m.mv, "zip")).read_bytes()


@pytest.mark.e2e
def test_go_readonly_build_with_our_gosum(go: str, demo_tree: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write_main_module(app, demo_app_requires())
    # The go.mod tidy would write (go 1.17+ lists indirect requirements too).
    with open(app / "go.mod", "a") as f:
        f.write("\nrequire example.com/BigCorp/Util v1.2.0 // indirect\n")
    (app / "go.sum").write_text(app_gosum(demo_modules(), demo_app_requires()))
    env = go_env(tmp_path, demo_tree.as_uri(), goflags="-mod=readonly")
    r = run_go(go, ["build", "-o", "app", "."], app, env)
    assert r.returncode == 0, r.stderr
    # A wrong hash is caught by the go command (fresh module cache, so it downloads again).
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = {**env, "GOPATH": str(fresh / "gopath"), "GOMODCACHE": str(fresh / "gomodcache")}
    good = module_h1(next(m for m in demo_modules() if m.path == sample.TOOLS))
    (app / "go.sum").write_text((app / "go.sum").read_text().replace(good, hash1([("x", b"y")])))
    r = run_go(go, ["build", "-o", "app", "."], app, env)
    assert r.returncode != 0
    assert "checksum mismatch" in r.stderr or "SECURITY ERROR" in r.stderr


@pytest.mark.e2e
def test_go_mod_download_big_and_small(go: str, tmp_path: Path) -> None:
    mods = [big_module("example.com/big/b00", "v1.0.0", 2_000_000, seed=1), *small_modules(5, seed=1)]
    tree = tmp_path / "tree"
    build_proxy_tree(tree, mods)
    app = tmp_path / "app"
    reqs = [m.key for m in mods]
    write_main_module(app, reqs)
    (app / "go.sum").write_text(app_gosum(mods, reqs))
    env = go_env(tmp_path, tree.as_uri(), goflags="-mod=readonly")
    r = run_go(go, ["build", "-o", "app", "."], app, env)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(app / "app")], capture_output=True, text=True, check=True, timeout=60).stdout
    assert "example.com/big/b00@v1.0.0" in out and "example.com/small/m0004@v1.0.0" in out


def test_module_version_type_is_shared() -> None:
    m = demo_modules()[0]
    assert m.mv == ModuleVersion(m.path, m.version)
