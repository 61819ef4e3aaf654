"""Anti-rollback: an older validly signed manifest is refused inside (carry.rollback, carry.accepted)."""

from __future__ import annotations

import datetime as dt

import pytest

from airsync.carry import manifest, medium, rollback, sequence
from tests.carry.test_verify_import import make_medium, pub, snapshot
from tests.helpers.cli import airsync

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
KEY = "border+01234567"


def rec(seq: int, digest: str = "d" * 64) -> rollback.Accepted:
    return rollback.Accepted(seq, digest, "2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")


def test_check_newer_same_older():
    p = rollback.Policy()
    rollback.check(KEY, 58, "a" * 64, "2026-05-01T00:00:00Z", rec(57), p, NOW)  # newer
    rollback.check(KEY, 57, "d" * 64, "2026-05-01T00:00:00Z", rec(57), p, NOW)  # the same manifest again
    rollback.check(KEY, 1, "a" * 64, "2026-05-01T00:00:00Z", None, p, NOW)  # the first from this key
    with pytest.raises(rollback.RollbackError, match=r"manifest 41 by border\+01234567 .* is older than 57, "
                       r"already imported on 2026-05-02T00:00:00Z"):
        rollback.check(KEY, 41, "a" * 64, "2026-05-01T00:00:00Z", rec(57), p, NOW)
    with pytest.raises(rollback.RollbackError, match="one number, two manifests"):
        rollback.check(KEY, 57, "a" * 64, "2026-05-01T00:00:00Z", rec(57), p, NOW)
    with pytest.raises(rollback.RollbackError, match="no sequence number"):
        rollback.check(KEY, None, "a" * 64, "2026-05-01T00:00:00Z", rec(57), p, NOW)
    rollback.check(KEY, None, "a" * 64, "2026-05-01T00:00:00Z", None, p, NOW)  # old manifests, nothing known
    allow = rollback.Policy(allow_rollback=True)
    rollback.check(KEY, 41, "a" * 64, "2026-05-01T00:00:00Z", rec(57), allow, NOW)
    rollback.check(KEY, None, "a" * 64, "2026-05-01T00:00:00Z", rec(57), allow, NOW)


def test_record_keeps_the_highest():
    assert rollback.record(58, "a" * 64, "c", rec(57), NOW) == rollback.Accepted(58, "a" * 64, "c", "2026-06-01T12:00:00Z")
    assert rollback.record(41, "a" * 64, "c", rec(57), NOW) is None  # an allowed rollback lowers nothing
    assert rollback.record(57, "d" * 64, "c", rec(57), NOW) is None
    assert rollback.record(None, "a" * 64, "c", None, NOW) is None  # unnumbered: nothing to remember


def test_max_age():
    p = rollback.Policy(max_age=rollback.parse_age("30d"))
    rollback.check(KEY, 2, "a" * 64, "2026-05-15T00:00:00Z", None, p, NOW)
    with pytest.raises(rollback.ManifestTooOld, match="older than --max-age allows"):
        rollback.check(KEY, 2, "a" * 64, "2026-04-01T00:00:00Z", None, p, NOW)
    # --allow-rollback does not lift --max-age: leave --max-age off for that.
    with pytest.raises(rollback.ManifestTooOld):
        rollback.check(KEY, 2, "a" * 64, "2026-04-01T00:00:00Z", None, rollback.Policy(True, 86400), NOW)


@pytest.mark.parametrize("text,seconds", [("45s", 45), ("30m", 1800), ("12h", 43200), ("2d", 172800),
                                          ("1w", 604800), ("90", 90)])
def test_parse_age(text, seconds):
    assert rollback.parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "-1d", "3y", "d", "1.5d"])
def test_parse_age_refuses(text):
    with pytest.raises(ValueError):
        rollback.parse_age(text)


def test_state_round_trip_and_damage():
    state = {KEY: rec(57)}
    assert rollback.decode_state(rollback.encode_state(state)) == state
    for bad in (b"[]", b'{"k": {"sequence": "1"}}', b"not json"):
        with pytest.raises(ValueError):
            rollback.decode_state(bad)


def test_counter_numbers_durably(tmp_path):
    key, _ = manifest.keygen(tmp_path / "k")
    path = sequence.counter_path(key)
    assert path == tmp_path / "k.seq"
    assert [sequence.next_sequence(path) for _ in range(3)] == [1, 2, 3]
    assert sequence.peek(path) == 3
    path.write_text("garbage\n")
    with pytest.raises(sequence.SequenceError, match="not a manifest counter"):
        sequence.next_sequence(path)


