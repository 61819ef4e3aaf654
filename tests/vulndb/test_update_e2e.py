"""``airsync mirror --vulndb`` against a database of real entries on 127.0.0.1, faults included."""

import json
import shutil

import pytest

from airsync.vulndb import db, ondisk
from tests.helpers import vulndbserver
from tests.helpers.cli import airsync
from tests.helpers.faultserver import Fault

pytestmark = pytest.mark.e2e

IDS = ["GO-2020-0048", "GO-2021-0094", "GO-2022-0603", "GO-2022-0969", "GO-2023-1526", "GO-2022-1187"]


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _served(root):
    return {k: v for k, v in _tree(root).items() if k.endswith(".json")}


@pytest.fixture
def upstream(tmp_path):
    root = vulndbserver.build(tmp_path / "upstream", vulndbserver.load(IDS))
    with vulndbserver.serve(root) as srv:
        yield root, srv


def test_first_mirror_then_nothing_then_an_update(upstream, tmp_path):
    root, srv = upstream
    mirror = tmp_path / "mirror"
    r = airsync("mirror", "--to", mirror, "--vulndb", srv.url)
    assert r.returncode == 0, r.stderr
    assert f"{len(IDS)} entries fetched" in r.stdout
    assert _tree(mirror / "vulndb") == _served(root)
    assert len(srv.requests) == 3 + len(IDS)
    assert all(q.path.endswith(".json.gz") for q in srv.requests)  # the compressed files
    assert ondisk.check_dir(mirror / "vulndb") == []

    srv.reset_counters()
    r = airsync("mirror", "--to", mirror, "--vulndb", srv.url)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout
    assert [q.path for q in srv.requests] == ["/index/db.json.gz"]

    # Two new entries and one changed: only they and the indexes cross.
    entries = vulndbserver.load(IDS + ["GO-2021-0113", "GO-2020-0022"])
    entries[0]["modified"] = "2026-12-01T10:00:00Z"
    shutil.rmtree(root)
    vulndbserver.build(root, entries)
    srv.reset_counters()
    r = airsync("mirror", "--to", mirror, "--vulndb", srv.url)
    assert r.returncode == 0, r.stderr
    assert sorted(q.path for q in srv.requests) == sorted([
        "/index/db.json.gz", "/index/modules.json.gz", "/index/vulns.json.gz",
        "/ID/GO-2020-0048.json.gz", "/ID/GO-2021-0113.json.gz", "/ID/GO-2020-0022.json.gz"])
    assert _tree(mirror / "vulndb") == _served(root)


def test_plain_json_server_and_retries(tmp_path):
    root = vulndbserver.build(tmp_path / "upstream", vulndbserver.load(IDS[:3]), gz=False)
    with vulndbserver.serve(root) as srv:
        srv.add_fault("/ID/GO-2021-0094.json", Fault(truncate_after=50, times=2))
        srv.add_fault("/index/vulns.json", Fault(status=503, times=1))
        r = airsync("mirror", "--to", tmp_path / "m", "--vulndb", srv.url)
    assert r.returncode == 0, r.stderr
    assert _tree(tmp_path / "m" / "vulndb") == _served(root)


@pytest.mark.parametrize(("how", "message"), [
    ("truncate", "ID/GO-2021-0094.json: not valid JSON"),
    ("missing", "ID/GO-2021-0094.json.gz: not found (404)"),
    ("id", "holds the entry GO-2021-00940, not GO-2021-0094"),
    ("huge", "more than the 1048576 bytes"),
])
def test_faults_leave_the_previous_database(upstream, tmp_path, how, message):
    root, srv = upstream
    mirror = tmp_path / "mirror"
    assert airsync("mirror", "--to", mirror, "--vulndb", srv.url).returncode == 0
    before = _tree(mirror / "vulndb")
    entries = vulndbserver.load(IDS)
    for e in entries:
        e["modified"] = "2026-12-01T10:00:00Z"  # every entry changed: all are fetched again
    shutil.rmtree(root)
    vulndbserver.build(root, entries)
    vulndbserver.corrupt(root, how, "GO-2021-0094")
    r = airsync("mirror", "--to", mirror, "--vulndb", srv.url)
    assert r.returncode == 1
    assert "vulnerability database not updated (the previous one stays)" in r.stderr
    assert message in r.stderr, r.stderr
    assert _tree(mirror / "vulndb") == before
    assert not list((mirror / ".airsync" / "partial").iterdir())  # nothing staged left behind


