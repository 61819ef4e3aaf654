"""Our tlog, note and tile formats against the real go command's checksum-database client.

A database built with airsync's own modules (airsync.sample.build_sumdb) is served as files next to a
GOPROXY tree; the go command, with no go.sum lines and GOSUMDB set to our key, must download
and verify every module through it, and must refuse a tampered record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airsync import sample
from airsync.sample import build_sumdb
from tests.helpers.gotool import go_env, run_go
from tests.helpers.tamper import flip_first_hash


@pytest.fixture
def tree_with_db(tmp_path: Path):
    root = tmp_path / "proxy"
    modules = sample.demo_modules()
    sample.build_proxy_tree(root, modules)
    db = build_sumdb(root, modules, padding=300)  # 300+ records: several tiles, partial edges
    return root, db


@pytest.mark.e2e
def test_go_verifies_modules_through_our_database(tmp_path, tree_with_db):
    root, db = tree_with_db
    app = tmp_path / "app"
    sample.write_main_module(app, sample.demo_app_requires())
    r = run_go(["mod", "tidy"], app, go_env(tmp_path, root.as_uri(), gosumdb=db.vkey))
    assert r.returncode == 0, r.stderr
    assert (app / "go.sum").read_text() == sample.app_gosum(sample.demo_modules(), sample.demo_app_requires())
    # The go command really asked our database: its cache holds our lookups and tiles.
    cache = tmp_path / "gomodcache" / "cache" / "download" / "sumdb" / db.name
    assert any((cache / "lookup").rglob("*")) and any((cache / "tile").rglob("*"))


@pytest.mark.e2e
def test_go_refuses_a_tampered_record(tmp_path, tree_with_db):
    root, db = tree_with_db
    flip_first_hash(next((db.dir / "lookup").rglob("*@v1.1.0")))
    app = tmp_path / "app"
    sample.write_main_module(app, sample.demo_app_requires())
    r = run_go(["mod", "tidy"], app, go_env(tmp_path, root.as_uri(), gosumdb=db.vkey))
    assert r.returncode != 0
    assert "verifying" in r.stderr or "SECURITY ERROR" in r.stderr, r.stderr
