"""End to end: the airsync CLI mirrors the sample modules from a real nginx, and the real go command builds
the sample app offline from the mirror.

The upstream is the ``airsync.sample`` GOPROXY tree served by nginx on 127.0.0.1 (tests/helpers/nginx.py). The
app's go.sum is written by ``go mod tidy`` against that nginx, so the inputs are exactly what a user
has. Every go command runs in a built-from-nothing environment (tests/helpers/gotool.py) whose GOPROXY is either
the local nginx or a ``file://`` directory, with the checksum database off: nothing here can reach the
internet. go and nginx are required; a missing one fails the test with the package to install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from airsync import sample
from airsync.goproxy import semver
from airsync.goproxy.dirhash import hash1
from airsync.goproxy.modpath import ModuleVersion, latest_file, list_file, proxy_file
from tests.helpers.gotool import go_env, require_go, run_go
from tests.helpers.nginx import Nginx, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

# Versions whose semver order differs from byte order (v1.10.0 > v1.9.0; numeric prerelease
# identifiers compare as numbers, so beta.2 < beta.10; a prerelease sorts before its release).
ORDER = "example.com/semver/order"
ORDER_VERSIONS = ["v1.10.0", "v1.2.0", "v1.9.0-beta.10", "v1.9.0", "v1.9.0-beta.2", "v0.9.0"]
ORDER_SORTED = ["v0.9.0", "v1.2.0", "v1.9.0-beta.2", "v1.9.0-beta.10", "v1.9.0", "v1.10.0"]

APP_OUTPUT = [
    "example.org/greet/v2@v2.1.0 [example.com/BigCorp/Util@v1.2.0 [example.com/lib/strs@v1.1.0]]",
    "example.org/legacy@v1.0.0 [example.com/lib/strs@v1.1.0]",
    "example.com/tools@v0.3.1 [example.com/tools/fmtx@v0.3.1]",
    f"example.com/pseudo@{sample.PSEUDO_VERSION}",
    "example.com/lib/strs@v1.1.0",
]

_PROXY_FILE = re.compile(r"(@v/(list|[^/]+\.(info|mod|zip))|/@latest)$")


# --- helpers --------------------------------------------------------------------------------------

def airsync_env() -> dict[str, str]:
    """The caller's environment without proxy settings (httpx would honour them, even for 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_airsync(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    # This upstream carries no checksum database (tests/test_sumdb_e2e.py covers one that does).
    if args and args[0] == "mirror" and "--sumdb" not in args:
        args = (*args, "--sumdb", "off")
    r = subprocess.run(
        [sys.executable, "-m", "airsync", *args],  # stderr is not a terminal: JSON log lines
        capture_output=True, text=True, timeout=timeout, env=airsync_env(), stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, show(r)
    return r


def show(r: subprocess.CompletedProcess[str]) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def summary(r: subprocess.CompletedProcess[str]) -> dict:
    """The structured summary record of a mirror run (its JSON log line on stderr)."""
    for line in r.stderr.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("event") == "summary":
                return rec
    raise AssertionError(f"no summary log line\n{show(r)}")


def mirror_args(app: Path, mirror: Path, upstream: str, *extra: str) -> list[str]:
    return ["mirror", "--go-sum", str(app / "go.sum"), "--go-mod", str(app / "go.mod"),
            "--to", str(mirror), "--upstream", upstream, *extra]


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file of a GOPROXY tree, by relative path, leaving out airsync's private workspace."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != ".airsync"
    }


def expected_files(gosum: str) -> set[str]:
    """The proxy files a pinned build of a go.sum needs: .info/.mod always, .zip for zip lines,
    lists, and @latest beside each list."""
    want: set[str] = set()
    for line in gosum.splitlines():
        path, version, _ = line.split()
        if version.endswith("/go.mod"):
            mv = ModuleVersion(path, version.removesuffix("/go.mod"))
            want |= {proxy_file(mv, "info"), proxy_file(mv, "mod")}
        else:
            want |= {proxy_file(ModuleVersion(path, version), "zip"), list_file(path), latest_file(path)}
    return want


