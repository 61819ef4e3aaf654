import pytest

from airsync import config
from airsync.errors import ConfigError


def test_loads_mirror_table(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[mirror]\nto = "/srv/m"\nconcurrency = 4\nlimit_rate = "2M"\nhttp2 = true\n')
    assert config.load(p) == {"to": "/srv/m", "concurrency": 4, "limit_rate": "2M", "http2": True}


@pytest.mark.parametrize(
    "body,match",
    [
        ("[mirror]\nconcurency = 4\n", "unknown key mirror.concurency"),
        ("[mirror]\nconcurrency = 'four'\n", "mirror.concurrency must be int"),
        ("[mirror]\nconcurrency = 0\n", "mirror.concurrency must be positive"),
        ("[mirror]\nhttp2 = 1\n", "mirror.http2 must be bool"),
        ("[mirror]\nlimit_rate = 'lots'\n", "bad rate"),
        ("[mirror]\nchunk_size = '8Q'\n", "bad mirror.chunk_size"),
        ("mirror = 3\n", "must be a table"),
        ("[mirror\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, body, match):
    p = tmp_path / "c.toml"
    p.write_text(body)
    with pytest.raises(ConfigError, match=match) as e:
        config.load(p)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("text,value", [("8M", 8 << 20), ("512k", 512 << 10), (4096, 4096), ("1.5MiB", 3 << 19)])
def test_parse_size(text, value):
    assert config.parse_size(text) == value


def test_per_host_max_defaults_to_growth_and_may_not_be_below_per_host():
    assert config.fetch_settings({}, environ={}).per_host_max is None  # 4 x per_host
    assert config.fetch_settings({"per_host": 8, "per_host_max": 8}, environ={}).per_host_max == 8
    with pytest.raises(ConfigError, match="per_host_max 4 is below per_host 8"):
        config.fetch_settings({"per_host": 8, "per_host_max": 4}, environ={})
