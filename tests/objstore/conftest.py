import pytest

from tests.helpers.s3server import S3Server


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A versitygw on 127.0.0.1 with a bucket ``mirror``; store state of in-process jobs under tmp."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with S3Server(tmp_path) as server:
        server.bucket("mirror")
        for k, v in server.env(XDG_STATE_HOME=str(tmp_path / "state")).items():
            monkeypatch.setenv(k, v)
        yield server
