"""airsync verify / import: a medium is checked against its signed manifest, then merged inside."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import xxhash

from airsync import sample
from airsync.carry import manifest, medium, rollback, verify
from airsync.goproxy.modpath import ModuleVersion, list_file, proxy_file

STRS_110 = ModuleVersion(sample.STRS, "v1.1.0")
ZIP = proxy_file(STRS_110, "zip")
MOD = proxy_file(STRS_110, "mod")
LIST = list_file(sample.STRS)


def make_medium(root: Path, key_prefix: Path, modules=None, source: str = "test border host") -> Path:
    """A GOPROXY tree at ``root`` with a manifest signed by ``key_prefix``.key (made if missing)."""
    modules = sample.demo_modules() if modules is None else modules
    key = key_prefix.with_name(key_prefix.name + ".key")
    if not key.exists():
        manifest.keygen(key_prefix)
    sample.build_proxy_tree(root, modules)
    entries = []
    for rel in sorted(medium.tree_files(root).files):
        data = (root / rel).read_bytes()
        entries.append(
            manifest.Entry(rel, len(data), hashlib.sha256(data).hexdigest(), xxhash.xxh3_128_hexdigest(data))
        )
    m = manifest.Manifest(
        created=manifest.utc_timestamp(),
        source=source,
        entries=tuple(entries),
        gosum=tuple(sample.gosum_lines(modules).splitlines()),
    )
    (root / medium.MANIFEST).write_bytes(manifest.sign_manifest(m, manifest.load_signer(key)))
    return root


def pub(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".pub")


def run(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "airsync", "--log-format", "json", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    return r


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a GOPROXY tree (dot-paths and the manifest aside) with its bytes."""
    if not root.exists():
        return {}
    return {rel: (root / rel).read_bytes() for rel in medium.tree_files(root).files}


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    prefix = tmp_path / "k"
    manifest.keygen(prefix)
    return prefix


@pytest.fixture
def med(tmp_path: Path, keys: Path) -> Path:
    return make_medium(tmp_path / "medium", keys)


def verifier(keys: Path):
    return manifest.load_verifier(pub(keys))


def problems_for(report: verify.Report, path: str) -> list[str]:
    return [why for p, why in report.problems if p == path]


# --- verify ---------------------------------------------------------------------------------------


def test_clean_medium_verifies(med, keys):
    report = verify.verify_medium(med, verifier(keys))
    assert report.ok, report.problems
    assert report.files == len(medium.tree_files(med).files) > 0
    r = run("verify", med, "--key", pub(keys))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok:")


def test_flipped_name_bit_in_zip_is_altered_and_h1_mismatch(med, keys):
    # Flip the case bit of a letter in a file name in the central directory: still a valid zip
    # that follows the module rules, but its h1 differs.
    data = bytearray((med / ZIP).read_bytes())
    name = b"LICENSE"
    at = data.rfind(name)
    assert at > 0
    data[at + 1] ^= 0x20
    (med / ZIP).write_bytes(bytes(data))
    report = verify.verify_medium(med, verifier(keys))
    whys = problems_for(report, ZIP)
    assert any(w.startswith("altered") for w in whys), report.problems
    assert any(w.startswith("h1 mismatch") for w in whys), report.problems
    assert {p for p, _ in report.problems} == {ZIP}
    r = run("verify", med, "--key", pub(keys))
    assert r.returncode == 1
    assert f"{ZIP}: altered" in r.stdout and f"{ZIP}: h1 mismatch" in r.stdout


