"""Subcommands of the long-running service and its clients (``run``, ``status``, ...).

They live apart from ``cli`` so the daemon's command line grows in one place. ``run`` is the
service itself (``daemon``); ``init`` writes a starting config; ``usb-init`` marks a medium;
``status``, ``jobs cancel``, ``sync-now`` and ``usb-attach`` talk to a running service over
its control socket (``controlclient.Client``). Each handler returns an exit code; user mistakes are
raised as ``AirsyncError`` and printed by ``cli.main`` without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from airsync import config
from airsync.errors import ConfigError

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_SOCKET = "/run/airsync/control.sock"
EXAMPLE_CONFIG = "/opt/airsync/doc/conf.example.toml"  # where scripts/install puts conf.example.toml


def _client(args: argparse.Namespace):
    from airsync.service import controlclient

    return controlclient.Client(Path(args.socket))


def cmd_run(args: argparse.Namespace) -> int:
    from airsync.service import daemon, lifecycle

    path = Path(args.config)
    if not os.path.lexists(path):
        raise ConfigError(f"{path}: no such config file; create one with: airsync init --out {path}")
    conf = config.load_daemon(path)  # a bad config: exit 2 before anything starts
    if args.check:
        for warning in lifecycle.config_warnings(conf):
            print(f"airsync: warning: {warning}", file=sys.stderr)
        print(f"{path}: the config is valid")
        return EXIT_OK
    sys.setswitchinterval(0.0005)  # as for airsync mirror: worker threads hand the GIL back soon
    return daemon.run(conf)


# What ``airsync init`` writes: (table, key, value or None to leave it commented out).
_EXAMPLES = {"limit_rate": "2M", "sumdb": "sum.golang.org", "private": "*.corp.example",
             "bundle_dir": "/var/lib/airsync/bundles", "bundle_since": "/var/lib/airsync/receipt.manifest"}


def _starter() -> list[tuple[str, str, object]]:
    """(table, key, value) of the starter config: the defaults, taken from where they are
    defined (None: no default, an example is shown commented out)."""
    from airsync.fetch.fetcher import FetchSettings  # the download stack: only when a config is written
    from airsync.goproxy.upstream import DEFAULT_GOPROXY

    d = config.DaemonConfig
    return [
        ("mirror", "to", config.DEFAULT_MIRROR),
        ("mirror", "upstream", DEFAULT_GOPROXY),
        ("mirror", "concurrency", FetchSettings.concurrency),
        ("mirror", "limit_rate", None),
        ("mirror", "sumdb", None),
        ("mirror", "private", None),
        ("daemon", "requests_dir", str(d.requests_dir)),
        ("daemon", "control_socket", DEFAULT_SOCKET),
        ("daemon", "state_db", str(d.state_db)),
        ("daemon", "signing_key", str(d.signing_key)),
        ("daemon", "modules", []),
        ("daemon", "go_sum", []),
        ("daemon", "go_mod", []),
        ("daemon", "modules_files", []),
        ("daemon", "refresh_interval", "6h"),  # d.refresh_interval, as people write it
        ("daemon", "debounce", d.debounce),
        ("daemon", "stop_timeout", d.stop_timeout),
        ("daemon", "history", d.history),
        ("daemon", "bundle_dir", None),
        ("daemon", "bundle_interval", 0),
        ("daemon", "bundle_max_size", "4G"),
        ("daemon", "bundle_since", None),
    ]


def starter_config() -> str:
    """A commented config whose values are the defaults; every line is tomli-w's own TOML."""
    import tomli_w

    keys = {"mirror": config.MIRROR_KEYS, "daemon": config.DAEMON_KEYS}
    out = ["# airsync service configuration (airsync run --config FILE). Every key is explained in",
           f"# {EXAMPLE_CONFIG} (conf.example.toml in the source tree).",
           "# Check it with: airsync run --check --config FILE; reload after editing: systemctl reload airsync."]
    table = None
    for name, key, value in _starter():
        if name != table:
            out += ["", f"[{name}]"]
            table = name
        out.append(f"# {keys[name][key].help}")
        if value is None:
            out.append("# " + tomli_w.dumps({key: _EXAMPLES[key]}).strip())
        else:
            out.append(tomli_w.dumps({key: value}).strip())
    return "\n".join(out) + "\n"


