"""The carried checksum database against a database that behaves like the real one, and the real go command.

The database is a real golang.org/x/mod/sumdb server (tests/helpers/sumdbserver) that GROWS between
lookups, behind a caching proxy that answers part of the lookups from OLDER heads, as
proxy.golang.org does: so airsync sees lookup answers at many different tree heads, as it does on
the internet (issue 16). airsync mirrors through it; then the real go command (no go.sum, GOSUMDB
on with the database's key, a fresh GOPATH, GOPROXY=file:// of the mirror or of the inside mirror
an import made, nothing else reachable) runs ``go mod tidy``, ``go build`` and ``go mod verify``, and
downloads modules one by one in two different orders; then again after a second carry at a newer
head, with a GOPATH that remembers the first head (with and without its module cache). Bad input:
a lookup another key signed, a forked log, a medium with a missing tile, with a note signed by
another key, with the heads of a forked log: named errors, nothing published.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

from airsync import sample
from airsync.carry import manifest, medium
from airsync.goproxy.modpath import ModuleVersion, proxy_file
from airsync.trust import carried, note, sumdb, tlog
from tests.helpers.cli import airsync
from tests.helpers.gotool import go_env, run_go
from tests.helpers.sumdbserver import SumDBServer

pytestmark = pytest.mark.e2e

NAME = "sumdb.airsync.test"
DEMO = sample.demo_modules()
SMALL = sample.small_modules(24, seed=3)
EVERYTHING = DEMO + SMALL
ROUND1 = DEMO + SMALL[:12]
ROUND2 = SMALL[12:]
PAD = 70_000  # level-0, level-1 and a level-2 tile: proofs cross tile levels, as on sum.golang.org


def mirror(to: Path, url: str, vkey: str, mods) -> subprocess.CompletedProcess[str]:
    return airsync("mirror", *[f"--module={m.path}@{m.version}" for m in mods], "--to", to,
                   "--upstream", url, "--sumdb", vkey, "--no-progress")


def db_dir(root: Path) -> Path:
    return root / "sumdb" / NAME


def lookup_heads(root: Path, mods) -> dict[str, int]:
    out = {}
    for m in mods:
        body = (db_dir(root) / sumdb.lookup_path(ModuleVersion(m.path, m.version))).read_bytes()
        out[f"{m.path}@{m.version}"] = tlog.parse_tree(carried.split_lookup(body)[3]).n
    return out


def app_requires(mods) -> list[tuple[str, str]]:
    return sorted({*sample.demo_app_requires(), *((m.path, m.version) for m in mods if m in SMALL)})


def remember(tmp: Path, gopath_from: Path | None) -> None:
    """Make ``tmp``'s GOPATH remember the heads ``gopath_from``'s remembers (nothing else of it)."""
    if gopath_from is not None:
        shutil.copytree(gopath_from / "gopath" / "pkg" / "sumdb", tmp / "gopath" / "pkg" / "sumdb",
                        dirs_exist_ok=True)


def go_builds(tmp: Path, goproxy: str, vkey: str, mods, gopath_from: Path | None = None) -> Path:
    """tidy, build and verify an app needing ``mods`` with no go.sum; ``tmp`` holds GOPATH etc."""
    env = go_env(tmp, goproxy, gosumdb=vkey)
    remember(tmp, gopath_from)
    app = tmp / "app"
    sample.write_main_module(app, app_requires(mods))
    for step in (["mod", "tidy"], ["build", "-o", "app", "."], ["mod", "verify"]):
        r = run_go(step, app, env)
        assert r.returncode == 0, f"go {' '.join(step)}: {r.stderr}"
    assert (app / "go.sum").read_text().count("\n") >= 2 * len(app_requires(mods))
    return app


def go_downloads_in_order(tmp: Path, goproxy: str, vkey: str, mods, gopath_from: Path | None = None) -> None:
    """One ``go mod download`` per module, in this order, in one GOPATH: the lookups it reads
    in exactly this order."""
    env = go_env(tmp, goproxy, gosumdb=vkey)
    remember(tmp, gopath_from)
    for m in mods:
        r = run_go(["mod", "download", f"{m.path}@{m.version}"], tmp, env)
        assert r.returncode == 0, f"{m.path}@{m.version}: {r.stderr}"


def remembered(tmp: Path) -> int:
    return tlog.parse_tree((tmp / "gopath" / "pkg" / "sumdb" / NAME / "latest").read_bytes()).n


def resign(med: Path, key: Path) -> None:
    """Write a medium's manifest anew over what it now holds (a border host that carried it so)."""
    entries = []
    for rel in sorted(medium.tree_files(med).files):
        data = (med / rel).read_bytes()
        entries.append(manifest.Entry(rel, len(data), hashlib.sha256(data).hexdigest(),
                                      xxhash.xxh3_128_hexdigest(data)))
    old = manifest.open_manifest((med / medium.MANIFEST).read_bytes(),
                                 manifest.load_verifier(key.with_suffix(".pub")))
    m = manifest.Manifest(manifest.utc_timestamp(), old.source, tuple(entries), old.gosum)
    (med / medium.MANIFEST).write_bytes(manifest.sign_manifest(m, manifest.load_signer(key.with_suffix(".key"))))


