"""Store URLs and where their settings come from (pure: no server)."""

from __future__ import annotations

import pytest

from airsync.errors import ConfigError
from airsync.objstore import url as U


@pytest.mark.parametrize("text, bucket, prefix", [
    ("s3://bkt", "bkt", ""),
    ("s3://bkt/", "bkt", ""),
    ("s3://bkt/go", "bkt", "go"),
    ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b"),
])
def test_parse(text, bucket, prefix):
    u = U.parse(text)
    assert (u.bucket, u.prefix) == (bucket, prefix)
    assert u.key("x/@v/list") == (f"{prefix}/x/@v/list" if prefix else "x/@v/list")
    assert u.rel(u.key("x/@v/list")) == "x/@v/list"


@pytest.mark.parametrize("text, why", [
    ("s3://", "bad bucket name"),
    ("s3://b", "bad bucket name"),
    ("s3://bkt/a//b", "bad prefix element"),
    ("s3://bkt/../x", "bad prefix element"),
    ("s3://bkt/.airsync", "bad prefix element"),
    ("s3://bkt/a?x=1", "no query"),
    ("/tmp/x", "not a store URL"),
])
def test_parse_refuses(text, why):
    with pytest.raises(ConfigError, match=why):
        U.parse(text)


CREDS = """
[default]
aws_access_key_id = DEFKEY
aws_secret_access_key = defsecret
[other]
aws_access_key_id = OTHERKEY
aws_secret_access_key = othersecret
"""
CONF = """
[profile other]
region = eu-west-3
endpoint_url = http://127.0.0.1:9000
"""


def test_environment_first():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9/", "AWS_REGION": "r1", "AWS_ACCESS_KEY_ID": "K",
           "AWS_SECRET_ACCESS_KEY": "S3CRET"}
    s = U.settings(env, {"access_key_id": "T", "secret_access_key": "x"}, CREDS, CONF)
    assert (s.endpoint, s.region, s.access_key_id, s.secret_access_key, s.source) == (
        "http://127.0.0.1:9", "r1", "K", "S3CRET", "environment")
    assert s.allow_http and not s.virtual_hosted
    assert "S3CRET" not in repr(s)
    assert U.redact("signed with S3CRET", s) == "signed with ***"


def test_table_then_profile():
    s = U.settings({}, {"access_key_id": "T", "secret_access_key": "ts", "endpoint": "https://s3.example:443"},
                   CREDS, CONF)
    assert (s.access_key_id, s.secret_access_key, s.source, s.endpoint) == ("T", "ts", "[store]", "https://s3.example:443")
    s = U.settings({"AWS_PROFILE": "other"}, {}, CREDS, CONF)
    assert (s.access_key_id, s.secret_access_key, s.region, s.endpoint) == (
        "OTHERKEY", "othersecret", "eu-west-3", "http://127.0.0.1:9000")
    s = U.settings({}, {"profile": "other"}, CREDS, CONF)
    assert s.access_key_id == "OTHERKEY"
    s = U.settings({}, {}, CREDS, None)
    assert (s.access_key_id, s.region, s.endpoint) == ("DEFKEY", "us-east-1", None)
    assert U.settings({}, {}, None, None).access_key_id is None


@pytest.mark.parametrize("env, table, why", [
    ({"AWS_ACCESS_KEY_ID": "K"}, {}, "without its secret"),
    ({}, {"bogus": "1"}, "unknown key 'bogus'"),
    ({}, {"virtual_hosted": "maybe"}, "want true or false"),
    ({"AWS_ENDPOINT_URL": "ftp://x"}, {}, "want http"),
    ({"AWS_ENDPOINT_URL": "http://user:pw@host"}, {}, "no credentials in it"),
])
def test_bad_settings(env, table, why):
    with pytest.raises(ConfigError, match=why):
        U.settings(env, table)


def test_secret_never_in_endpoint_error():
    with pytest.raises(ConfigError) as e:
        U.settings({"AWS_ENDPOINT_URL": "http://user:pw@host"})
    assert "pw" not in str(e.value) and "user" not in str(e.value)
