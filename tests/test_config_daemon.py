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
        ("[daemon]\nhistory = 0\n", "daemon.history must be from 1 to"),
        ("[daemon]\nhistory = 99999999999999999999\n", "daemon.history must be from 1 to 100000"),
        ("[daemon]\nrefresh_interval = inf\n", "bad daemon.refresh_interval"),
        ("[daemon]\nrefresh_interval = '1e400'\n", "bad daemon.refresh_interval"),
        ("[daemon]\nrefresh_interval = '1e308d'\n", "bad daemon.refresh_interval"),
        ("[daemon]\ndebounce = inf\n", "bad daemon.debounce"),
        ("[daemon]\nstop_timeout = nan\n", "bad daemon.stop_timeout"),
        ("[mirror]\nchunk_size = '1e400'\n", "mirror.chunk_size"),
        ("[mirror]\nchunk_size = 'inf'\n", "mirror.chunk_size"),
        ("[mirror]\nsplit_threshold = '1e308g'\n", "mirror.split_threshold"),
        ("[mirror]\nlimit_rate = '1" + "0" * 400 + "'\n", "mirror.limit_rate"),
        ("[mirror]\nconcurrency = 99999999999999999999\n", "mirror.concurrency must be at most"),
        ("[mirror]\nread_timeout = inf\n", "mirror.read_timeout must be positive and finite"),
        ("[mirror]\nto = ''\n", "mirror.to must not be empty"),
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


def test_relative_paths_mean_the_config_files_directory(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    p = write(tmp_path / "etc", """
[mirror]
to = "mirror"
[daemon]
requests_dir = "req"
state_db = "/abs/daemon.db"
go_sum = ["lists/go.sum"]
modules_files = ["/abs/mods.txt"]
""")
    monkeypatch.chdir("/")
    c = config.load_daemon(p)
    assert c.mirror_dir == tmp_path / "etc/mirror" and c.requests_dir == tmp_path / "etc/req"
    assert c.state_db == Path("/abs/daemon.db") and c.modules_files == ("/abs/mods.txt",)
    assert c.go_sum == (str(tmp_path / "etc/lists/go.sum"),)


@pytest.mark.parametrize("text", ["inf", "1e400", "nan", float("inf"), "1e308g", "-1", "0"])
def test_parse_size_refuses_infinite_and_non_positive(text):
    with pytest.raises(ConfigError, match="bad size"):
        config.parse_size(text)


@pytest.mark.parametrize("text", [float("inf"), float("nan"), "inf", "1e400", "1e308d", -1])
def test_parse_duration_refuses_infinite(text):
    with pytest.raises(ConfigError, match="bad duration"):
        config.parse_duration(text)


@pytest.mark.parametrize("command", ["run", "mirror"])
def test_an_infinite_chunk_size_is_a_config_error_not_a_traceback(tmp_path, command):
    import subprocess
    import sys

    p = write(tmp_path, f"[mirror]\nto = '{tmp_path}/m'\nchunk_size = '1e400'\n")
    extra = ["--module", "example.com/a@v1.0.0"] if command == "mirror" else []
    r = subprocess.run([sys.executable, "-m", "airsync", command, "--config", str(p), *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "mirror.chunk_size" in r.stderr and "Traceback" not in r.stderr


def airsync(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "airsync", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_run_without_a_config_says_how_to_make_one(tmp_path):
    missing = tmp_path / "airsync.toml"
    r = airsync("run", "--config", str(missing))
    assert r.returncode == 2 and f"create one with: airsync init --out {missing}" in r.stderr, r.stderr


def test_run_check_only_checks(tmp_path):
    from airsync.carry import manifest

    manifest.keygen(tmp_path / "k")
    p = write(tmp_path, f"[mirror]\nto = 'm'\n[daemon]\nsigning_key = 'k.key'\nstate_db = 's/d.db'\n"
                       f"control_socket = '{tmp_path}/c.sock'\nrequests_dir = 'r'\n")
    r = airsync("run", "--check", "--config", str(p))
    assert r.returncode == 0 and "valid" in r.stdout and r.stderr == "", r.stderr
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()  # nothing started
    (tmp_path / "k.key").unlink()
    r = airsync("run", "--check", "--config", str(p))
    assert r.returncode == 0 and "signing key" in r.stderr and "USB jobs will fail" in r.stderr
    p.write_text("[daemon]\nbogus = 1\n")
    r = airsync("run", "--check", "--config", str(p))
    assert r.returncode == 2 and "unknown key daemon.bogus" in r.stderr


def test_status_count_needs_watch(tmp_path):
    r = airsync("status", "--count", "2", "--socket", str(tmp_path / "none.sock"))
    assert r.returncode == 2 and "--watch" in r.stderr, r.stderr  # before: ignored (or: daemon not running)
