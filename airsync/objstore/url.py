"""Store URLs and the settings to reach them: pure, so every rule is tested without a server.

A mirror target is a directory or ``s3://BUCKET/PREFIX`` (``s3://BUCKET`` for the bucket's root).
The prefix is a key prefix without leading or trailing slashes; objects live at
``PREFIX/<the same relative path a directory mirror has>``.

Settings come, each on its own, from the first source that has it, in the order AWS's own tools use:
the environment (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``), then the ``[store]`` table of
airsync's config, then the profile (``AWS_PROFILE``, else ``default``) in the shared credentials file
(``AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/credentials``) and config file (``AWS_CONFIG_FILE``,
else ``~/.aws/config``; there the section is ``[profile NAME]``). Reading those files is the caller's
job: this module gets their text. Addressing is path-style (``ENDPOINT/BUCKET/KEY``), which every
self-hosted store answers, unless ``virtual_hosted = true`` is asked for.

The secret never appears in a ``repr``, a log line or an error: ``Settings`` hides it.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from airsync.errors import ConfigError

SCHEME = "s3://"
# Bucket names as S3 allows them (3-63 of lower case, digits, dots, hyphens); self-hosted stores
# often allow underscores and upper case too, so only what breaks a URL is refused.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,62}$")
STORE_KEYS = frozenset({"endpoint", "region", "access_key_id", "secret_access_key", "session_token",
                        "profile", "virtual_hosted", "state"})


@dataclass(frozen=True)
class StoreURL:
    bucket: str
    prefix: str  # '' or 'a/b' (no leading/trailing slash)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    def key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def rel(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key


def is_store_url(target: object) -> bool:
    return isinstance(target, StoreURL) or (isinstance(target, str) and target.startswith(SCHEME))


def parse(target: str) -> StoreURL:
    """``s3://BUCKET[/PREFIX]`` -> StoreURL; ConfigError naming what is wrong."""
    if not target.startswith(SCHEME):
        raise ConfigError(f"{target!r}: not a store URL (want s3://BUCKET/PREFIX)")
    rest = target[len(SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigError(f"{target!r}: bad bucket name {bucket!r}")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    for p in parts:
        if p in ("", ".", "..") or p.startswith(".") or "\\" in p or any(ord(c) < 32 for c in p):
            raise ConfigError(f"{target!r}: bad prefix element {p!r}")
    if "?" in target or "#" in target:
        raise ConfigError(f"{target!r}: a store URL has no query or fragment")
    return StoreURL(bucket, "/".join(parts))


@dataclass(frozen=True)
class Settings:
    endpoint: str | None  # None: the store's own (AWS) endpoint for the region
    region: str
    access_key_id: str | None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    virtual_hosted: bool = False
    state: str | None = None  # where the local state of this store lives (None: the default)
    source: str = ""  # where the credentials came from, for messages ("environment", "profile x")

    @property
    def allow_http(self) -> bool:
        return bool(self.endpoint) and self.endpoint.startswith("http://")


def _ini(text: str | None, section: str) -> Mapping[str, str]:
    if not text:
        return {}
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(text)
    except configparser.Error as e:
        raise ConfigError(f"AWS settings file does not parse: {str(e).splitlines()[0]}") from None
    return dict(cp[section]) if cp.has_section(section) else {}


def _bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"[store] {name}: want true or false, not {value!r}")


def settings(env: Mapping[str, str], table: Mapping[str, object] | None = None,
             credentials_text: str | None = None, config_text: str | None = None) -> Settings:
    """Resolve the store settings from the environment, a ``[store]`` table and the AWS files' text."""
    table = dict(table or {})
    unknown = set(table) - STORE_KEYS
    if unknown:
        raise ConfigError(f"[store]: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(STORE_KEYS))})")
    for k, v in table.items():
        if k != "virtual_hosted" and not isinstance(v, str):
            raise ConfigError(f"[store] {k}: want a string, not {type(v).__name__}")
    profile = env.get("AWS_PROFILE") or str(table.get("profile") or "") or "default"
    creds = _ini(credentials_text, profile)
    conf = _ini(config_text, profile if profile == "default" else f"profile {profile}")

    def pick(env_names: tuple[str, ...], key: str, *files: Mapping[str, str]) -> tuple[str | None, str]:
        for n in env_names:
            if env.get(n):
                return env[n], "environment"
        if table.get(key):
            return str(table[key]), "[store]"
        for f in files:
            if f.get(key):
                return f[key], f"profile {profile}"
        return None, ""

    endpoint, _ = pick(("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), "endpoint", conf)
    if endpoint is None and conf.get("endpoint_url"):
        endpoint = conf["endpoint_url"]
    region, _ = pick(("AWS_REGION", "AWS_DEFAULT_REGION"), "region", conf)
    key_id, source = pick(("AWS_ACCESS_KEY_ID",), "access_key_id", creds, conf)
    # The secret is taken from the same place as the key id: a pair is never mixed from two sources.
    secret = token = None
    if source == "environment":
        secret, token = env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN")
    elif source == "[store]":
        secret, token = table.get("secret_access_key"), table.get("session_token")  # type: ignore[assignment]
    elif source:
        f = creds if creds.get("aws_access_key_id") else conf
        secret, token = f.get("aws_secret_access_key"), f.get("aws_session_token")
    if key_id is None and (creds.get("aws_access_key_id") or conf.get("aws_access_key_id")):
        f = creds if creds.get("aws_access_key_id") else conf
        key_id, secret, token, source = (f["aws_access_key_id"], f.get("aws_secret_access_key"),
                                         f.get("aws_session_token"), f"profile {profile}")
    if key_id and not secret:
        raise ConfigError(f"store credentials from {source}: an access key id without its secret access key")
    if endpoint is not None:
        u = urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname or u.username or u.password or u.query:
            shown = f"{u.scheme}://***@{u.netloc.rpartition('@')[2]}" if "@" in u.netloc else endpoint
            raise ConfigError(f"store endpoint {shown!r}: want http(s)://HOST[:PORT] with no credentials in it")
        endpoint = endpoint.rstrip("/")
    return Settings(
        endpoint=endpoint,
        region=region or "us-east-1",
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token or None,
        virtual_hosted=_bool(table.get("virtual_hosted", False), "virtual_hosted"),
        state=str(table["state"]) if table.get("state") else None,
        source=source,
    )


def redact(text: str, s: Settings) -> str:
    """``text`` with the secret and token replaced: for messages built from a client's errors."""
    for secret in (s.secret_access_key, s.session_token):
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class StoreTarget:
    """A mirror in an object store: where it is and how to reach it. Its ``str`` is the URL only."""

    url: StoreURL
    settings: Settings

    def __str__(self) -> str:
        return str(self.url)
