"""The TOML configuration file and how it maps onto job settings.

The file is read with ``tomllib``; every key is checked against a schema of expected types
and ranges, and a bad one is a ``ConfigError`` that names the file, the key and what is
wrong. Command-line options override the file; the file overrides built-in defaults.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airsync.errors import ConfigError
from airsync.ratelimit import parse_rate

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
        if value > 0:
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
    "chunk_size": Key((str, int), "size of one parallel range of a large file"),
    "split_threshold": Key((str, int), "files larger than this are fetched in parallel ranges"),
    "limit_rate": Key((str, int), "overall download rate limit, bytes per second (e.g. 2M)"),
    "http2": Key((bool,), "use HTTP/2 where the upstream offers it"),
    "read_timeout": Key((int, float), "seconds a read may stall before the request is retried"),
    "file_deadline": Key((int, float), "seconds one file may take in all"),
    "retries": Key((int,), "attempts per request before a file fails"),
    "sumdb": Key((str,), "checksum database: name+hash+key [URL], a known name, or off"),
    "private": Key((str,), "GONOSUMDB-style globs of module paths never looked up in the database"),
}


def load(path: Path) -> dict[str, Any]:
    """Read and check a config file; returns its ``[mirror]`` table (other tables untouched)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    mirror = data.get("mirror", {})
    if not isinstance(mirror, dict):
        raise ConfigError(f"{path}: 'mirror' must be a table ([mirror])")
    for key, value in mirror.items():
        spec = MIRROR_KEYS.get(key)
        if spec is None:
            raise ConfigError(f"{path}: unknown key mirror.{key} (known: {', '.join(sorted(MIRROR_KEYS))})")
        if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
            want = " or ".join(t.__name__ for t in spec.types)
            raise ConfigError(f"{path}: mirror.{key} must be {want}, got {value!r}")
        try:
            if key == "limit_rate":
                parse_rate(str(value))
            elif key in ("chunk_size", "split_threshold"):
                parse_size(value, f"mirror.{key}")
        except ConfigError as e:
            raise ConfigError(f"{path}: mirror.{key}: {e}") from None
        if key not in ("limit_rate", "chunk_size", "split_threshold") and isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise ConfigError(f"{path}: mirror.{key} must be positive, got {value!r}")
    return mirror
