"""The CLI as a user runs it: exit codes, messages, no tracebacks (file:// upstream, no sockets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airsync import sample


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # These upstreams carry no checksum database: unless a test says otherwise, do not ask one.
    if args and args[0] == "mirror" and "--sumdb" not in args:
        args = (*args, "--sumdb", "off")
    return subprocess.run(
        [sys.executable, "-m", "airsync", "--log-format", "json", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "up"
    sample.build_proxy_tree(root, sample.demo_modules())
    return root


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


def test_modules_file_and_module_args(tree, tmp_path):
    lst = tmp_path / "mods.txt"
    lst.write_text("# what to carry\nexample.com/lib/strs@v1.0.0\n\nexample.com/tools@v0.3.1  # tools\n")
    r = run("mirror", "--modules-file", str(lst), "--module", "example.org/legacy@v1.0.0",
            "--to", str(tmp_path / "m"), "--upstream", tree.as_uri())
    assert r.returncode == 0, r.stderr
    assert "fetched 9 files" in r.stdout
    assert "not hash-pinned" in r.stdout  # nothing vouched for these
    assert (tmp_path / "m/example.com/tools/@v/list").read_text() == "v0.3.1\n"


def test_bad_lines_are_reported_and_the_rest_is_mirrored(tree, tmp_path):
    good = sample.gosum_lines(sample.demo_modules()).splitlines()
    bad_sum = tmp_path / "go.sum"
    bad_sum.write_text("\n".join([good[0], "example.com/x v1.0.0", "example.com/../evil v1.0.0 h1:xx", *good[1:]]) + "\n")
    lst = tmp_path / "mods.txt"
    lst.write_text("example.com/ok@v1\nnot a module\n")
    r = run("mirror", "--go-sum", str(bad_sum), "--go-sum", str(tmp_path / "missing.sum"),
            "--modules-file", str(lst), "--to", str(tmp_path / "m"), "--upstream", tree.as_uri())
    no_traceback(r)
    assert r.returncode == 1
    assert f"{bad_sum}:2:" in r.stderr and f"{bad_sum}:3:" in r.stderr
    assert f"{tmp_path / 'missing.sum'}: cannot read" in r.stderr
    assert f"{lst}:1:" in r.stderr and f"{lst}:2:" in r.stderr
    assert (tmp_path / "m/example.com/lib/strs/@v/v1.1.0.zip").exists()  # the good lines still ran


@pytest.mark.parametrize(
    "args,message",
    [
        (["--upstream", "direct"], "direct"),
        (["--upstream", "off"], "off"),
        (["--upstream", "/some/dir"], "file://"),
        (["--concurrency", "0"], "--concurrency"),
        (["--limit-rate", "fast"], "bad rate"),
        (["--chunk-size", "huge"], "chunk size"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(tmp_path, args, message):
    r = run("mirror", "--module", "example.com/a@v1.0.0", "--to", str(tmp_path / "m"), *args)
    no_traceback(r)
    assert r.returncode == 2 and message in r.stderr


def test_nothing_to_mirror(tmp_path):
    r = run("mirror", "--to", str(tmp_path / "m"))
    assert r.returncode == 2 and "nothing to mirror" in r.stderr


def test_missing_to(tmp_path):
    r = run("mirror", "--module", "example.com/a@v1.0.0")
    assert r.returncode == 2 and "--to" in r.stderr


def test_config_file_supplies_defaults_and_bad_keys_are_named(tree, tmp_path):
    conf = tmp_path / "airsync.toml"
    conf.write_text(f'[mirror]\nto = "{tmp_path / "m"}"\nupstream = "{tree.as_uri()}"\nconcurrency = 2\n')
    r = run("mirror", "--config", str(conf), "--module", "example.com/lib/strs@v1.0.0")
    assert r.returncode == 0, r.stderr
    conf.write_text("[mirror]\nconcurency = 2\n")
    r = run("mirror", "--config", str(conf), "--module", "example.com/lib/strs@v1.0.0")
    no_traceback(r)
    assert r.returncode == 2 and "mirror.concurency" in r.stderr and str(conf) in r.stderr


def test_mirror_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    r = run("mirror", "--module", "example.com/a@v1.0.0", "--to", str(tmp_path / "f"), "--upstream", (tmp_path).as_uri())
    no_traceback(r)
    assert r.returncode == 1 and "cannot use" in r.stderr


def test_json_logs_and_summary_event(tree, tmp_path):
    r = run("mirror", "--module", "example.com/lib/strs@v1.0.0", "--to", str(tmp_path / "m"), "--upstream", tree.as_uri())
    import json

    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    (summary,) = [e for e in events if e["event"] == "summary"]
    assert summary["fetched"] == 3 and summary["failed"] == 0 and summary["level"] == "info"


def test_python_dash_m_and_version():
    r = subprocess.run([sys.executable, "-m", "airsync", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("airsync ")


def test_the_program_freezes_the_collector_at_exit_and_main_does_not():
    # run() (the program) freezes the heap before exiting, main() (called by tests and other
    # callers) never does: a caller's garbage must stay collectable.
    probe = ("import gc, sys\n"
             "from airsync import cli\n"
             "try:\n"
             "    cli.main(['mirror', '--to', sys.argv[1]])\n"
             "except SystemExit:\n"
             "    pass\n"
             "print('main', gc.get_freeze_count())\n"
             "sys.argv = ['airsync', 'mirror', '--to', sys.argv[1]]\n"
             "try:\n"
             "    cli.run()\n"
             "except SystemExit as e:\n"
             "    print('run', e.code, gc.get_freeze_count() > 0)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    r = subprocess.run([sys.executable, "-c", probe, "/nonexistent/m"], capture_output=True, text=True, env=env)
    assert r.stdout.splitlines() == ["main 0", "run 2 True"], r.stdout + r.stderr
    # Asked for warnings (-X dev): nothing frozen, so a file left open in a cycle is still reported.
    r = subprocess.run([sys.executable, "-X", "dev", "-c", probe, "/nonexistent/m"], capture_output=True, text=True,
                       env=env)
    assert r.stdout.splitlines() == ["main 0", "run 2 False"], r.stdout + r.stderr


def test_corrupt_state_database_is_a_clear_error(tree, tmp_path):
    (tmp_path / "m/.airsync").mkdir(parents=True)
    (tmp_path / "m/.airsync/state.db").write_bytes(b"this is not a database" * 100)
    r = run("mirror", "--module", "example.com/lib/strs@v1.0.0", "--to", str(tmp_path / "m"), "--upstream", tree.as_uri())
    no_traceback(r)
    assert r.returncode == 1 and "resume state cannot be read" in r.stderr and "state.db" in r.stderr


@pytest.mark.parametrize("value", ["nosuch.example", "sum.golang.org+00000000+AAAA", "a b c"])
def test_bad_sumdb_value_is_a_usage_error(tmp_path, value):
    r = run("mirror", "--module", "example.com/a@v1.0.0", "--to", str(tmp_path / "m"), "--sumdb", value)
    no_traceback(r)
    assert r.returncode == 2 and "checksum database" in r.stderr


def test_keygen_writes_a_private_key_and_refuses_to_overwrite(tmp_path):
    import stat

    r = run("keygen", "--out", str(tmp_path / "border"))
    assert r.returncode == 0, r.stderr
    key, pub = tmp_path / "border.key", tmp_path / "border.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.read_text().startswith("airsync+")
    before = key.read_bytes()
    r = run("keygen", "--out", str(tmp_path / "border"))
    no_traceback(r)
    assert r.returncode == 2 and "border.key" in r.stderr
    assert key.read_bytes() == before


def test_inputs_that_are_all_bad_are_a_usage_error(tmp_path):
    r = run("mirror", "--module", "notaversion", "--go-sum", str(tmp_path / "nope.sum"), "--to", str(tmp_path / "m"))
    no_traceback(r)
    assert r.returncode == 2 and "every input has problems" in r.stderr
    assert "nope.sum: cannot read" in r.stderr


def test_media_that_are_not_there_are_usage_errors(tmp_path):
    key = tmp_path / "k"
    r = run("keygen", "--out", str(tmp_path / "new" / "dir" / "k"))  # parents are made
    assert r.returncode == 0, r.stderr
    run("keygen", "--out", str(key))
    for args in (["verify", str(tmp_path / "nodir"), "--key", f"{key}.pub"],
                 ["import", str(tmp_path / "nodir"), "--into", str(tmp_path / "m"), "--key", f"{key}.pub"],
                 ["sync", "--mirror", str(tmp_path / "typo"), "--to", str(tmp_path), "--signing-key", f"{key}.key"]):
        r = run(*args)
        no_traceback(r)
        assert r.returncode == 2, (args, r.stderr)


def test_the_command_lines_vulndb_default_is_the_databases():
    from airsync import cli
    from airsync.vulndb import db

    assert cli.VULNDB_URL == db.DEFAULT_URL