def assert_clean_tree(mirror: Path) -> None:
    """Only GOPROXY files outside .airsync, no temporary or partial files anywhere in the tree."""
    for p in mirror.rglob("*"):
        rel = p.relative_to(mirror)
        if rel.parts[0] == ".airsync" or p.is_dir():
            continue
        assert p.is_file() and not p.is_symlink(), f"unexpected non-file {rel}"
        assert _PROXY_FILE.search(rel.as_posix()), f"stray file in the mirror tree: {rel}"
        assert p.stat().st_size > 0, f"empty file in the mirror tree: {rel}"


def assert_lists_sorted(mirror: Path) -> None:
    lists = [p for p in mirror.rglob("list") if p.parent.name == "@v" and ".airsync" not in p.parts]
    assert lists
    for p in lists:
        text = p.read_text()
        assert text.endswith("\n"), p
        versions = [line.split()[0] for line in text.splitlines()]
        assert versions and all(semver.is_valid(v) for v in versions), (p, text)
        assert len(set(versions)) == len(versions), f"duplicates in {p}: {versions}"
        assert versions == sorted(versions, key=semver.sort_key), f"{p} is not in semver order: {versions}"


def go_build_offline(go: str, app: Path, mirror: Path, gohome: Path, out: Path) -> str:
    """Build the app against file://mirror with a brand-new module cache and run it; return its output."""
    work = gohome / "app"
    shutil.copytree(app, work)  # a clean copy: the build must not change go.mod/go.sum
    env = go_env(gohome, mirror.as_uri())
    env["GOFLAGS"] = "-mod=readonly"  # a pinned build: go.sum must already hold every hash
    assert not any((gohome / "gomodcache").iterdir()), "module cache is not fresh"
    r = run_go(["build", "-o", str(out), "."], work, env)
    assert r.returncode == 0, f"offline go build failed:\n{r.stderr}"
    r = run_go(["mod", "verify"], work, env)
    assert r.returncode == 0 and "all modules verified" in r.stdout, f"go mod verify:\n{r.stdout}{r.stderr}"
    assert (work / "go.sum").read_bytes() == (app / "go.sum").read_bytes()
    assert (work / "go.mod").read_bytes() == (app / "go.mod").read_bytes()
    return subprocess.run([str(out)], capture_output=True, text=True, check=True, timeout=60).stdout


# --- shared inputs --------------------------------------------------------------------------------

@dataclass
class Upstream:
    tree: Path  # the GOPROXY directory nginx serves
    app: Path  # go.mod, go.sum (written by go mod tidy), main.go


@pytest.fixture(scope="module")
def go() -> str:
    return require_go()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, go: str) -> Upstream:
    """The sample GOPROXY tree plus a module whose versions test @v/list ordering; the tidied app."""
    base = tmp_path_factory.mktemp("upstream")
    tree = base / "tree"
    r = subprocess.run([sys.executable, "-m", "airsync.sample", "build", str(tree)],
                       capture_output=True, text=True, env=airsync_env(), timeout=120)
    assert r.returncode == 0, show(r)
    sample.build_proxy_tree(tree, [sample.library_module(ORDER, v) for v in ORDER_VERSIONS])

    app = base / "app"
    sample.write_main_module(app, sample.demo_app_requires())
    with Nginx(tree, base / "nginx") as ngx:
        r = run_go(["mod", "tidy"], app, go_env(base / "gohome", ngx.url))
        assert r.returncode == 0, f"go mod tidy against nginx failed:\n{r.stderr}"
        assert ngx.request_count() > 0
    gosum = (app / "go.sum").read_text()
    # The go command's go.sum is the one the sample module predicts (a sanity check of the inputs).
    assert gosum == sample.app_gosum(sample.demo_modules(), sample.demo_app_requires())
    assert "/go.mod h1:" in gosum and "example.com/lib/strs v1.0.0/go.mod" in gosum
    return Upstream(tree, app)


@dataclass
class Mirrored:
    mirror: Path
    upstream_url: str  # the nginx that served it, stopped when the fixture returns
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    served_first: int  # bytes nginx sent during the first run
    requests_first: int
    requests_second: int  # requests nginx saw during the second run


