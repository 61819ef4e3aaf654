"""The real govulncheck, offline, against the vulnerability database airsync carried.

Border: a module upstream on 127.0.0.1 holds github.com/hashicorp/go-slug at v0.4.0 (vulnerable:
GO-2021-0094, its ``Unpack`` follows symlinks out of the target directory) and v0.5.0 (the fix),
made here with the package and symbol the real entry names; a vulnerability database of real
entries is served beside it. ``airsync mirror`` takes both in one run, ``sync`` carries them to a
medium, ``import`` brings the medium into an inside mirror, ``serve`` serves that. Inside, with no
network: govulncheck (v1.9.0, installed by scripts/setup --test) scans a program that calls
``slug.Unpack`` against ``-db file:///MEDIUM/vulndb`` and ``-db http://127.0.0.1:PORT/vulndb``: it
reports GO-2021-0094 for v0.4.0, nothing for v0.5.0.
"""

import subprocess
from pathlib import Path

import pytest

from airsync import sample
from tests.helpers import vulndbserver
from tests.helpers.cli import airsync
from tests.helpers.faultserver import FaultServer
from tests.helpers.gotool import go_env
from tests.helpers.serving import airsync_serve

pytestmark = pytest.mark.e2e

GOVULNCHECK = Path(__file__).resolve().parents[2] / ".cache" / "bin" / "govulncheck"
SLUG = "github.com/hashicorp/go-slug"
IDS = ["GO-2021-0094", "GO-2022-0969", "GO-2020-0048", "GO-2022-0603"]


def require_govulncheck() -> str:
    if not GOVULNCHECK.is_file():
        pytest.fail(f"{GOVULNCHECK} missing: run scripts/setup --test (it installs govulncheck)", pytrace=False)
    return str(GOVULNCHECK)


def slug(version: str) -> sample.SampleModule:
    code = (b"// Package slug is a stand-in for the real one, for govulncheck to find.\npackage slug\n\n"
            b'import "io"\n\n// Unpack is the function GO-2021-0094 names.\n'
            b"func Unpack(r io.Reader, dst string) error {\n\t_, err := io.Copy(io.Discard, r)\n\treturn err\n}\n")
    return sample.SampleModule(SLUG, version, (("go.mod", sample.gomod_text(SLUG)), ("slug.go", code)))


def app(dir: Path, version: str) -> Path:
    dir.mkdir(parents=True)
    (dir / "go.mod").write_bytes(sample.gomod_text("example.net/app", [(SLUG, version)]))
    (dir / "main.go").write_text('package main\n\nimport (\n\t"strings"\n\n\tslug "github.com/hashicorp/go-slug"\n)\n\n'
                                 'func main() {\n\t_ = slug.Unpack(strings.NewReader(""), "out")\n}\n')
    (dir / "go.sum").write_text(sample.app_gosum([slug(version)], [(SLUG, version)]))
    return dir


def govulncheck(app_dir: Path, db: str, goproxy: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = go_env(tmp, goproxy, goflags="-mod=mod")
    return subprocess.run([require_govulncheck(), "-db", db, "./..."], cwd=app_dir, env=env,
                          capture_output=True, text=True, timeout=300)


def test_govulncheck_inside_the_gap(tmp_path):
    require_govulncheck()
    up = tmp_path / "upstream"
    sample.build_proxy_tree(up, [slug("v0.4.0"), slug("v0.5.0")])
    vdb = vulndbserver.build(tmp_path / "vulndb-upstream", vulndbserver.load(IDS))
    bad, good = app(tmp_path / "bad", "v0.4.0"), app(tmp_path / "good", "v0.5.0")
    mirror = tmp_path / "mirror"
    with FaultServer(up) as modules, vulndbserver.serve(vdb) as vulns:
        r = airsync("mirror", "--go-sum", bad / "go.sum", "--go-sum", good / "go.sum", "--to", mirror,
                    "--upstream", modules.url, "--sumdb", "off", "--vulndb", vulns.url)
        assert r.returncode == 0, r.stdout + r.stderr
    assert "4 entries fetched" in r.stdout

    medium, inside = tmp_path / "usb", tmp_path / "inside"
    medium.mkdir()
    assert airsync("keygen", "--out", tmp_path / "border").returncode == 0
    r = airsync("sync", "--mirror", mirror, "--to", medium, "--signing-key", tmp_path / "border.key")
    assert r.returncode == 0, r.stderr
    r = airsync("import", medium, "--into", inside, "--key", tmp_path / "border.pub")
    assert r.returncode == 0, r.stdout + r.stderr

    # Against the medium, as files.
    r = govulncheck(bad, f"file://{medium}/vulndb", f"file://{medium}", tmp_path / "go1")
    assert r.returncode == 3, r.stdout + r.stderr  # govulncheck: vulnerabilities found
    assert "GO-2021-0094" in r.stdout and "slug.Unpack" in r.stdout, r.stdout
    r = govulncheck(good, f"file://{medium}/vulndb", f"file://{medium}", tmp_path / "go2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "GO-2021-0094" not in r.stdout and "No vulnerabilities found" in r.stdout

    # Against the imported mirror, through airsync serve (GOPROXY and the database from one server).
    with airsync_serve(inside) as url:
        r = govulncheck(bad, f"{url}/vulndb", url, tmp_path / "go3")
        assert r.returncode == 3, r.stdout + r.stderr
        assert "GO-2021-0094" in r.stdout
        r = govulncheck(good, f"{url}/vulndb", url, tmp_path / "go4")
        assert r.returncode == 0, r.stdout + r.stderr

    # airsync audit agrees, offline, from the same medium.
    r = airsync("audit", "--go-sum", bad / "go.sum", "--db", medium)
    assert r.returncode == 1 and "GO-2021-0094" in r.stdout
    r = airsync("audit", "--go-sum", good / "go.sum", "--db", medium)
    assert r.returncode == 0, r.stdout