@pytest.fixture
def upstream(tmp_path: Path):
    root = tmp_path / "upstream"
    sample.build_proxy_tree(root, EVERYTHING)
    skey, vkey = note.generate_key(NAME)
    return root, skey, vkey


def server(bin_: Path, root: Path, skey: str, work: Path, **kw) -> SumDBServer:
    # Half the first carry's modules were logged long ago and sit in the proxy's cache at old heads.
    kw.setdefault("prelog", ROUND1[::2])
    return SumDBServer(bin_, root, skey, NAME, work=work, pad=PAD, **kw)


def test_go_verifies_a_mirror_of_a_growing_database_in_any_order(sumdbserver_bin, upstream, tmp_path):
    root, skey, vkey = upstream
    m = tmp_path / "mirror"
    with server(sumdbserver_bin, root, skey, tmp_path / "db") as db:
        r = mirror(m, db.url, vkey, ROUND1)
        assert r.returncode == 0, r.stdout + r.stderr
        served = db.stats()["served_sizes"]
    # The real-world condition: the answers airsync read were signed at many different heads ...
    assert len(served) >= len(ROUND1) // 2
    # ... and every carried answer carries the newest of them, with the database's own signature.
    heads = set(lookup_heads(m, ROUND1).values())
    assert heads == {max(served)}
    assert sorted(p.name for p in (db_dir(m) / "airsync" / "heads").iterdir()) == [str(max(served))]
    assert (db_dir(m) / "airsync" / "key").read_text().strip() == vkey

    # The go command, offline, no go.sum, a fresh GOPATH each time.
    go_builds(tmp_path / "g-build", m.as_uri(), vkey, ROUND1)
    # Oldest answers first (the order that failed in issue 16: each record proved in an old head,
    # then every newer head checked against it), and newest first.
    old_first = ROUND1[::2] + [x for x in ROUND1 if x not in ROUND1[::2]]
    go_downloads_in_order(tmp_path / "g-order1", m.as_uri(), vkey, old_first)
    go_downloads_in_order(tmp_path / "g-order2", m.as_uri(), vkey, old_first[::-1])


