"""The service's config file: [daemon] keys checked with types, errors naming file and key."""

from pathlib import Path

import pytest

from airsync import config
from airsync.errors import ConfigError


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "airsync.toml"
    p.write_text(body)
    return p


def test_defaults_are_the_service_paths(tmp_path):
    c = config.load_daemon(write(tmp_path, ""))
    assert c.mirror_dir == Path("/var/lib/airsync/mirror")
    assert c.requests_dir == Path("/var/lib/airsync/requests")
    assert c.control_socket == Path("/run/airsync/control.sock")
    assert c.signing_key == Path("/etc/airsync/signing.key")
    assert c.refresh_interval == 6 * 3600 and not c.has_sources


def test_daemon_table(tmp_path):
    c = config.load_daemon(write(tmp_path, """
[mirror]
to = "/srv/m"
sumdb = "off"
[daemon]
requests_dir = "/srv/req"
modules = ["example.com/a@v1.0.0"]
go_sum = ["/etc/airsync/go.sum"]
refresh_interval = "30m"
debounce = 0.5
"""))
    assert c.mirror_dir == Path("/srv/m") and c.requests_dir == Path("/srv/req")
    assert c.modules == ("example.com/a@v1.0.0",) and c.go_sum == ("/etc/airsync/go.sum",)
    assert c.refresh_interval == 1800 and c.debounce == 0.5 and c.has_sources


@pytest.mark.parametrize(
    "body,match",
    [
        ("[daemon]\nrequest_dir = '/x'\n", "unknown key daemon.request_dir"),
        ("[daemon]\nmodules = 'a@v1'\n", "daemon.modules must be list"),
        ("[daemon]\nmodules = [1]\n", "daemon.modules must be a list of strings"),
        ("[daemon]\nmodules = ['nope']\n", r"daemon.modules\[0\]"),
        ("[daemon]\nrefresh_interval = 'soon'\n", "bad daemon.refresh_interval"),
        ("[daemon]\ndebounce = true\n", "daemon.debounce must be"),
        ("[daemon]\nhistory = 0\n", "daemon.history must be at least 1"),
        ("[daemon]\ncontrol_socket = ''\n", "daemon.control_socket must not be empty"),
        ("[deamon]\n", r"unknown table \[deamon\]"),
        ("[mirror]\nupstream = 'direct'\n", "mirror.upstream"),
        ("[mirror]\nsumdb = 'nonsense'\n", "mirror.sumdb"),
        ("[mirror]\nconcurrency = 0\n", "mirror.concurrency must be positive"),
    ],
)
def test_bad_daemon_config_names_file_and_key(tmp_path, body, match):
    p = write(tmp_path, body)
    with pytest.raises(ConfigError, match=match) as e:
        config.load_daemon(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("text,seconds", [(90, 90), ("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400), (0, 0)])
def test_parse_duration(text, seconds):
    assert config.parse_duration(text) == seconds


def test_conf_example_documents_every_key_and_loads():
    import tomllib

    path = Path(__file__).parent.parent / "conf.example.toml"
    config.load_daemon(path)
    text = path.read_text()
    for key in (*config.MIRROR_KEYS, *config.DAEMON_KEYS):
        assert f"{key} = " in text, key
    assert set(tomllib.loads(text)) == {"mirror", "daemon"}