def test_flipped_data_bit_in_zip_breaks_it(med, keys):
    data = bytearray((med / ZIP).read_bytes())
    with zipfile.ZipFile(med / ZIP) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    local = struct.unpack("<4s5H3L2H", data[info.header_offset : info.header_offset + 30])
    start = info.header_offset + 30 + local[-2] + local[-1]
    data[start + info.compress_size // 2] ^= 0x01  # inside the entry's compressed bytes
    (med / ZIP).write_bytes(bytes(data))
    report = verify.verify_medium(med, verifier(keys))
    whys = problems_for(report, ZIP)
    assert any(w.startswith("altered") for w in whys)
    assert any(w.startswith(("h1 mismatch", "bad module zip")) for w in whys), whys


def test_altered_mod_is_h1_mismatch(med, keys):
    (med / MOD).write_bytes((med / MOD).read_bytes().replace(b"module", b"mOdule"))
    report = verify.verify_medium(med, verifier(keys))
    whys = problems_for(report, MOD)
    assert any(w.startswith("altered") for w in whys) and any(w.startswith("h1 mismatch") for w in whys)


@pytest.mark.parametrize(
    "damage, path, word",
    [
        ("truncate", ZIP, "truncated"),
        ("extra", "example.com/planted/@v/v1.0.0.info", "extra"),
        ("missing", MOD, "missing"),
        ("grow", LIST, "grown"),
    ],
)
def test_file_damage_is_named(med, keys, damage, path, word):
    target = med / path
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-10])
    elif damage == "extra":
        target.parent.mkdir(parents=True)
        target.write_bytes(b'{"Version":"v1.0.0"}')
    elif damage == "missing":
        target.unlink()
    elif damage == "grow":
        target.write_bytes(target.read_bytes() + b"v9.9.9\n")
    report = verify.verify_medium(med, verifier(keys))
    assert any(p == path and w.startswith(word) for p, w in report.problems), report.problems
    r = run("verify", med, "--key", pub(keys))
    assert r.returncode == 1
    assert f"{path}: {word}" in r.stdout


def test_replaced_manifest_is_named(med, keys, tmp_path):
    other = make_medium(tmp_path / "other", tmp_path / "evil")
    (med / medium.MANIFEST).write_bytes((other / medium.MANIFEST).read_bytes())
    report = verify.verify_medium(med, verifier(keys))
    assert [p for p, _ in report.problems] == [medium.MANIFEST]
    assert "not signed by the trusted key" in report.problems[0][1]
    r = run("verify", med, "--key", pub(keys))
    assert r.returncode == 1
    assert r.stdout.startswith(f"{medium.MANIFEST}: not signed by the trusted key")


def test_altered_manifest_is_named(med, keys):
    data = (med / medium.MANIFEST).read_bytes()
    (med / medium.MANIFEST).write_bytes(data.replace(b"test border host", b"test border hosT"))
    report = verify.verify_medium(med, verifier(keys))
    assert [p for p, _ in report.problems] == [medium.MANIFEST]
    assert "bad signature" in report.problems[0][1]


def test_missing_manifest(med, keys):
    (med / medium.MANIFEST).unlink()
    report = verify.verify_medium(med, verifier(keys))
    assert report.problems == ((medium.MANIFEST, "manifest missing"),)
    assert run("verify", med, "--key", pub(keys)).returncode == 1


def test_wrong_key(med, tmp_path):
    manifest.keygen(tmp_path / "wrong")
    r = run("verify", med, "--key", tmp_path / "wrong.pub")
    assert r.returncode == 1
    assert f"{medium.MANIFEST}: not signed by the trusted key" in r.stdout


def test_key_problems_are_usage_errors(med, keys, tmp_path):
    r = run("verify", med, "--key", tmp_path / "nope.pub")
    assert r.returncode == 2 and "no such key file" in r.stderr
    r = run("verify", med, "--key", keys.with_name("k.key"))
    assert r.returncode == 2 and "private signer key" in r.stderr
    r = run("import", med, "--into", tmp_path / "in", "--key", tmp_path / "nope.pub")
    assert r.returncode == 2
    assert not (tmp_path / "in").exists()