def test_import_refuses_an_older_medium(tmp_path):
    keys = tmp_path / "k"
    old = make_medium(tmp_path / "old", keys)
    new = make_medium(tmp_path / "new", keys)
    inside = tmp_path / "inside"
    r = airsync("verify", new, "--key", pub(keys), "--into", inside)
    assert r.returncode == 0, r.stdout + r.stderr
    r = airsync("import", new, "--into", inside, "--key", pub(keys))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (inside / ".airsync" / "accepted-manifests.json").is_file()
    before = snapshot(inside)
    for cmd in (("import", old, "--into", inside), ("verify", old, "--into", inside)):
        r = airsync(*cmd, "--key", pub(keys))
        assert r.returncode == 1, r.stdout + r.stderr
        assert "manifest 1 by airsync+" in r.stderr and "is older than 2, already imported on" in r.stderr, r.stderr
    assert snapshot(inside) == before
    # The same manifest again is harmless; a deliberate restore is allowed.
    assert airsync("import", new, "--into", inside, "--key", pub(keys)).returncode == 0
    r = airsync("import", old, "--into", inside, "--key", pub(keys), "--allow-rollback")
    assert r.returncode == 0, r.stderr
    # ... and lowers nothing: the older one is still refused afterwards.
    assert airsync("import", old, "--into", inside, "--key", pub(keys)).returncode == 1


def test_unnumbered_manifest_refused_once_a_numbered_one_was_accepted(tmp_path):
    keys = tmp_path / "k"
    legacy = make_medium(tmp_path / "legacy", keys)
    signer = manifest.load_signer(keys.with_suffix(".key"))
    m = manifest.decode((legacy / medium.MANIFEST).read_bytes().split(b"\n\n")[0] + b"\n")
    unnumbered = manifest.Manifest(m.created, m.source, m.entries, m.gosum)
    plain = manifest.note.Signer(signer.name, signer.key_hash, signer.seed)  # no counter: as before sequences
    (legacy / medium.MANIFEST).write_bytes(manifest.sign_manifest(unnumbered, plain))
    inside = tmp_path / "inside"
    r = airsync("import", legacy, "--into", inside, "--key", pub(keys))
    assert r.returncode == 0, r.stderr  # nothing known of this key yet: accepted
    new = make_medium(tmp_path / "new", keys)
    assert airsync("import", new, "--into", inside, "--key", pub(keys)).returncode == 0
    r = airsync("import", legacy, "--into", inside, "--key", pub(keys))
    assert r.returncode == 1 and "has no sequence number" in r.stderr, r.stderr


def test_max_age_and_bad_age_on_the_command_line(tmp_path):
    keys = tmp_path / "k"
    med = make_medium(tmp_path / "m", keys)
    inside = tmp_path / "inside"
    r = airsync("import", med, "--into", inside, "--key", pub(keys), "--max-age", "soon")
    assert r.returncode == 2 and "--max-age" in r.stderr, r.stderr
    r = airsync("import", med, "--into", inside, "--key", pub(keys), "--max-age", "1w")
    assert r.returncode == 0, r.stderr


def test_damaged_record_is_named(tmp_path):
    keys = tmp_path / "k"
    med = make_medium(tmp_path / "m", keys)
    inside = tmp_path / "inside"
    (inside / ".airsync").mkdir(parents=True)
    (inside / ".airsync" / "accepted-manifests.json").write_text("{broken")
    r = airsync("import", med, "--into", inside, "--key", pub(keys))
    assert r.returncode == 1 and "accepted-manifests.json: not a record of accepted manifests" in r.stderr, r.stderr




def test_pull_refuses_an_older_peer_manifest_and_serve_numbers_each(tmp_path):
    from tests.helpers.serving import airsync_serve

    keys = tmp_path / "k"
    old = make_medium(tmp_path / "old", keys)  # manifest 1, kept in the tree: served as it is
    inside = tmp_path / "inside"
    with airsync_serve(old) as url:
        assert airsync("import", make_medium(tmp_path / "new", keys), "--into", inside, "--key", pub(keys)).returncode == 0
        before = snapshot(inside)
        r = airsync("pull", url, "--into", inside, "--key", pub(keys))
        assert r.returncode == 1 and "is older than 2, already imported on" in r.stderr, r.stderr
        assert snapshot(inside) == before
    # serve --signing-key numbers each manifest it makes: a pull of it is newer than anything before.
    (old / medium.MANIFEST).unlink()
    with airsync_serve(old, "--signing-key", keys.with_suffix(".key")) as url:
        r = airsync("pull", url, "--into", inside, "--key", pub(keys))
        assert r.returncode == 0, r.stderr
    assert sequence.peek(tmp_path / "k.seq") >= 3  # one number per manifest served


def test_counter_in_the_state_directory_when_the_keys_directory_is_read_only(tmp_path, mount_tmpfs, monkeypatch):
    import subprocess

    etc = mount_tmpfs("1m")  # /etc/airsync under ProtectSystem=strict: read-only for the service
    key, _ = manifest.keygen(etc / "signing")
    subprocess.run(["mount", "-o", "remount,ro", str(etc)], check=True)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    assert sequence.counter_path(key) == state / "signing.seq"
    monkeypatch.delenv("STATE_DIRECTORY")
    with pytest.raises(sequence.SequenceError, match="must be writable"):
        sequence.next_sequence(sequence.counter_path(key))
