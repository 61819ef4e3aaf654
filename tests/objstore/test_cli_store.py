"""What takes a store URL, and what says plainly that it does not yet (exit 2, one line)."""

from __future__ import annotations

import pytest

from tests.helpers.cli import airsync


@pytest.mark.parametrize("args, what", [
    (["sumdb-heads", "--mirror", "s3://bkt/go"], "sumdb-heads --mirror"),
    (["doctor", "--mirror", "s3://bkt/go"], "doctor --mirror"),
    (["mirror", "--module", "example.com/m@v1.0.0", "--to", "s3://bkt/go", "--write-go-sum", "/tmp/go.sum"],
     "--write-go-sum"),
    (["serve", "/tmp", "--redirect-zips"], "--redirect-zips needs an object store"),
])
def test_not_with_a_store_yet(args, what, tmp_path):
    r = airsync(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    if what is not None:
        assert what in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_store_table_is_checked(tmp_path):
    from airsync import config
    from airsync.errors import ConfigError

    conf = tmp_path / "airsync.toml"
    conf.write_text('[store]\nendpoint = "http://127.0.0.1:9"\nregoin = "x"\n')
    with pytest.raises(ConfigError, match="unknown key store.regoin"):
        config.store_table(conf)
    conf.write_text('[store]\nvirtual_hosted = "yes"\n')
    with pytest.raises(ConfigError, match="store.virtual_hosted must be a boolean"):
        config.store_table(conf)