def test_rollback_refused(upstream, tmp_path):
    root, srv = upstream
    mirror = tmp_path / "mirror"
    assert airsync("mirror", "--to", mirror, "--vulndb", srv.url).returncode == 0
    before = _tree(mirror / "vulndb")
    shutil.rmtree(root)
    vulndbserver.build(root, vulndbserver.load(IDS[:2]))  # an older database (its newest entry is older)
    srv.reset_counters()
    r = airsync("mirror", "--to", mirror, "--vulndb", srv.url)
    assert r.returncode == 1
    assert "refusing to roll it back" in r.stderr
    assert _tree(mirror / "vulndb") == before
    assert [q.path for q in srv.requests] == ["/index/db.json.gz"]


def test_config_key_and_usage(upstream, tmp_path):
    root, srv = upstream
    conf = tmp_path / "airsync.toml"
    conf.write_text(f'[mirror]\nto = "{tmp_path / "m"}"\nvulndb = "{srv.url}"\n')
    r = airsync("mirror", "--config", conf)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m" / "vulndb" / db.DB_FILE).read_bytes())["modified"]
    conf.write_text(f'[mirror]\nto = "{tmp_path / "m"}"\nvulndb = "ftp://x"\n')
    r = airsync("mirror", "--config", conf)
    assert r.returncode == 2 and "want the database's URL" in r.stderr
    conf.write_text(f'[mirror]\nto = "{tmp_path / "m"}"\nvulndb = "off"\n')
    r = airsync("mirror", "--config", conf)
    assert r.returncode == 2 and "nothing to mirror" in r.stderr


def test_a_crash_between_entries_and_indexes_converges(upstream, tmp_path):
    """What a kill between publishing the entries and the indexes leaves: newer entries under the old
    index. govulncheck reads it; the next run fetches what the old index disagrees with and ends whole."""
    root, srv = upstream
    mirror = tmp_path / "mirror"
    assert airsync("mirror", "--to", mirror, "--vulndb", srv.url).returncode == 0
    entries = vulndbserver.load(IDS + ["GO-2021-0113"])
    entries[1]["modified"] = "2026-12-01T10:00:00Z"
    shutil.rmtree(root)
    vulndbserver.build(root, entries)
    for vid in (entries[1]["id"], "GO-2021-0113"):  # the entries were renamed in, then the kill
        shutil.copy(root / "ID" / f"{vid}.json", mirror / "vulndb" / "ID" / f"{vid}.json")
    assert ondisk.check_dir(mirror / "vulndb")  # the old index disagrees with a newer entry
    r = airsync("mirror", "--to", mirror, "--vulndb", srv.url)
    assert r.returncode == 0, r.stderr
    assert _tree(mirror / "vulndb") == _served(root)
    assert ondisk.check_dir(mirror / "vulndb") == []


def test_a_retry_after_date_is_waited_for_from_now(tmp_path, monkeypatch):
    # Retry-After as an HTTP date means "until then": 30 s from now, not the longest wait allowed.
    import email.utils
    import time

    import trio

    from airsync.fetch.fetcher import FetchSettings
    from airsync.store import MirrorStore
    from airsync.vulndb import update

    root = vulndbserver.build(tmp_path / "upstream", vulndbserver.load(IDS[:1]), gz=False)
    waits = []
    real_sleep = trio.sleep

    async def sleep(seconds):
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(trio, "sleep", sleep)
    with vulndbserver.serve(root) as srv:
        srv.add_fault("/index/*", Fault(status=503, retry_after=email.utils.formatdate(time.time() + 30, usegmt=True)))
        store = MirrorStore(tmp_path / "m")
        try:
            trio.run(update.update, store, srv.url, FetchSettings())
        finally:
            store.close()
    assert waits and 20 <= waits[0] <= 60, waits
