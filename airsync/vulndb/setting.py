"""The ``--vulndb`` / ``mirror.vulndb`` setting: which vulnerability database a mirror carries.

Apart from ``db`` so that the command line and the config check read it without importing the
database's parsers (8 ms of every command's start-up, ``--help`` included). Pure.
"""

from __future__ import annotations

from airsync.errors import ConfigError

__all__ = ["DEFAULT_URL", "parse_setting"]

#: The Go project's vulnerability database.
DEFAULT_URL = "https://vuln.go.dev"


def parse_setting(value: str | None) -> str | None:
    """The database URL a ``--vulndb``/``vulndb`` value asks for; None for off."""
    if value is None or value.strip() in ("", "off"):
        return None
    url = value.strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"vulndb {value!r}: want the database's URL (https://...), or off")
    return url