def cmd_init(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"{out} is a directory; give --out the config file to write, e.g. {out / 'airsync.toml'}")
    try:
        out.parent.mkdir(mode=0o755, parents=True, exist_ok=True)  # /etc/airsync on a fresh host
        # 0640: the service's group reads it, as scripts/install and systemd/README.md have it.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        raise ConfigError(f"{out} already exists; not overwritten (edit it, or give --out another file)") from None
    except OSError as e:
        raise ConfigError(f"{out}: cannot create: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o640)  # whatever the umask: never wider, never narrower
        f.write(starter_config())
    print(f"wrote {out}; check it with: airsync run --check --config {out}; "
          f"then start the service with: airsync run --config {out} (or systemctl start airsync)")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    try:
        code = _status(args)
        sys.stdout.flush()
    except BrokenPipeError:  # airsync status --json | head: the reader had enough; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return EXIT_FAILED  # as rich does for the table: not all of it was delivered
    return code


def _status(args: argparse.Namespace) -> int:
    if args.count is not None and not args.watch:
        raise ConfigError("--count N only counts the redraws of --watch; give --watch too")
    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")

    with _client(args) as client:
        if args.json:
            print(json.dumps(client.status(), indent=1))
            return EXIT_OK
        from rich.console import Console  # here: --json, for scripts, starts without rich

        from airsync.service import statusview

        # Off a terminal (a pipe, a log) rich would wrap the table at 80 columns.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        if not args.watch:
            console.print(statusview.render(client.status()))
            return EXIT_OK
        from rich.live import Live

        try:
            with Live(statusview.render(client.status(), bars=True), console=console,
                      auto_refresh=False) as live:
                n = 1
                while args.count is None or n < args.count:
                    time.sleep(args.interval)
                    live.update(statusview.render(client.status(), bars=True), refresh=True)
                    n += 1
        except KeyboardInterrupt:
            pass  # Ctrl-C is how watching ends
    return EXIT_OK


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.cancel(args.id)
    # A queued job is cancelled at once; a running one is told to stop and ends at a safe point.
    what = "cancelled (it had not started)" if job["state"] == "cancelled" \
        else "stopping (it ends at a safe point; a rerun resumes)"
    print(f"job {job['id']} ({job['kind']} {job.get('label') or job['target']}): {what}")
    return EXIT_OK


def cmd_bundle_now(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.bundle_now()
    print(f"job {job['id']}: bundle to {job['target']} ({job['state']})")
    return EXIT_OK


def cmd_sync_now(args: argparse.Namespace) -> int:
    with _client(args) as client:
        queued = client.sync_now()
    if not queued:
        print("nothing to refresh: no module lists in the config and no pending request files")
    for job in queued:
        print(f"job {job['id']}: mirror {job.get('label') or job['source']} ({job['state']})")
    return EXIT_OK


def cmd_usb_init(args: argparse.Namespace) -> int:
    from airsync.service import marker

    root = Path(args.path)
    m = marker.write(root, args.label or root.resolve().name)
    print(f"{root} is now an airsync medium (label {m.label!r}); attach it with: airsync usb-attach {root}")
    return EXIT_OK


def cmd_usb_attach(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.path)
    with _client(args) as client:
        answer = client.usb_attach(path, args.label or "")
    job = answer["job"]
    if args.quiet:  # for scripts: the job id alone
        print(job["id"])
    else:
        where = f"{job['label']} at {job['target']}" if job.get("label") else job["target"]
        print(f"job {job['id']}: usb {where} ({job['state']})")
    if not answer["new"]:
        print(f"airsync: {path} already has job {job['id']} ({job['state']})", file=sys.stderr)
    return EXIT_OK


def _job_id(text: str) -> int:
    """A job id on the command line: a positive number (a typo is a usage error, not 'no job')."""
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id; job ids are numbers, as airsync status shows them")
    return int(text)


def _socket_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=DEFAULT_SOCKET, metavar="PATH",
                   help=f"the daemon's control socket (default {DEFAULT_SOCKET})")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the daemon's subcommands to the ``airsync`` parser."""
    r = sub.add_parser("run", help="run the service: watch requests, mirror, sync media (under systemd)")
    r.add_argument("--config", default=str(config.DEFAULT_CONFIG), metavar="FILE",
                   help=f"TOML config with [mirror] and [daemon] tables (default {config.DEFAULT_CONFIG})")
    r.add_argument("--check", action="store_true",
                   help="only read and check the config, then exit (0: valid, 2: not; warnings on stderr)")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("init", help="write a commented starting config for the service")
    i.add_argument("--out", default=str(config.DEFAULT_CONFIG), metavar="FILE",
                   help=f"where to write it (default {config.DEFAULT_CONFIG}); never overwritten")
    i.set_defaults(func=cmd_init)

    s = sub.add_parser("status", help="what the service is doing: health and jobs")
    s.add_argument("--watch", action="store_true", help="redraw live with progress bars until Ctrl-C")
    s.add_argument("--json", action="store_true", help="print the control API's JSON (for scripts)")
    s.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="redraw interval of --watch")
    s.add_argument("--count", type=int, metavar="N", help="with --watch: stop after N redraws (needs --watch)")
    _socket_option(s)
    s.set_defaults(func=cmd_status)

    j = sub.add_parser("jobs", help="act on the service's jobs")
    jsub = j.add_subparsers(dest="jobs_command", required=True)
    jc = jsub.add_parser("cancel", help="cancel a job (a running one stops at a safe point)")
    jc.add_argument("id", metavar="ID", type=_job_id, help="job id (a number), as airsync status shows it")
    _socket_option(jc)
    jc.set_defaults(func=cmd_jobs_cancel)

    n = sub.add_parser("sync-now", help="mirror the config's lists and pending request files now")
    _socket_option(n)
    n.set_defaults(func=cmd_sync_now)

    bn = sub.add_parser("bundle-now", help="write a bundle of the mirror into daemon.bundle_dir now")
    _socket_option(bn)
    bn.set_defaults(func=cmd_bundle_now)

    ui = sub.add_parser("usb-init", help="mark a mounted medium as one the service may write to")
    ui.add_argument("path", metavar="PATH", help="the medium's mount point")
    ui.add_argument("--label", help="a name for the medium (default: the directory's name)")
    ui.set_defaults(func=cmd_usb_init)

    ua = sub.add_parser("usb-attach", help="ask the service to sync the mirror to a mounted medium; prints its job")
    ua.add_argument("--quiet", "-q", action="store_true", help="print only the job id (for scripts)")
    ua.add_argument("path", metavar="PATH", help="the medium's mount point (must carry the usb-init marker)")
    ua.add_argument("--label", help="where it is plugged in, shown in status beside the medium's own label")
    _socket_option(ua)
    ua.set_defaults(func=cmd_usb_attach)