def test_symlink_planted_is_named(med, keys, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x")
    link = f"{sample.STRS}/@v/v9.0.0.info"
    os.symlink(secret, med / link)
    report = verify.verify_medium(med, verifier(keys))
    assert [p for p, _ in report.problems] == [link]
    assert "symlink" in report.problems[0][1]
    r = run("verify", med, "--key", pub(keys))
    assert r.returncode == 1 and f"{link}: symlink" in r.stdout


def test_symlink_replacing_a_listed_file(med, keys, tmp_path):
    real = tmp_path / "real.mod"
    real.write_bytes((med / MOD).read_bytes())
    (med / MOD).unlink()
    os.symlink(real, med / MOD)
    report = verify.verify_medium(med, verifier(keys))
    whys = problems_for(report, MOD)
    assert [w for w in whys if "symlink" in w] and not [w for w in whys if w.startswith("missing")]  # named once


def test_gosum_pure_check():
    m = manifest.Manifest(
        created="2024-05-01T12:00:00Z",
        source="x",
        entries=(manifest.Entry(ZIP, 3, "0" * 64, "0" * 32),),
        gosum=(f"{sample.STRS} v1.1.0 h1:" + "A" * 43 + "=",),
    )
    report = verify.check_medium(m, {ZIP: (3, "0" * 64)}, [], {ZIP: "h1:" + "B" * 43 + "="})
    assert [(p, w.split(":")[0]) for p, w in report.problems] == [(ZIP, "h1 mismatch")]
    ok = verify.check_medium(m, {ZIP: (3, "0" * 64)}, [], {ZIP: "h1:" + "A" * 43 + "="})
    assert ok.ok


# --- import ---------------------------------------------------------------------------------------


def test_import_into_empty_dir_is_byte_identical(med, keys, tmp_path):
    inside = tmp_path / "inside"
    result = verify.import_medium(med, inside, verifier(keys))
    want = snapshot(med)
    assert snapshot(inside) == want
    assert result.imported == len(want) and result.skipped == 0 and result.merged == ()
    assert result.bytes == sum(len(b) for b in want.values())
    assert not (inside / medium.MANIFEST).exists()
    assert list((inside / ".airsync" / "partial").iterdir()) == []

    again = verify.import_medium(med, inside, verifier(keys))
    assert again.imported == 0 and again.skipped == len(want) and again.merged == ()
    assert snapshot(inside) == want


def test_import_cli(med, keys, tmp_path):
    inside = tmp_path / "inside"
    r = run("import", med, "--into", inside, "--key", pub(keys))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "imported" in r.stdout
    assert snapshot(inside) == snapshot(med)
    r = run("import", med, "--into", inside, "--key", pub(keys))
    assert r.returncode == 0 and "imported 0 files" in r.stdout


def test_import_refuses_a_different_zip_and_writes_nothing(med, keys, tmp_path):
    inside = tmp_path / "inside"
    (inside / ZIP).parent.mkdir(parents=True)
    (inside / ZIP).write_bytes(b"not the same zip")
    (inside / proxy_file(ModuleVersion(sample.TOOLS, "v0.3.1"), "info")).parent.mkdir(parents=True)
    (inside / proxy_file(ModuleVersion(sample.TOOLS, "v0.3.1"), "info")).write_bytes(b"{}")
    before = snapshot(inside)
    with pytest.raises(verify.ImportRefused) as exc:
        verify.import_medium(med, inside, verifier(keys))
    paths = [p for p, _ in exc.value.report.problems]
    assert paths == sorted([ZIP, proxy_file(ModuleVersion(sample.TOOLS, "v0.3.1"), "info")])
    assert all("differs" in w for _, w in exc.value.report.problems)
    assert snapshot(inside) == before

    r = run("import", med, "--into", inside, "--key", pub(keys))
    assert r.returncode == 1
    assert f"{ZIP}: differs" in r.stdout
    assert snapshot(inside) == before


def test_bad_medium_imports_nothing(med, keys, tmp_path):
    (med / MOD).write_bytes(b"module evil\n")
    inside = tmp_path / "inside"
    with pytest.raises(verify.ImportRefused) as exc:
        verify.import_medium(med, inside, verifier(keys))
    assert MOD in {p for p, _ in exc.value.report.problems}
    assert snapshot(inside) == {}
    assert not inside.exists()
    r = run("import", med, "--into", inside, "--key", pub(keys))
    assert r.returncode == 1 and f"{MOD}: " in r.stdout
    assert snapshot(inside) == {}


def test_import_merges_lists(keys, tmp_path):
    mods = sample.demo_modules()
    old = [m for m in mods if not (m.path == sample.STRS and m.version == "v1.2.0-rc.1")]
    new = [m for m in mods if m.path == sample.STRS and m.version != "v1.0.0"]
    first = make_medium(tmp_path / "m1", keys, old)
    second = make_medium(tmp_path / "m2", keys, new)
    assert (second / LIST).read_bytes() != (first / LIST).read_bytes()
    inside = tmp_path / "inside"
    verify.import_medium(first, inside, verifier(keys))
    assert (inside / LIST).read_text() == "v1.0.0\nv1.1.0\n"
    result = verify.import_medium(second, inside, verifier(keys))
    assert result.merged == (LIST,)
    assert result.imported == 3  # v1.2.0-rc.1 .info, .mod, .zip
    assert (inside / LIST).read_text() == "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n"
    # A list with nothing new changes nothing (the older medium again: a deliberate rollback).
    again = verify.import_medium(first, inside, verifier(keys), policy=rollback.Policy(allow_rollback=True))
    assert again.imported == 0 and again.merged == ()
    assert (inside / LIST).read_text() == "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n"


def test_import_refuses_a_differing_sumdb_tile(keys, tmp_path):
    med = tmp_path / "medium"
    tile = "sumdb/sum.example/tile/8/0/000"
    (med / tile).parent.mkdir(parents=True)
    (med / tile).write_bytes(b"\x01" * 32)
    make_medium(med, keys)
    inside = tmp_path / "inside"
    (inside / tile).parent.mkdir(parents=True)
    (inside / tile).write_bytes(b"\x02" * 32)
    with pytest.raises(verify.ImportRefused) as exc:
        verify.import_medium(med, inside, verifier(keys))
    assert [p for p, _ in exc.value.report.problems] == [tile]
    assert (inside / tile).read_bytes() == b"\x02" * 32
    assert not (inside / ZIP).exists()


def test_plan_import_pure():
    e = [
        manifest.Entry(ZIP, 1, "a" * 64, "0" * 32),
        manifest.Entry(LIST, 1, "b" * 64, "0" * 32),
        manifest.Entry(MOD, 1, "c" * 64, "0" * 32),
    ]
    m = manifest.Manifest("2024-05-01T12:00:00Z", "x", tuple(e))
    plan = verify.plan_import(m, {ZIP: None, LIST: None, MOD: ("file", 1, "c" * 64)})
    assert [x.path for x in plan.copy] == [ZIP, LIST]  # lists after the files they advertise
    assert [x.path for x in plan.skip] == [MOD]
    plan = verify.plan_import(m, {ZIP: ("symlink", 0, ""), LIST: ("file", 2, "d" * 64), MOD: None})
    assert [p for p, _ in plan.conflicts] == [ZIP]
    assert [x.path for x in plan.merge] == [LIST]


def test_latest_follows_the_merged_list_and_is_never_a_conflict(tmp_path):
    latest = LIST.removesuffix("@v/list") + "@latest"
    e = manifest.Entry(latest, 30, "e" * 64, "0" * 32)
    m = manifest.Manifest("2024-05-01T12:00:00Z", "x", (e,))
    for inside in ({latest: None}, {latest: ("file", 31, "f" * 64)}):
        assert [x.path for x in verify.plan_import(m, inside).skip] == [latest]
    # After an import (or pull) it is recomputed from the list as it now is.
    from airsync.store import MirrorStore

    store = MirrorStore(tmp_path / "m")
    d = tmp_path / "m" / LIST.removesuffix("list")
    d.mkdir(parents=True)
    for v in ("v1.0.0", "v1.1.0"):
        (d / f"{v}.info").write_text(f'{{"Version":"{v}"}}')
    (d / "list").write_text("v1.0.0\nv1.1.0\n")
    verify.update_latest(store, [LIST])  # no @latest carried, none inside: left alone
    assert not (tmp_path / "m" / latest).exists()
    verify.update_latest(store, [LIST, latest])
    assert (tmp_path / "m" / latest).read_text() == '{"Version":"v1.1.0"}'
    store.close()
