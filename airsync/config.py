"""The TOML configuration file and how it maps onto job settings.

The file is read with ``tomllib``; every key is checked against a schema of expected types
and ranges, and a bad one is a ``ConfigError`` that names the file, the key and what is
wrong. Command-line options override the file; the file overrides built-in defaults
(``fetch_settings``: the same for ``airsync mirror`` and the service's mirror jobs).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airsync.errors import ConfigError
from airsync.fetch.ratelimit import parse_rate
from airsync.vulndb.setting import parse_setting

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str | int, what: str = "size") -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ConfigError(f"{what} must be positive, got {text}")
        return text
    if isinstance(text, str):
        t = text.strip().lower().removesuffix("ib").removesuffix("b")
        unit = t[-1:] if t[-1:] in ("k", "m", "g") else ""
        num = t[: len(t) - len(unit)]
        try:
            value = float(num)
        except ValueError:
            value = -1
        # "inf" and "1e400" parse as floats but are no size (int() of them raises OverflowError).
        if value > 0 and math.isfinite(value * _SIZE_UNITS[unit]):
            return int(value * _SIZE_UNITS[unit])
    raise ConfigError(f"bad {what} {text!r}: use a positive number with an optional unit, e.g. 8M")


@dataclass(frozen=True)
class Key:
    types: tuple[type, ...]
    help: str


# [mirror] keys, their types and what they mean (conf.example.toml documents the same).
MIRROR_KEYS: dict[str, Key] = {
    "to": Key((str,), "mirror directory (a GOPROXY tree)"),
    "upstream": Key((str,), "GOPROXY-style list of upstream proxies"),
    "concurrency": Key((int,), "files downloaded at once"),
    "per_host": Key((int,), "requests in flight per upstream host"),
    "per_host_max": Key((int,), "most whole-file requests in flight per host while latency is the limit "
                                "(default 4 x per_host; per_host keeps the number fixed)"),
    "chunk_size": Key((str, int), "size of one parallel range of a large file"),
    "split_threshold": Key((str, int), "files larger than this are fetched in parallel ranges"),
    "limit_rate": Key((str, int), "overall download rate limit, bytes per second (e.g. 2M)"),
    "http2": Key((bool,), "use HTTP/2 where the upstream offers it"),
    "read_timeout": Key((int, float), "seconds a read may stall before the request is retried"),
    "file_deadline": Key((int, float), "seconds one file may take in all"),
    "retries": Key((int,), "attempts per request before a file fails"),
    "sumdb": Key((str,), "checksum database: name+hash+key [URL], a known name, or off"),
    "private": Key((str,), "GONOSUMDB-style globs of module paths never looked up in the database"),
    "vulndb": Key((str,), "also mirror the Go vulnerability database from this URL (https://vuln.go.dev), or off"),
    "deps": Key((bool,), "also mirror the module graph of every go.mod and module named, as the go command loads it"),
    "latest": Key((bool,), "also mirror every module's latest version, so queries inside see what the outside does"),
    "toolchains": Key((list,), "Go toolchains to mirror (go1.27.3, or go1.27 for its newest release)"),
    "platforms": Key((list,), "GOOS/GOARCH of mirrored toolchains (default: this machine's); given, the go.mod "
                              "files' go and toolchain lines name toolchains too"),
}


# The largest sensible value of each integer key: TOML integers are unbounded in Python, and a
# value past these is a typo that would only fail later, deep inside a job (or in SQLite).
INT_MAX = {"concurrency": 10_000, "per_host": 10_000, "per_host_max": 10_000, "retries": 1_000, "history": 100_000}


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only with a config file: 5 ms of every command's start-up otherwise

    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def _table(path: Path, data: dict[str, Any], name: str, keys: dict[str, Key]) -> dict[str, Any]:
    """The table ``[name]`` of ``data`` with every key known and of its type (else ConfigError)."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: '{name}' must be a table ([{name}])")
    for key, value in table.items():
        spec = keys.get(key)
        if spec is None:
            raise ConfigError(f"{path}: unknown key {name}.{key} (known: {', '.join(sorted(keys))})")
        if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
            want = " or ".join(t.__name__ for t in spec.types)
            raise ConfigError(f"{path}: {name}.{key} must be {want}, got {value!r}")
        if list in spec.types and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: {name}.{key} must be a list of strings, got {value!r}")
    return table


def load(path: Path) -> dict[str, Any]:
    """Read and check a config file; returns its ``[mirror]`` table (other tables untouched)."""
    return _mirror_table(path, _read_toml(path))


