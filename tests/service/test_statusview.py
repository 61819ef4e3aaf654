"""What airsync status draws, from a /v1/status answer; and airsync init's starting config."""

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from airsync import config
from airsync.service import statusview
from airsync.service.commands import starter_config

STATUS = {
    "daemon": {"pid": 42, "uptime": 3725, "healthy": True, "problem": None, "stopping": False, "running": 1,
               "queued": 1, "mirror": "/var/lib/airsync/mirror", "next_refresh": None,
               "reload_error": "airsync.toml: unknown key daemon.x"},
    "jobs": [
        {"id": 3, "kind": "usb", "target": "/run/airsync/media/sdb1", "label": "sdb1", "source": "usb-attach",
         "state": "running", "error": None, "result": {},
         "progress": {"files_done": 5, "files_total": None, "bytes": 5 << 20, "bytes_total": None,
                      "rate": 2 << 20, "eta": None, "cancelling": False}},
        {"id": 2, "kind": "mirror", "target": "/m", "label": "go.sum", "source": "request:go.sum", "state": "failed",
         "error": "1 file(s) failed", "progress": None,
         "result": {"fetched": 4, "skipped": 1, "bytes": 2048, "unpinned": [f"example.com/m{i}@v1.0.0" for i in range(7)],
                    "not_carried": ["example.com/a@v1.0.0"], "input_problems": []}},
    ],
}


def draw(bars: bool) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(statusview.render(STATUS, bars=bars))
    return console.export_text()


def test_table_health_and_details():
    text = draw(bars=False)
    assert "healthy" in text and "pid 42" in text and "up 1h02m" in text
    assert "last reload failed" in text and "daemon.x" in text
    assert "/run/airsync/media/sdb1 (sdb1)" in text and "5/?" in text and "2.0 MiB/s" in text
    assert "4 new, 1 had" in text and "1 file(s) failed" in text
    assert "not hash-pinned by any go.sum (7): example.com/m0@v1.0.0" in text and "and 2 more" in text
    assert "checksum database not carried for (1): example.com/a@v1.0.0" in text


def test_watch_view_has_progress_column():
    assert "progress" in draw(bars=True)


def test_unhealthy_is_loud():
    status = {**STATUS, "daemon": {**STATUS["daemon"], "healthy": False, "problem": "job database: disk full"}}
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(statusview.render(status))
    assert "UNHEALTHY: job database: disk full" in console.export_text()


def test_starter_config_is_valid_and_init_refuses_to_overwrite(tmp_path):
    path = tmp_path / "airsync.toml"
    path.write_text(starter_config())
    c = config.load_daemon(path)
    assert c.control_socket == config.DaemonConfig.control_socket and c.refresh_interval == 6 * 3600
    out = tmp_path / "new.toml"
    run = [sys.executable, "-m", "airsync", "init", "--out", str(out)]
    assert subprocess.run(run, capture_output=True, timeout=60).returncode == 0
    assert out.read_text() == starter_config()
    r = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "already exists; not overwritten" in r.stderr


def test_user_strings_are_not_markup():
    job = {"id": 4, "kind": "usb", "target": "/media/[/x]", "label": "[/x]", "source": "usb-attach",
           "state": "failed", "error": "[red]x[bold", "progress": None, "result": {}}
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(statusview.render({**STATUS, "jobs": [job]}))  # before: rich MarkupError
    text = console.export_text()
    assert "/media/[/x] ([/x])" in text and "[red]x[bold" in text


def test_input_problems_count_what_was_not_kept():
    job = {**STATUS["jobs"][1], "result": {"input_problems": [f"f:{i}: bad" for i in range(20)],
                                           "input_problem_count": 30000}}
    (line,) = statusview.details([job])
    assert "input problems (30000): f:0: bad" in line.plain and "and 29995 more" in line.plain


def test_starter_config_has_every_daemon_key():
    text = starter_config()
    for key in config.DAEMON_KEYS:
        assert f"{key} = " in text, key


def test_notes_show_beside_healthy():
    note = "signing key /etc/airsync/signing.key missing: USB jobs will fail (make one with: airsync keygen)"
    status = {**STATUS, "daemon": {**STATUS["daemon"], "notes": [note]}}
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(statusview.render(status))
    text = console.export_text()
    assert "healthy" in text and note in text


def test_a_usb_target_with_two_labels_has_no_nested_parentheses():
    job = {**STATUS["jobs"][0], "label": "blue, sdb1"}  # the daemon joins the marker's and the unit's label
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(statusview.render({**STATUS, "jobs": [job]}))
    assert "/run/airsync/media/sdb1 (blue, sdb1)" in console.export_text()


def airsync(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "airsync", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_init_makes_the_directory_writes_0640_and_says_what_next(tmp_path):
    out = tmp_path / "etc" / "airsync" / "airsync.toml"  # /etc/airsync on a fresh host: not there yet
    r = airsync("init", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    assert oct(out.parent.stat().st_mode & 0o777) == oct(0o755)
    # run has no check of its own: the hint says how to check and how to start (before: "check it with: run")
    assert f"airsync run --check --config {out}" in r.stdout and "start the service with" in r.stdout
    r = airsync("init", "--out", str(out.parent))
    assert r.returncode == 2 and "is a directory" in r.stderr, r.stderr


def test_starter_config_points_at_the_installed_example_and_tells_the_truth_about_stop_timeout():
    text = starter_config()
    assert "/opt/airsync/doc/conf.example.toml" in text
    (line,) = [ln for ln in text.splitlines() if "SIGTERM" in ln]
    assert "mirror jobs stop at once" in line and "sync" in line
    example = (Path(__file__).resolve().parents[2] / "conf.example.toml").read_text()
    assert "mirror jobs stop at once" in example


def test_lists_cut_short_in_a_record_show_their_true_count():
    line = statusview._listing("not hash-pinned by any go.sum", [f"m{i}@v1" for i in range(20)], 5000)
    assert line.startswith("not hash-pinned by any go.sum (5000): ") and line.endswith(f"and {5000 - statusview.DETAIL_ITEMS} more")
