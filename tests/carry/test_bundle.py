"""Bundles: a mirror as signed tar parts (carry.bundle, bundlewrite, bundleread), checked by tar
itself, imported and built from by the real go command with GOSUMDB on; every bad part refused."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from airsync import sample
from airsync.carry import bundle, manifest, medium, sbom
from airsync.carry.manifest import Entry
from tests.helpers.carrykit import mirror_modules, mirror_with_sumdb
from tests.helpers.cli import airsync
from tests.helpers.gotool import build_demo_app

# --- planning (pure) ------------------------------------------------------------------------------


def entry(path: str, size: int) -> Entry:
    return Entry(path, size, "0" * 64, "0" * 32)


def test_header_is_what_tarfile_reads():
    for path in ("a/b.zip", "x/" + "long-element/" * 12 + "f.mod", "é/ünïcode.info"):
        data = bundle.header(path, 3) + b"abc" + b"\0" * 509 + bundle.END
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            (ti,) = tf.getmembers()
            assert (ti.name, ti.size, ti.isreg(), ti.mtime, ti.uid) == (path, 3, True, 0, 0)
            assert tf.extractfile(ti).read() == b"abc"
        assert bundle.member_size(path, 3) == len(data) - len(bundle.END)


def test_plan_fills_parts_in_path_order_within_max_size():
    entries = [entry(f"m/@v/v1.0.{i}.zip", 30_000) for i in range(10)]
    p = bundle.plan(entries, 100_000)
    assert [m.entry.path for part in p.parts for m in part.members] == sorted(e.path for e in entries)
    assert all(part.size <= 100_000 and part.size % 512 == 0 for part in p.parts)
    assert len(p.parts) == 4 and [len(q.members) for q in p.parts] == [3, 3, 3, 1]
    assert [q.name for q in p.parts] == [f"airsync-{p.id}.00{i}.tar" for i in range(1, 5)]
    # A plan is a value: the same files make the same id; other files, sizes or a base another.
    assert bundle.plan(list(reversed(entries)), 100_000).id == p.id
    assert bundle.plan(entries, 200_000).id != p.id
    assert bundle.plan(entries, 100_000, base="a" * 64).id != p.id


def test_plan_refuses_a_file_larger_than_a_part():
    with pytest.raises(bundle.BundleError, match=r"m/@v/v1.0.0.zip.*do not fit in a part of --max-size 70000"):
        bundle.plan([entry("m/@v/v1.0.0.zip", 80_000)], 70_000)
    with pytest.raises(bundle.BundleError, match="too small"):
        bundle.plan([], 1000)


def test_split_since_carries_only_what_the_base_lacks():
    a, b, c = entry("a", 1), Entry("b", 1, "1" * 64, "0" * 32), entry("c", 2)
    carried, held = bundle.split_since([a, b, c], {"a": "0" * 64, "b": "2" * 64})
    assert carried == [b, c] and held == [a]


# --- end to end -----------------------------------------------------------------------------------

MODULES = sample.demo_modules()
RC = [m for m in MODULES if m.path == sample.STRS and m.version == "v1.2.0-rc.1"]
BEFORE = [m for m in MODULES if m not in RC]


@pytest.fixture(scope="module")
def border(tmp_path_factory):
    """A border mirror (without STRS v1.2.0-rc.1), its database and key, and a full bundle of it."""
    tmp = tmp_path_factory.mktemp("border")
    mirror, db = mirror_with_sumdb(tmp, MODULES, carried=BEFORE)
    manifest.keygen(tmp / "k")
    out = tmp / "bundle"
    r = airsync("bundle", "--mirror", mirror, "--out", out, "--signing-key", tmp / "k.key", "--max-size", "16k")
    assert r.returncode == 0, r.stdout + r.stderr
    return {"tmp": tmp, "mirror": mirror, "db": db, "key": tmp / "k.key", "pub": tmp / "k.pub", "out": out}


def tree(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {rel: (root / rel).read_bytes() for rel in medium.tree_files(root).files}


def parts_of(out: Path) -> list[Path]:
    return sorted(out.glob("*.tar"))


def test_parts_are_plain_tar_within_max_size(border):
    out = border["out"]
    parts = parts_of(out)
    assert len(parts) >= 2
    names = []
    for p in parts:
        assert p.stat().st_size <= 16 * 1024
        r = subprocess.run(["tar", "-tf", str(p)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        names += r.stdout.splitlines()
    assert names == sorted(medium.tree_files(border["mirror"]).files)
    (m_path,) = out.glob("*.manifest")
    m = manifest.open_manifest(m_path.read_bytes(), manifest.load_verifier(border["pub"]))
    assert [q.name for q in m.parts] == [p.name for p in parts] and m.sequence is not None and m.base is None
    # tar alone restores the mirror's files byte for byte.
    x = border["tmp"] / "untarred"
    x.mkdir()
    for p in parts:
        subprocess.run(["tar", "-xf", str(p), "-C", str(x)], check=True)
    assert tree(x) == tree(border["mirror"])


def test_import_then_go_builds_with_gosumdb_and_receipt(border, tmp_path):
    inside = tmp_path / "inside"
    r = airsync("verify", border["out"], "--key", border["pub"])
    assert r.returncode == 0 and r.stdout.startswith("ok:"), r.stdout + r.stderr
    receipt = tmp_path / "receipt.manifest"
    r = airsync("import", border["out"], "--into", inside, "--key", border["pub"], "--receipt", receipt)
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(inside) == tree(border["mirror"])
    assert not list((inside / ".airsync").glob("bundle-*"))  # staging gone
    (m_path,) = border["out"].glob("*.manifest")
    assert receipt.read_bytes() == m_path.read_bytes()
    build_demo_app(tmp_path, inside.as_uri(), border["db"].vkey)


def test_parts_given_one_by_one_in_any_order(border, tmp_path):
    files = list(reversed(sorted(border["out"].iterdir())))
    inside = tmp_path / "inside"
    r = airsync("import", *files, "--into", inside, "--key", border["pub"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(inside) == tree(border["mirror"])


def test_sbom_is_valid_cyclonedx_and_lists_what_crosses(border):
    r = airsync("sbom", border["out"], "--key", border["pub"])
    assert r.returncode == 0, r.stderr
    assert sbom.validate(r.stdout.encode()) is None
    doc = json.loads(r.stdout)
    assert doc["specVersion"] == "1.6"
    got = {(c["name"], c["version"]) for c in doc["components"]}
    assert got == {(m.path, m.version) for m in BEFORE}
    bigcorp = next(c for c in doc["components"] if c["name"] == sample.BIGCORP)
    assert bigcorp["purl"] == "pkg:golang/example.com/BigCorp/Util@v1.2.0"
    assert bigcorp["hashes"][0]["alg"] == "SHA-256"
    props = {p["name"]: p["value"] for p in bigcorp["properties"]}
    assert props["airsync:h1"] == sample.module_h1(next(m for m in MODULES if m.path == sample.BIGCORP))
    r = airsync("sbom", border["out"], "--format", "spdx-json")
    assert r.returncode == 2 and "cyclonedx-json" in r.stderr, r.stderr


def test_sbom_refuses_an_altered_sbom(border, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(border["out"], out)
    (s,) = out.glob("*.sbom.cdx.json")
    s.write_text(s.read_text().replace("BigCorp", "BadCorp"))
    r = airsync("sbom", out)
    assert r.returncode == 1 and "altered" in r.stderr, r.stderr
    r = airsync("verify", out, "--key", border["pub"])
    assert r.returncode == 1 and "SBOM does not match" in r.stdout, r.stdout + r.stderr


def _copy(border, tmp_path) -> Path:
    out = tmp_path / "b"
    shutil.copytree(border["out"], out)
    return out


def _refused(border, tmp_path, *files, words: str, code: int = 1) -> None:
    inside = tmp_path / "inside"
    before = tree(inside)
    r = airsync("import", *files, "--into", inside, "--key", border["pub"])
    assert r.returncode == code, r.stdout + r.stderr
    assert words in r.stdout + r.stderr, r.stdout + r.stderr
    assert tree(inside) == before
    assert not list(inside.glob(".airsync/bundle-*"))


def test_missing_part(border, tmp_path):
    out = _copy(border, tmp_path)
    parts_of(out)[1].unlink()
    _refused(border, tmp_path, out, words="missing: part 2 of")


def test_truncated_part(border, tmp_path):
    out = _copy(border, tmp_path)
    p = parts_of(out)[0]
    os.truncate(p, p.stat().st_size - 512)
    _refused(border, tmp_path, out, words="truncated:")


def test_altered_part(border, tmp_path):
    out = _copy(border, tmp_path)
    p = parts_of(out)[-1]
    data = bytearray(p.read_bytes())
    data[700] ^= 1
    p.write_bytes(bytes(data))
    _refused(border, tmp_path, out, words="altered: its sha256 differs")
    r = airsync("verify", out, "--key", border["pub"])
    assert r.returncode == 1 and "altered" in r.stdout, r.stdout + r.stderr


def test_reordered_parts(border, tmp_path):
    out = _copy(border, tmp_path)
    a, b = parts_of(out)[:2]
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    _refused(border, tmp_path, out, words="reordered: holds the bytes of part 2")


def test_duplicated_part(border, tmp_path):
    out = _copy(border, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    p = parts_of(out)[0]
    (other / p.name).write_bytes(p.read_bytes()[:-512] + b"\1" * 512)
    _refused(border, tmp_path, out, other / p.name, words="given twice")


def test_foreign_part_and_wrong_key(border, tmp_path):
    out = _copy(border, tmp_path)
    other = tmp_path / "other"
    r = airsync("bundle", "--mirror", border["mirror"], "--out", other, "--signing-key", border["key"],
                "--max-size", "32k", "--only", "example.org/*")
    assert r.returncode == 0, r.stderr
    shutil.copy(parts_of(other)[0], out)
    _refused(border, tmp_path, out, words="foreign: not a part of this bundle")
    manifest.keygen(tmp_path / "stranger")
    inside = tmp_path / "inside"
    r = airsync("import", border["out"], "--into", inside, "--key", tmp_path / "stranger.pub")
    assert r.returncode == 1 and "not signed by the trusted key" in r.stderr, r.stderr
    assert tree(inside) == {}


def test_no_manifest_or_two_bundles(border, tmp_path):
    out = _copy(border, tmp_path)
    for m in out.glob("*.manifest"):
        m.unlink()
    _refused(border, tmp_path, out, words="no bundle manifest")
    r = airsync("bundle", "--mirror", border["mirror"], "--out", tmp_path / "o2", "--signing-key", border["key"],
                "--only", "example.org/*")
    assert r.returncode == 0
    _refused(border, tmp_path, border["out"], tmp_path / "o2", words="manifests of 2 bundles given")


def test_full_disk_while_importing(border, tmp_path, mount_tmpfs):
    inside = mount_tmpfs("40k")
    r = airsync("import", border["out"], "--into", inside, "--key", border["pub"])
    assert r.returncode == 1 and "the disk is full" in r.stderr, r.stdout + r.stderr
    assert tree(inside) == {} and not list(inside.glob(".airsync/bundle-*"))


def test_older_bundle_refused(border, tmp_path):
    inside = tmp_path / "inside"
    newer = tmp_path / "newer"
    r = airsync("bundle", "--mirror", border["mirror"], "--out", newer, "--signing-key", border["key"])
    assert r.returncode == 0, r.stderr
    assert airsync("import", newer, "--into", inside, "--key", border["pub"]).returncode == 0
    _refused(border, tmp_path, border["out"], words="is older than")
    r = airsync("verify", border["out"], "--key", border["pub"], "--into", inside)
    assert r.returncode == 1 and "is older than" in r.stderr, r.stdout + r.stderr
    r = airsync("import", border["out"], "--into", inside, "--key", border["pub"], "--allow-rollback")
    assert r.returncode == 0, r.stdout + r.stderr


def test_differential_bundle_after_one_version(border, tmp_path):
    tmp = tmp_path
    mirror = tmp / "mirror"
    shutil.copytree(border["mirror"], mirror)
    inside = tmp / "inside"
    receipt = tmp / "receipt"
    r = airsync("import", border["out"], "--into", inside, "--key", border["pub"], "--receipt", receipt)
    assert r.returncode == 0, r.stderr
    mirror_modules(border["tmp"] / "upstream", mirror, RC, border["db"].vkey)  # one new version at the border
    diff = tmp / "diff"
    r = airsync("bundle", "--mirror", mirror, "--out", diff, "--signing-key", border["key"], "--since", receipt)
    assert r.returncode == 0, r.stdout + r.stderr
    (m_path,) = diff.glob("*.manifest")
    m = manifest.open_manifest(m_path.read_bytes(), manifest.load_verifier(border["pub"]))
    new_files = {rel for rel, data in tree(mirror).items() if tree(border["mirror"]).get(rel) != data}
    assert {e.path for e in m.entries} == new_files
    assert m.base == manifest.digest(manifest.open_manifest(receipt.read_bytes(), manifest.load_verifier(border["pub"])))
    new_bytes = sum(e.size for e in m.entries)
    assert new_bytes <= sum(p.size for p in m.parts) <= new_bytes * 1.01 + 512 * (3 * len(m.entries) + 2)

    # Imported into an inside without the base: refused, named.
    empty = tmp / "empty"
    r = airsync("import", diff, "--into", empty, "--key", border["pub"])
    assert r.returncode == 1 and "the inside lacks" in r.stdout + r.stderr and "import the base first" in r.stdout, \
        r.stdout + r.stderr
    assert tree(empty) == {}
    # Into the inside that holds the base: the mirror as the border has it, and the go command builds.
    r = airsync("verify", diff, "--key", border["pub"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = airsync("import", diff, "--into", inside, "--key", border["pub"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(inside) == tree(mirror)
    build_demo_app(tmp, inside.as_uri(), border["db"].vkey)


def test_since_from_another_key(border, tmp_path):
    manifest.keygen(tmp_path / "stranger")
    r = airsync("bundle", "--mirror", border["mirror"], "--out", tmp_path / "o", "--signing-key",
                tmp_path / "stranger.key", "--since", next(border["out"].glob("*.manifest")))
    assert r.returncode == 1 and "not signed by the trusted key" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_bundle_on_fat_then_import(border, tmp_path, fat):
    mnt = fat[0]
    r = airsync("bundle", "--mirror", border["mirror"], "--out", mnt / "b", "--signing-key", border["key"],
                "--max-size", "16k")
    assert r.returncode == 0, r.stderr
    inside = tmp_path / "inside"
    r = airsync("import", mnt / "b", "--into", inside, "--key", border["pub"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(inside) == tree(border["mirror"])


def test_kill_9_mid_bundle_then_rerun_finishes(tmp_path):
    # Ten parts of one 4 MiB zip each: killed as the second appears, eight are still to write.
    mods = [sample.big_module(f"example.com/big{i}", "v1.0.0", 4 << 20, seed=i) for i in range(10)]
    upstream = tmp_path / "upstream"
    sample.build_proxy_tree(upstream, mods)
    db = sample.build_sumdb(upstream, mods)
    mirror = tmp_path / "mirror"
    mirror_modules(upstream, mirror, mods, db.vkey)
    manifest.keygen(tmp_path / "k")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "airsync", "bundle", "--mirror", str(mirror), "--out", str(out),
           "--signing-key", str(tmp_path / "k.key"), "--max-size", "5M"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and list(out.glob("*.002.tar"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the bundle never got going"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not list(out.glob("*.manifest"))  # no manifest: visibly unfinished
    done_before = {p.name for p in parts_of(out)}
    r = airsync("bundle", "--mirror", mirror, "--out", out, "--signing-key", tmp_path / "k.key", "--max-size", "5M")
    assert r.returncode == 0, r.stderr
    total = len(parts_of(out))
    assert f"{total - len(done_before)} written now" in r.stdout, r.stdout
    assert not list(out.glob(".*.partial"))
    inside = tmp_path / "inside"
    r = airsync("import", out, "--into", inside, "--key", tmp_path / "k.pub")
    assert r.returncode == 0, r.stdout + r.stderr
    assert tree(inside) == tree(mirror)


def test_medium_carries_its_sbom(border, tmp_path):
    med = tmp_path / "medium"
    med.mkdir()
    r = airsync("sync", "--mirror", border["mirror"], "--to", med, "--signing-key", border["key"])
    assert r.returncode == 0, r.stderr
    r = airsync("sbom", med, "--key", border["pub"])
    assert r.returncode == 0, r.stderr
    assert sbom.validate(r.stdout.encode()) is None
    assert {c["name"] for c in json.loads(r.stdout)["components"]} == {m.path for m in BEFORE}
    assert airsync("verify", med, "--key", border["pub"]).returncode == 0
    inside = tmp_path / "inside"
    assert airsync("import", med, "--into", inside, "--key", border["pub"]).returncode == 0
    assert not (inside / medium.SBOM).exists()  # the SBOM describes the carry; it is no mirror file
    (med / medium.SBOM).write_text("{}")
    r = airsync("verify", med, "--key", border["pub"])
    assert r.returncode == 1 and "airsync-sbom.cdx.json: altered" in r.stdout, r.stdout


def test_usage_errors(border, tmp_path):
    r = airsync("bundle", "--mirror", border["mirror"], "--out", tmp_path / "o", "--signing-key", border["key"],
                "--max-size", "1k")
    assert r.returncode == 2 and "too small" in r.stderr, r.stderr
    r = airsync("bundle", "--mirror", tmp_path / "nope", "--out", tmp_path / "o", "--signing-key", border["key"])
    assert r.returncode == 2 and "no such mirror directory" in r.stderr, r.stderr
    r = airsync("import", tmp_path / "nope", "--into", tmp_path / "i", "--key", border["pub"])
    assert r.returncode == 2, r.stderr
    r = airsync("import", tmp_path / "nope", border["out"], "--into", tmp_path / "i", "--key", border["pub"])
    assert r.returncode == 1 and "nope: no such file or directory" in r.stderr, r.stderr


def test_work_directory_keeps_only_this_plans_files(border, tmp_path):
    from airsync.carry.bundlewrite import write_bundle

    signer = manifest.load_signer(border["key"])
    work = tmp_path / "pending"
    first = write_bundle(border["mirror"], work, signer, max_size=16 * 1024, only="example.org/*")
    (work / f".airsync-{first.parts[0].name}.partial").write_bytes(b"half")  # as a killed run leaves it
    second = write_bundle(border["mirror"], work, signer, max_size=16 * 1024, only_this=True)
    names = {p.name for p in work.iterdir()}
    assert all(first.manifest.name.removesuffix(".manifest") not in n for n in names), names
    assert second.manifest.name in names


def test_bundle_onto_a_full_disk(border, mount_tmpfs):
    out = mount_tmpfs("24k")
    r = airsync("bundle", "--mirror", border["mirror"], "--out", out, "--signing-key", border["key"],
                "--max-size", "16k")
    assert r.returncode == 1 and "the disk is full" in r.stderr and "run the bundle again" in r.stderr, r.stderr
    assert not list(out.glob("*.manifest")) and not list(out.glob(".*.partial"))


def test_receipt_of_a_medium_is_a_base(border, tmp_path):
    med = tmp_path / "medium"
    med.mkdir()
    assert airsync("sync", "--mirror", border["mirror"], "--to", med, "--signing-key", border["key"]).returncode == 0
    inside, receipt = tmp_path / "inside", tmp_path / "receipt"
    r = airsync("import", med, "--into", inside, "--key", border["pub"], "--receipt", receipt)
    assert r.returncode == 0, r.stderr
    assert receipt.read_bytes() == (med / medium.MANIFEST).read_bytes()
    r = airsync("bundle", "--mirror", border["mirror"], "--out", tmp_path / "d", "--signing-key", border["key"],
                "--since", receipt)
    assert r.returncode == 0 and "0 files in 0 parts" in r.stdout, r.stdout + r.stderr
    r = airsync("import", tmp_path / "d", "--into", inside, "--key", border["pub"])
    assert r.returncode == 0, r.stdout + r.stderr