def test_second_carry_at_a_newer_head_verifies_where_the_first_head_is_remembered(
        sumdbserver_bin, upstream, tmp_path):
    root, skey, vkey = upstream
    border, med, inside = tmp_path / "border", tmp_path / "medium", tmp_path / "inside"
    key = tmp_path / "k"
    manifest.keygen(key)
    med.mkdir()
    with server(sumdbserver_bin, root, skey, tmp_path / "db") as db:
        # Round 1: mirror, carry, import; a developer builds inside and remembers head 1.
        assert mirror(border, db.url, vkey, ROUND1).returncode == 0
        assert airsync("sync", "--mirror", border, "--to", med, "--signing-key", key.with_suffix(".key")).returncode == 0
        first_medium = tmp_path / "medium-1"
        shutil.copytree(med, first_medium)
        r = airsync("verify", med, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
        assert r.returncode == 0, r.stdout
        assert airsync("import", med, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey).returncode == 0
        dev = tmp_path / "dev"
        go_builds(dev, inside.as_uri(), vkey, ROUND1)
        head1 = remembered(dev)
        assert set(lookup_heads(inside, ROUND1).values()) == {head1}
        only_head1 = tmp_path / "remember1"  # a GOPATH that remembers head 1 and holds nothing else
        remember(only_head1, dev)

        # The log grows; round 2 carries new modules (and every earlier record) at a newer head.
        db.grow(5000)
        r = mirror(border, db.url, vkey, ROUND2)
        assert r.returncode == 0, r.stdout + r.stderr
    border_heads = set(lookup_heads(border, EVERYTHING).values())
    assert len(border_heads) == 1 and border_heads.pop() > head1
    assert airsync("sync", "--mirror", border, "--to", med, "--signing-key", key.with_suffix(".key")).returncode == 0
    r = airsync("verify", med, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
    assert r.returncode == 0, r.stdout
    r = airsync("import", med, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
    assert r.returncode == 0, r.stdout + r.stderr
    new_head = set(lookup_heads(inside, EVERYTHING).values())
    assert len(new_head) == 1
    head2 = new_head.pop()
    assert head2 > head1
    assert {p.name for p in (db_dir(inside) / "airsync" / "heads").iterdir()} == {str(head1), str(head2)}

    # An old medium imported after the new one is refused (anti-rollback) ...
    r = airsync("import", first_medium, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
    assert r.returncode == 1 and "is older than" in r.stderr, r.stdout + r.stderr
    # ... and, imported deliberately, never puts an older head back.
    r = airsync("import", first_medium, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey,
                "--allow-rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(lookup_heads(inside, EVERYTHING).values()) == {head2}

    # The developer who remembers head 1 (module cache and all) builds with the new carry ...
    go_builds(dev, inside.as_uri(), vkey, EVERYTHING)
    assert remembered(dev) == head2
    # ... and so do machines that remember head 1 with an empty module cache (only the carried
    # tiles prove head 1 consistent with head 2), reading the lookups in two different orders.
    go_builds(tmp_path / "dev-fresh", inside.as_uri(), vkey, EVERYTHING, gopath_from=only_head1)
    by_name = sorted(EVERYTHING, key=lambda x: (x.path, x.version))
    go_downloads_in_order(tmp_path / "order1", inside.as_uri(), vkey, by_name, gopath_from=only_head1)
    go_downloads_in_order(tmp_path / "order2", inside.as_uri(), vkey, by_name[::-1], gopath_from=only_head1)
    assert remembered(tmp_path / "order1") == remembered(tmp_path / "order2") == head2


# --- bad input ----------------------------------------------------------------------------------


def test_a_lookup_signed_by_another_key_is_refused(sumdbserver_bin, upstream, tmp_path):
    root, skey, vkey = upstream
    victim = ROUND1[0]  # prelogged: the proxy's cached answer for it carries another key's note
    other_skey, _ = note.generate_key(NAME)
    with server(sumdbserver_bin, root, skey, tmp_path / "db", foreign=[victim], foreign_skey=other_skey) as db:
        r = mirror(tmp_path / "m", db.url, vkey, ROUND1)
    assert r.returncode == 1
    assert "bad checksum database answer" in r.stdout and f"{victim.path}@{victim.version}" in r.stdout
    assert not (tmp_path / "m" / proxy_file(victim.mv, "zip")).exists()


def test_a_forked_log_stops_the_job(sumdbserver_bin, upstream, tmp_path):
    root, skey, vkey = upstream
    m = tmp_path / "m"
    with server(sumdbserver_bin, root, skey, tmp_path / "db1") as db:
        assert mirror(m, db.url, vkey, ROUND1).returncode == 0
    # The same key now signs another log (its records in other places): a fork.
    with server(sumdbserver_bin, root, skey, tmp_path / "db2", seed=2) as db:
        r = mirror(m, db.url, vkey, ROUND2)
    assert r.returncode == 1
    assert "SECURITY ERROR" in r.stdout and "forked" in r.stdout, r.stdout
    assert not any((m / proxy_file(x.mv, "zip")).exists() for x in ROUND2)


@pytest.fixture
def carried_medium(sumdbserver_bin, upstream, tmp_path):
    """A border mirror of ROUND1 synced to a medium; (medium, key prefix, vkey, skey, root)."""
    root, skey, vkey = upstream
    border, med, key = tmp_path / "border", tmp_path / "medium", tmp_path / "k"
    med.mkdir()
    manifest.keygen(key)
    with server(sumdbserver_bin, root, skey, tmp_path / "db") as db:
        assert mirror(border, db.url, vkey, ROUND1).returncode == 0
    assert airsync("sync", "--mirror", border, "--to", med, "--signing-key", key.with_suffix(".key")).returncode == 0
    assert airsync("verify", med, "--key", key.with_suffix(".pub"), "--sumdb", vkey).returncode == 0
    return med, key, vkey, skey, root


def refused_everywhere(med: Path, key: Path, vkey: str, tmp_path: Path, *expect: str) -> None:
    """verify names the problem; import refuses it and writes nothing."""
    r = airsync("verify", med, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
    assert r.returncode == 1
    for text in expect:
        assert text in r.stdout, r.stdout
    inside = tmp_path / "inside"
    r = airsync("import", med, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
    assert r.returncode == 1 and "nothing imported" in r.stderr
    assert not inside.exists() or not medium.tree_files(inside).files


def test_a_medium_with_a_missing_tile_is_refused(carried_medium, tmp_path):
    med, key, vkey, _, _ = carried_medium
    tile = sorted((db_dir(med) / "tile").rglob("*"))[-1]  # a right-edge tile: every proof reads it
    assert tile.is_file()
    tile.unlink()
    resign(med, key)
    rel = tile.relative_to(med).as_posix()
    refused_everywhere(med, key, vkey, tmp_path, f"{rel}: missing tile")


def test_a_medium_with_a_note_signed_by_another_key_is_refused(carried_medium, tmp_path):
    med, key, vkey, _, _ = carried_medium
    victim = db_dir(med) / sumdb.lookup_path(ROUND1[1].mv)
    _, _, record, msg = carried.split_lookup(victim.read_bytes())
    other_skey, _ = note.generate_key(NAME)
    victim.write_bytes(record + note.sign(tlog.format_tree(tlog.parse_tree(msg)), note.parse_signer(other_skey)))
    resign(med, key)
    refused_everywhere(med, key, vkey, tmp_path, f"{victim.relative_to(med).as_posix()}: tree note not signed")
    # A machine that trusts another key for this database is told so, by path.
    _, other_vkey = note.generate_key(NAME)
    r = airsync("verify", med, "--key", key.with_suffix(".pub"), "--sumdb", other_vkey)
    assert r.returncode == 1 and f"sumdb/{NAME}/airsync/key: the border checked" in r.stdout


def test_a_medium_with_the_heads_of_a_forked_log_is_refused(sumdbserver_bin, carried_medium, tmp_path):
    med, key, vkey, skey, root = carried_medium
    # The same key signed another log; its head is older than the medium's, so the medium's own
    # tiles show that it is no prefix of the carried log.
    with server(sumdbserver_bin, root, skey, tmp_path / "fork", seed=2) as db:
        forked = db.latest()
    n = tlog.parse_tree(forked).n
    assert n < max(int(p.name) for p in (db_dir(med) / "airsync" / "heads").iterdir())
    (db_dir(med) / "airsync" / "heads" / str(n)).write_bytes(forked)
    resign(med, key)
    refused_everywhere(med, key, vkey, tmp_path, "SECURITY: forked checksum database")


# --- a head airsync never carried --------------------------------------------------------------


def test_a_head_from_a_machine_once_online_is_named_reported_and_proved(sumdbserver_bin, upstream, tmp_path):
    """doctor names the unprovable head, sumdb-heads reports it, mirror --prove-heads carries its proof."""
    root, skey, vkey = upstream
    border, med, inside, key = tmp_path / "border", tmp_path / "medium", tmp_path / "inside", tmp_path / "k"
    med.mkdir()
    manifest.keygen(key)
    laptop = tmp_path / "laptop"
    env = go_env(laptop, inside.as_uri(), gosumdb=vkey)
    with server(sumdbserver_bin, root, skey, tmp_path / "db") as db:
        # The laptop was online once: its go command remembers the database's head of that day.
        latest = laptop / "gopath" / "pkg" / "sumdb" / NAME / "latest"
        latest.parent.mkdir(parents=True)
        latest.write_bytes(db.latest())
        online = tlog.parse_tree(latest.read_bytes()).n
        db.grow(3000)
        assert mirror(border, db.url, vkey, ROUND1).returncode == 0
        assert airsync("sync", "--mirror", border, "--to", med, "--signing-key", key.with_suffix(".key")).returncode == 0
        assert airsync("import", med, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey).returncode == 0

        # Inside, the go command cannot prove that head against the carried one ...
        app = laptop / "app"
        sample.write_main_module(app, app_requires(ROUND1))
        r = run_go(["mod", "tidy"], app, env)
        assert r.returncode != 0 and f"checking tree#{online}" in r.stderr, r.stderr
        # ... and doctor says so in one line, with both heads and the way out (never GOSUMDB=off).
        r = subprocess.run([sys.executable, "-m", "airsync", "doctor"], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1, r.stdout + r.stderr
        line = r.stdout.strip()
        assert line.count("\n") == 0 and f"tree {online}" in line and "sumdb-heads" in line and "--prove-heads" in line
        assert "GOSUMDB=off" not in line and "delete" not in line

        # The head goes out in a small file; the border proves it and carries the tiles for it.
        heads_txt = tmp_path / "heads.txt"
        r = airsync("sumdb-heads", "--gopath", laptop / "gopath", "--out", heads_txt)
        assert r.returncode == 0 and f"{NAME} {online} " in heads_txt.read_text()
        r = airsync("mirror", *[f"--module={m.path}@{m.version}" for m in ROUND1], "--to", border,
                    "--upstream", db.url, "--sumdb", vkey, "--no-progress", "--prove-heads", heads_txt)
        assert r.returncode == 0, r.stdout + r.stderr
    assert (db_dir(border) / "airsync" / "heads" / str(online)).is_file()
    r = airsync("mirror", "--sumdb", vkey, "--to", border, "--prove-heads", tmp_path / "nothere.txt", "--module", "x.y/z@v1.0.0")
    assert r.returncode == 2 and "cannot read" in r.stderr
    assert airsync("sync", "--mirror", border, "--to", med, "--signing-key", key.with_suffix(".key")).returncode == 0
    r = airsync("import", med, "--into", inside, "--key", key.with_suffix(".pub"), "--sumdb", vkey)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "airsync", "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok:"), r.stdout + r.stderr
    go_builds(laptop, inside.as_uri(), vkey, ROUND1)
    # The mirror's own heads, as a file too.
    r = airsync("sumdb-heads", "--mirror", inside)
    assert r.returncode == 0 and f"{NAME} {online} " in r.stdout
