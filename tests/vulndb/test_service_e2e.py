"""The service keeps the mirror's vulnerability database fresh, and ``airsync status`` shows its age."""

import tomllib

import pytest
import tomli_w

from airsync.service import controlclient
from airsync.service.statusview import vulndb_age
from tests.helpers import vulndbserver
from tests.helpers.daemonkit import Service, job_states, wait_for, write_config

pytestmark = pytest.mark.e2e


def test_vulndb_age_line():
    day = 86400
    assert vulndb_age(1796083200, 1796083200 + 4 * day + 5) == "vulnerability database from 2026-12-01, 4 days old"
    assert vulndb_age(1796083200, 1796083200 + day) == "vulnerability database from 2026-12-01, 1 day old"


def test_service_mirrors_the_database_and_status_shows_its_age(tmp_path):
    entries = vulndbserver.load(["GO-2021-0094", "GO-2020-0048"], modified="2026-12-01T00:00:00Z")
    root = vulndbserver.build(tmp_path / "vdb", entries)
    with vulndbserver.serve(root) as srv:
        cfg = write_config(tmp_path, srv.url)  # no module lists: the config's job is the database alone
        conf = tomllib.loads(cfg.read_text())
        conf["mirror"]["vulndb"] = srv.url
        cfg.write_text(tomli_w.dumps(conf))
        svc = Service(tmp_path, cfg)
        try:
            wait_for(lambda: any(j["state"] == "done" for j in job_states(svc.socket).values()), 60, "the job")
            (job,) = job_states(svc.socket).values()
            assert job["result"]["vulndb_modified"] == "2026-12-01T00:00:00Z" and job["result"]["vulndb_fetched"] == 2
            with controlclient.Client(svc.socket) as c:
                assert c.status()["daemon"]["vulndb_modified"] == 1796083200
            r = svc.airsync("status", "--socket", str(svc.socket))
            assert r.returncode == 0, r.stderr
            assert "vulnerability database from 2026-12-01" in r.stdout, r.stdout
        finally:
            assert svc.stop() == 0
    assert (tmp_path / "mirror" / "vulndb" / "ID" / "GO-2021-0094.json").is_file()