@pytest.fixture(scope="module")
def mirrored(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Mirrored:
    """The main job: mirror the app's go.sum/go.mod from nginx, then run it again."""
    base = tmp_path_factory.mktemp("mirrored")
    mirror = base / "mirror"
    with Nginx(upstream.tree, base / "nginx") as ngx:
        first = run_airsync(*mirror_args(upstream.app, mirror, ngx.url))
        served, n1 = ngx.served_bytes(), ngx.request_count()
        second = run_airsync(*mirror_args(upstream.app, mirror, ngx.url))
        n2 = ngx.request_count() - n1
    assert not ngx.running
    return Mirrored(mirror, ngx.url, first, second, served, n1, n2)


# --- the main job ---------------------------------------------------------------------------------

def test_mirror_from_nginx_exits_0_with_exact_files(mirrored: Mirrored, upstream: Upstream) -> None:
    assert mirrored.first.returncode == 0, show(mirrored.first)
    assert "failed 0" in mirrored.first.stdout
    got = tree_files(mirrored.mirror)
    assert set(got) == expected_files((upstream.app / "go.sum").read_text())
    for rel, data in got.items():
        if not rel.endswith(("/list", "/@latest")):
            assert data == (upstream.tree / rel).read_bytes(), f"{rel} differs from upstream"
    # Each of the 20 files came over HTTP once: nginx sent at least their sizes and not much more
    # (the rest are response bodies for the odd probe, none expected here).
    size = sum(len(d) for rel, d in got.items() if not rel.endswith(("/list", "/@latest")))
    assert size <= mirrored.served_first <= 2 * size, (size, mirrored.served_first)


def test_offline_go_build_from_mirror(mirrored: Mirrored, upstream: Upstream, go: str, tmp_path: Path) -> None:
    assert mirrored.first.returncode == 0, show(mirrored.first)
    # No server is running any more (the fixture's nginx has stopped): GOPROXY is only the directory.
    port = int(mirrored.upstream_url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    out = go_build_offline(go, upstream.app, mirrored.mirror, tmp_path / "gohome", tmp_path / "app.bin")
    for line in APP_OUTPUT:
        assert line in out, out
    # What the go command downloaded is byte for byte what the mirror holds.
    dl = tmp_path / "gohome/gomodcache/cache/download"
    for rel in tree_files(mirrored.mirror):
        if rel.endswith((".zip", ".mod")) and (dl / rel).exists():
            assert (dl / rel).read_bytes() == (mirrored.mirror / rel).read_bytes(), rel


def test_second_run_makes_no_requests(mirrored: Mirrored) -> None:
    assert mirrored.second.returncode == 0, show(mirrored.second)
    assert mirrored.requests_first > 0
    assert mirrored.requests_second == 0, "a rerun over a complete mirror must not contact the upstream"
    assert re.search(r"fetched 0 files .* skipped 20 already mirrored; failed 0", mirrored.second.stdout), \
        mirrored.second.stdout


def test_no_stray_files_and_sorted_lists(mirrored: Mirrored) -> None:
    assert_clean_tree(mirrored.mirror)
    assert_lists_sorted(mirrored.mirror)
    partial = mirrored.mirror / ".airsync/partial"
    assert not partial.exists() or not any(partial.iterdir()), list(partial.iterdir())
    rejected = mirrored.mirror / ".airsync/rejected"
    assert not rejected.exists() or not any(rejected.iterdir())


def test_list_is_semver_sorted_across_runs(upstream: Upstream, tmp_path: Path, go: str) -> None:
    mirror = tmp_path / "mirror"
    first, rest = ORDER_VERSIONS[:3], ORDER_VERSIONS[3:]
    with Nginx(upstream.tree, tmp_path / "nginx") as ngx:
        for batch in (first, rest):
            args = [a for v in batch for a in ("--module", f"{ORDER}@{v}")]
            r = run_airsync("mirror", "--to", str(mirror), "--upstream", ngx.url, *args)
            assert r.returncode == 0, show(r)
            assert "not hash-pinned" in r.stdout  # --module without go.sum: fetched, but flagged
    lst = (mirror / list_file(ORDER)).read_text()
    assert lst.splitlines() == ORDER_SORTED
    assert_lists_sorted(mirror)
    assert_clean_tree(mirror)
    # The go command reads the list the same way.
    env = go_env(tmp_path / "gohome", mirror.as_uri())
    r = run_go(["list", "-m", "-versions", ORDER], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [ORDER, *ORDER_SORTED]


def test_files_are_fetched_concurrently_over_latency(upstream: Upstream, tmp_path: Path) -> None:
    """With 150 ms before every response, 20 files one after another would take at least 3 s."""
    mirror = tmp_path / "mirror"
    with Nginx(upstream.tree, tmp_path / "nginx", delay_ms=150) as ngx:
        r = run_airsync(*mirror_args(upstream.app, mirror, ngx.url))
        reqs = ngx.requests()
    assert r.returncode == 0, show(r)
    rec = summary(r)
    assert rec["fetched"] == 20 and rec["failed"] == 0, rec
    assert len(reqs) == 20 and all(q.status in (200, 206) for q in reqs), reqs
    assert rec["seconds"] < 20 * 0.150, f"no concurrency: {rec['seconds']} s for 20 files"


# --- verification failures ------------------------------------------------------------------------

def test_wrong_zip_hash_is_rejected_and_kept_aside(upstream: Upstream, tmp_path: Path) -> None:
    tools = next(m for m in sample.demo_modules() if m.key == (sample.TOOLS, "v0.3.1"))
    good = sample.module_h1(tools)
    bad = hash1([("x", b"y")])
    app = tmp_path / "app"
    shutil.copytree(upstream.app, app)
    gosum = (app / "go.sum").read_text()
    assert gosum.count(good) == 1
    (app / "go.sum").write_text(gosum.replace(good, bad))
    mirror = tmp_path / "mirror"
    with Nginx(upstream.tree, tmp_path / "nginx") as ngx:
        r = run_airsync(*mirror_args(app, mirror, ngx.url))
    assert r.returncode == 1, show(r)
    out = r.stdout + r.stderr
    assert "example.com/tools@v0.3.1" in out and bad in out and good in out, show(r)
    zip_rel = proxy_file(tools.mv, "zip")
    # Nothing published for that file (and the module is not listed), everything else is there.
    assert not (mirror / zip_rel).exists()
    assert not (mirror / list_file(sample.TOOLS)).exists()
    got = tree_files(mirror)
    assert set(got) == expected_files(gosum) - {zip_rel, list_file(sample.TOOLS), latest_file(sample.TOOLS)}
    # The downloaded bytes are kept for inspection, outside the GOPROXY tree.
    rejected = list((mirror / ".airsync/rejected").iterdir())
    assert len(rejected) == 1, rejected
    assert rejected[0].read_bytes() == (upstream.tree / zip_rel).read_bytes()
    assert str(rejected[0].relative_to(mirror)) in out or rejected[0].name in out
    assert_clean_tree(mirror)


def test_bad_inputs_are_reported_and_the_rest_is_mirrored(upstream: Upstream, tmp_path: Path) -> None:
    good_sum = (upstream.app / "go.sum").read_text().splitlines(keepends=True)
    h = sample.module_h1(sample.demo_modules()[0])
    bad_lines = {
        3: "example.com/lib/strs v1.1.0\n",  # two fields
        6: f"example.com/../evil v1.0.0 {h}\n",  # '..' path element
        9: "example.com/tools v0.3.1 h1:notbase64!\n",  # malformed hash
    }
    lines = list(good_sum)
    for lineno in sorted(bad_lines):
        lines.insert(lineno - 1, bad_lines[lineno])
    gosum = tmp_path / "go.sum"
    gosum.write_text("".join(lines))
    for lineno, text in bad_lines.items():
        assert gosum.read_text().splitlines()[lineno - 1] == text.rstrip("\n")
    modules = tmp_path / "modules.txt"
    modules.write_text("# wanted modules\nexample.com/a/../b@v1.0.0\n")
    missing = tmp_path / "no-such.sum"
    a_dir = tmp_path / "a-directory.sum"
    a_dir.mkdir()
    unreadable: list[Path] = [missing, a_dir]
    if os.geteuid() != 0:  # root reads anything; mode 000 only stops other users
        locked = tmp_path / "locked.sum"
        locked.write_text("".join(good_sum))
        locked.chmod(0)
        unreadable.append(locked)

    mirror = tmp_path / "mirror"
    with Nginx(upstream.tree, tmp_path / "nginx") as ngx:
        args = ["mirror", "--go-sum", str(gosum), "--to", str(mirror), "--upstream", ngx.url,
                "--modules-file", str(modules), "--module", "example.com/x/../y@v1.0.0"]
        for p in unreadable:
            args += ["--go-sum", str(p)]
        r = run_airsync(*args)
    assert r.returncode == 1, show(r)
    err = r.stderr
    for lineno in bad_lines:
        assert f"{gosum}:{lineno}:" in err, show(r)
    assert f"{modules}:2:" in err, show(r)
    assert "example.com/x/../y" in err, show(r)
    for p in unreadable:
        assert f"{p}: cannot read" in err, show(r)
    assert re.search(rf"{len(bad_lines) + 2 + len(unreadable)} input problem", err), show(r)
    # Everything the good lines ask for was still mirrored; the bad paths left no trace.
    assert set(tree_files(mirror)) == expected_files("".join(good_sum))
    assert not any(".." in p.name or p.name == "evil" for p in mirror.rglob("*"))
    assert not (tmp_path / "evil").exists() and not (mirror.parent / "b").exists()
    assert_clean_tree(mirror)


# --- upstream settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["dead-pipe-nginx", "empty-comma-nginx", "file"])
def test_upstream_lists_and_file_urls(kind: str, upstream: Upstream, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    with Nginx(upstream.tree, tmp_path / "nginx") as ngx:
        if kind == "dead-pipe-nginx":
            # Connection refused on the first entry; '|' moves on after any error. Few retries keep
            # the test quick (each file backs off before giving up on the dead entry).
            spec, extra = f"http://127.0.0.1:{free_port()}|{ngx.url}", ["--retries", "2"]
        elif kind == "empty-comma-nginx":
            empty = tmp_path / "empty"
            empty.mkdir()
            spec, extra = f"{empty.as_uri()},{ngx.url}", []  # 404 everywhere, then ','
        else:
            spec, extra = upstream.tree.as_uri(), []
        r = run_airsync(*mirror_args(upstream.app, mirror, spec, *extra))
        served = ngx.served_bytes()
    assert r.returncode == 0, show(r)
    got = tree_files(mirror)
    assert set(got) == expected_files((upstream.app / "go.sum").read_text())
    for rel, data in got.items():
        if not rel.endswith(("/list", "/@latest")):
            assert data == (upstream.tree / rel).read_bytes(), rel
    assert (served == 0) == (kind == "file")
    assert_clean_tree(mirror)
    assert_lists_sorted(mirror)


def test_dead_upstream_after_comma_is_not_skipped(upstream: Upstream, tmp_path: Path) -> None:
    """',' only moves on after 404/410: a refused connection on the first entry fails the files."""
    mirror = tmp_path / "mirror"
    with Nginx(upstream.tree, tmp_path / "nginx") as ngx:
        r = run_airsync(*mirror_args(upstream.app, mirror, f"http://127.0.0.1:{free_port()},{ngx.url}",
                                     "--retries", "1"))
        assert ngx.request_count() == 0
    assert r.returncode == 1, show(r)
    assert tree_files(mirror) == {}


@pytest.mark.parametrize("spec", ["direct", "{dead},direct", "{dead}|off"])
def test_direct_and_off_are_refused(spec: str, upstream: Upstream, tmp_path: Path) -> None:
    # Only 127.0.0.1 in the list: even a regression that skipped the check could not go online.
    spec = spec.format(dead=f"http://127.0.0.1:{free_port()}")
    mirror = tmp_path / "mirror"
    r = run_airsync(*mirror_args(upstream.app, mirror, spec))
    assert r.returncode == 2, show(r)
    word = re.split(r"[,|]", spec)[-1]
    assert f"GOPROXY entry '{word}' is not supported" in r.stderr, show(r)
    assert r.stderr.count("\n") <= 2, show(r)  # one clear message, no log noise
    assert not mirror.exists(), "nothing may be done on a usage error"