def store_table(path: Path) -> dict[str, Any]:
    """The ``[store]`` table (object-store settings, objstore.url.STORE_KEYS); {} when absent."""
    from airsync.objstore.url import STORE_KEYS

    table = _read_toml(path).get("store", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'store' must be a table ([store])")
    for key, value in table.items():
        if key not in STORE_KEYS:
            raise ConfigError(f"{path}: unknown key store.{key} (known: {', '.join(sorted(STORE_KEYS))})")
        if not isinstance(value, bool if key == "virtual_hosted" else str):
            raise ConfigError(f"{path}: store.{key} must be {'a boolean' if key == 'virtual_hosted' else 'a string'}")
    return table


def _mirror_table(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    mirror = _table(path, data, "mirror", MIRROR_KEYS)
    for key, value in mirror.items():
        try:
            if key == "limit_rate":
                parse_rate(str(value))
            elif key in ("chunk_size", "split_threshold"):
                parse_size(value, f"mirror.{key}")
        except (ConfigError, OverflowError) as e:  # parse_rate("1" + 400 zeros): int(inf)
            raise ConfigError(f"{path}: mirror.{key}: {e}") from None
        if key in ("limit_rate", "chunk_size", "split_threshold") or not isinstance(value, (int, float)) \
                or isinstance(value, bool):
            continue
        if value <= 0 or not math.isfinite(value):
            raise ConfigError(f"{path}: mirror.{key} must be positive and finite, got {value!r}")
        if key in INT_MAX and value > INT_MAX[key]:
            raise ConfigError(f"{path}: mirror.{key} must be at most {INT_MAX[key]}, got {value!r}")
    if "vulndb" in mirror:
        try:
            parse_setting(mirror["vulndb"])
        except ConfigError as e:
            raise ConfigError(f"{path}: mirror.{e}") from None
    if mirror.get("to") == "":
        raise ConfigError(f"{path}: mirror.to must not be empty")
    if "platforms" in mirror:
        from airsync.goproxy import gover

        try:
            gover.parse_platforms(",".join(mirror["platforms"]))
        except ValueError as e:
            raise ConfigError(f"{path}: mirror.platforms: {e}") from None
    return mirror


@dataclass(frozen=True)
class Sources:
    """Where a mirror job fetches from and what it checks against, with notes for the user."""

    upstreams: list  # goproxy.upstream.Upstream
    sumdb: Any  # trust.sumdb.SumDB, or None for off
    private: str
    notes: tuple[str, ...] = ()


def mirror_sources(table: dict[str, Any], args: argparse.Namespace | None = None,
                   environ: Mapping[str, str] | None = None) -> Sources:
    """Upstreams, checksum database and private patterns of a mirror job: command-line options
    over the config's [mirror] ``table`` over the user's Go environment (GOPROXY, GOSUMDB,
    GONOSUMDB/GOPRIVATE) over the defaults, as the go command would take them."""
    from airsync.goproxy import goenv
    from airsync.goproxy.upstream import DEFAULT_GOPROXY, parse_goproxy
    from airsync.trust import sumdb

    env = goenv.from_environ(os.environ if environ is None else environ, str(Path.home()))

    def pick(name: str, from_env: str | None) -> str | None:
        v = getattr(args, name, None)
        return v if v is not None else table.get(name, from_env)

    notes: list[str] = []
    upstream = pick("upstream", None)
    if upstream is None:
        upstream, notes = env.goproxy or DEFAULT_GOPROXY, list(env.notes)
    db = sumdb.parse_gosumdb(pick("sumdb", env.gosumdb) or sumdb.SUM_GOLANG_ORG)
    upstreams = parse_goproxy(upstream)
    for up in upstreams:
        # As the go command: credentials in a proxy URL never travel over plain HTTP, unless the
        # user says the host is to be reached insecurely.
        if up.url.startswith("http://") and "@" in up.url.split("/")[2] and not goenv.host_matches(env.insecure, up.url):
            raise ConfigError(f"refusing to pass credentials to insecure URL {up.redacted}: use https, "
                              "or list the host in GOINSECURE")
    return Sources(upstreams, db, pick("private", env.private) or "", tuple(notes))


def fetch_settings(table: dict[str, Any], args: argparse.Namespace | None = None,
                   environ: Mapping[str, str] | None = None):
    """Download settings (``FetchSettings``) of a mirror job: command-line options (``args``,
    None where not given) over the config's [mirror] ``table`` over the built-in defaults; TLS
    and credentials from the user's Go environment (GOINSECURE, GOAUTH, NETRC)."""
    from airsync.fetch.fetcher import FetchSettings  # the download stack: only for a job
    from airsync.fetch.retry import RetryPolicy
    from airsync.goproxy import goenv

    env = goenv.from_environ(os.environ if environ is None else environ, None)
    try:
        goenv.parse_goauth(env.goauth)
    except ValueError as e:
        raise ConfigError(str(e)) from None

    def pick(name: str, default):
        v = getattr(args, name, None)
        return v if v is not None else table.get(name, default)

    d = FetchSettings()
    rate = pick("limit_rate", None)
    per_host, per_host_max = int(pick("per_host", d.per_host)), pick("per_host_max", None)
    if per_host_max is not None and int(per_host_max) < per_host:
        raise ConfigError(f"per_host_max {per_host_max} is below per_host {per_host}: it must be at least as "
                          "large (equal keeps the number of requests in flight fixed)")
    return FetchSettings(
        concurrency=int(pick("concurrency", d.concurrency)),
        per_host=per_host,
        per_host_max=None if per_host_max is None else int(per_host_max),
        chunk_size=parse_size(pick("chunk_size", d.chunk_size), "chunk size"),
        split_threshold=parse_size(pick("split_threshold", d.split_threshold), "split threshold"),
        limit_rate=None if rate is None else parse_rate(str(rate)),
        http2=bool(pick("http2", d.http2)),
        read_timeout=float(pick("read_timeout", d.read_timeout)),
        file_deadline=float(pick("file_deadline", d.file_deadline)),
        retry=RetryPolicy(attempts=int(pick("retries", RetryPolicy().attempts))),
        insecure=env.insecure,
        goauth=env.goauth,
        netrc=env.netrc,
    )


# -- the service: airsync run --config FILE ----------------------------------------------------

DEFAULT_CONFIG = Path("/etc/airsync/airsync.toml")
DEFAULT_MIRROR = "/var/lib/airsync/mirror"

# [daemon] keys, their types and what they mean (conf.example.toml documents the same).
DAEMON_KEYS: dict[str, Key] = {
    "requests_dir": Key((str,), "watched directory: go.sum, go.mod and module-list files dropped here are mirrored"),
    "control_socket": Key((str,), "unix socket of the control API (airsync status and friends)"),
    "state_db": Key((str,), "SQLite file where job transitions are kept"),
    "signing_key": Key((str,), "PREFIX.key from airsync keygen: signs the manifest of every medium"),
    "modules": Key((list,), "module versions (PATH@VERSION) always kept in the mirror"),
    "modules_files": Key((list,), "files of PATH@VERSION lines always kept in the mirror"),
    "go_sum": Key((list,), "go.sum files whose closure is always kept in the mirror"),
    "go_mod": Key((list,), "go.mod files whose requirements are always kept in the mirror"),
    "refresh_interval": Key((str, int, float), "how often the config's lists are mirrored again (e.g. 6h; 0: never)"),
    "debounce": Key((int, float), "seconds a dropped request file must stay unchanged before it is read"),
    "stop_timeout": Key((int, float), "on SIGTERM, seconds a sync to a medium gets to finish its file before it is "
                                      "abandoned (mirror jobs stop at once; both resume at the next start)"),
    "history": Key((int,), "finished jobs kept for airsync status"),
    "bundle_dir": Key((str,), "where bundle jobs write bundles (airsync bundle-now; each in airsync-<id>/)"),
    "bundle_interval": Key((str, int, float), "how often a bundle of the mirror is written (e.g. 1d; 0: only on "
                                               "request, the default)"),
    "bundle_max_size": Key((str, int), "largest part of a bundle (default 4G: FAT32's limit less a byte)"),
    "bundle_since": Key((str,), "the receipt (or manifest) the inside sent back: bundles hold only what it lacks"),
}

_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float, what: str = "duration") -> float:
    """Seconds from 90, 2.5, "90s", "30m", "6h" or "1d"; 0 is allowed (it means never).
    Infinity (inf, "1e400", "1e308d") is not: it would reach JSON and trio's clock as inf."""
    seconds = -1.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        t = value.strip().lower()
        unit = t[-1:] if t[-1:] in _DURATION_UNITS else ""
        try:
            seconds = float(t[: len(t) - len(unit)]) * _DURATION_UNITS[unit]
        except ValueError:
            pass
    if seconds >= 0 and math.isfinite(seconds):
        return seconds
    raise ConfigError(f"bad {what} {value!r}: use seconds or a number with s, m, h or d, e.g. 6h")


@dataclass(frozen=True)
class DaemonConfig:
    """Everything ``airsync run`` needs, checked: the [mirror] table plus the [daemon] table."""

    path: Path
    mirror: dict[str, Any]  # the checked [mirror] table: how mirror jobs fetch
    mirror_dir: Path
    requests_dir: Path = Path("/var/lib/airsync/requests")
    control_socket: Path = Path("/run/airsync/control.sock")
    state_db: Path = Path("/var/lib/airsync/daemon.db")
    signing_key: Path = Path("/etc/airsync/signing.key")
    modules: tuple[str, ...] = ()
    modules_files: tuple[str, ...] = ()
    go_sum: tuple[str, ...] = ()
    go_mod: tuple[str, ...] = ()
    refresh_interval: float = 6 * 3600.0
    debounce: float = 1.0
    stop_timeout: float = 20.0
    history: int = 50
    bundle_dir: Path | None = None
    bundle_interval: float = 0.0
    bundle_max_size: int = 4 * 1024**3
    bundle_since: Path | None = None
    store: Any = None  # objstore.url.StoreTarget when [mirror] to is s3://...; mirror_dir is then its local copy

    @property
    def has_sources(self) -> bool:
        return bool(self.modules or self.modules_files or self.go_sum or self.go_mod
                    or self.mirror.get("vulndb", "off") != "off")


def load_daemon(path: Path) -> DaemonConfig:
    """Read and check the service's config file: [mirror] and [daemon]; errors name file and key."""
    from airsync.errors import AirsyncError
    from airsync.goproxy import modpath
    from airsync.goproxy.upstream import parse_goproxy
    from airsync.trust import sumdb

    data = _read_toml(path)
    for name in data:
        if name not in ("mirror", "daemon", "store"):
            raise ConfigError(f"{path}: unknown table [{name}] (known: [mirror], [daemon], [store])")
    mirror = _mirror_table(path, data)
    # Settings a job would only reject later are checked now, so a reload can refuse them.
    for key, check in (("upstream", parse_goproxy), ("sumdb", sumdb.parse_gosumdb)):
        if key in mirror:
            try:
                check(mirror[key])
            except AirsyncError as e:
                raise ConfigError(f"{path}: mirror.{key}: {e}") from None
    d = _table(path, data, "daemon", DAEMON_KEYS)

    def here(p: str) -> Path:
        # Relative paths mean the config file's directory, not wherever the service was started.
        return path.parent.absolute() / p

    values: dict[str, Any] = {}
    for key in ("requests_dir", "control_socket", "state_db", "signing_key", "bundle_dir", "bundle_since"):
        if key in d:
            if not d[key]:
                raise ConfigError(f"{path}: daemon.{key} must not be empty")
            values[key] = here(d[key])
    for key in ("modules_files", "go_sum", "go_mod"):
        if key in d:
            values[key] = tuple(str(here(p)) for p in d[key])
    if "modules" in d:
        values["modules"] = tuple(d["modules"])
    for i, text in enumerate(values.get("modules", ())):
        try:
            modpath.parse_module_version(text)
        except AirsyncError as e:
            raise ConfigError(f"{path}: daemon.modules[{i}]: {e}") from None
    if "bundle_max_size" in d:
        values["bundle_max_size"] = parse_size(d["bundle_max_size"], f"{path}: daemon.bundle_max_size")
    for key in ("refresh_interval", "debounce", "stop_timeout", "bundle_interval"):
        if key in d:
            try:
                values[key] = parse_duration(d[key], f"daemon.{key}")
            except ConfigError as e:
                raise ConfigError(f"{path}: {e}") from None
    if "history" in d:
        if not 1 <= d["history"] <= INT_MAX["history"]:
            raise ConfigError(f"{path}: daemon.history must be from 1 to {INT_MAX['history']}, got {d['history']}")
        values["history"] = d["history"]
    to = str(mirror.get("to", ""))
    if to.startswith("s3://"):
        # Mirror jobs publish into the store; syncs read its local copy, brought up to date first.
        from airsync.objstore.mirror import default_state_dir, target

        try:
            store = target(to, store_table(path))
        except AirsyncError as e:
            raise ConfigError(f"{path}: mirror.to: {e}") from None
        return DaemonConfig(path=path, mirror=mirror, mirror_dir=default_state_dir(store) / "tree", store=store,
                            **values)
    return DaemonConfig(path=path, mirror=mirror, mirror_dir=here(mirror.get("to", DEFAULT_MIRROR)), **values)
