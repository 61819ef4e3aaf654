"""``airsync audit``: module versions against a carried database of real entries."""

import base64
import json

import pytest

from airsync.goproxy.modpath import ModuleVersion
from airsync.vulndb import audit, ondisk
from tests.helpers import vulndbserver
from tests.helpers.cli import airsync

IDS = ["GO-2021-0094", "GO-2020-0048", "GO-2022-0969", "GO-2022-0603"]
H1 = "h1:" + base64.b64encode(bytes(32)).decode()


@pytest.fixture
def database(tmp_path):
    return vulndbserver.build(tmp_path / "db", vulndbserver.load(IDS))


def _match(root, versions):
    index = ondisk.read_index(root)
    return audit.match([ModuleVersion(p, v) for p, v in versions], index, ondisk.reader(root, index))


def test_match(database):
    found = _match(database, [
        ("github.com/hashicorp/go-slug", "v0.4.0"),  # GO-2021-0094, fixed in 0.5.0
        ("github.com/hashicorp/go-slug", "v0.5.0"),
        ("golang.org/x/net", "v0.0.0-20220801000000-aaaaaaaaaaaa"),  # GO-2022-0969 (a pseudo-version)
        ("golang.org/x/net", "v0.1.0"),
        ("gopkg.in/yaml.v3", "v3.0.0-20210107192922-496545a6307b"),  # GO-2022-0603: fixed in a later pseudo-version
        ("gopkg.in/yaml.v3", "v3.0.0"),  # which precedes v3.0.0
        ("example.com/clean", "v1.0.0"),
        ("stdlib", "v1.18.0"),  # Go itself is not matched
    ])
    assert [(f.id, f.module, f.version, f.fixed) for f in found] == [
        ("GO-2021-0094", "github.com/hashicorp/go-slug", "v0.4.0", "v0.5.0"),
        ("GO-2022-0969", "golang.org/x/net", "v0.0.0-20220801000000-aaaaaaaaaaaa", "v0.0.0-20220906165146-f3363e06e74c"),
        ("GO-2022-0603", "gopkg.in/yaml.v3", "v3.0.0-20210107192922-496545a6307b",
         "v3.0.0-20220521103104-8f96da9f5d5e"),
    ]
    assert "CVE-2020-29529" in found[0].aliases and found[0].summary


def test_table():
    f = audit.Finding("GO-1", ("CVE-1",), "example.com/m", "v1.0.0", "", "x" * 100)
    text = audit.table([f], width=20)
    assert text.splitlines()[0].split() == ["ID", "MODULE", "VERSION", "FIXED", "ALIASES", "SUMMARY"]
    assert "none" in text and "x" * 19 + "…" in text


def test_cli(database, tmp_path):
    gosum = tmp_path / "go.sum"
    gosum.write_text(f"github.com/hashicorp/go-slug v0.4.0 {H1}\ngithub.com/hashicorp/go-slug v0.4.0/go.mod {H1}\n"
                     f"github.com/antchfx/xmlquery v1.3.1/go.mod {H1}\n")  # only its go.mod read: not built
    r = airsync("audit", "--go-sum", gosum, "--db", database)
    assert r.returncode == 1, r.stderr
    assert "GO-2021-0094" in r.stdout and "CVE-2020-29529" in r.stdout and "v0.5.0" in r.stdout
    assert "GO-2020-0048" not in r.stdout
    assert "1 known vulnerability in 1 module version(s)" in r.stdout
    r = airsync("audit", "--go-sum", gosum, "--db", database, "--json")
    out = json.loads(r.stdout)
    assert [v["id"] for v in out["vulnerabilities"]] == ["GO-2021-0094"] and out["checked"] == 1

    gomod = tmp_path / "go.mod"
    gomod.write_text("module example.net/app\n\ngo 1.21\n\nrequire github.com/hashicorp/go-slug v0.5.0\n")
    r = airsync("audit", "--go-mod", gomod, "--db", database)
    assert r.returncode == 0, r.stderr
    assert "0 known vulnerabilities in 1 module version(s)" in r.stdout

    for args, msg in [((), "give one of"), (("--go-sum", gosum), "give --db"),
                      (("--go-sum", gosum, "--db", tmp_path), "no vulnerability database here"),
                      (("--go-sum", tmp_path / "nope", "--db", database), "cannot read")]:
        r = airsync("audit", *args)
        assert r.returncode == 2 and msg in r.stderr, r.stderr


def test_cli_mirror_dir(database, tmp_path):
    from airsync.sample import build_proxy_tree, library_module

    mirror = tmp_path / "mirror"
    build_proxy_tree(mirror, [library_module("github.com/hashicorp/go-slug", "v0.4.0"),
                              library_module("example.com/clean", "v1.0.0")])
    (mirror / "vulndb").symlink_to(database)
    r = airsync("audit", mirror)
    assert r.returncode == 1, r.stderr
    assert "GO-2021-0094" in r.stdout and "in 2 module version(s)" in r.stdout
