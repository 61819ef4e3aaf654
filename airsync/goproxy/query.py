"""Version queries (``@latest``, ``@upgrade``, ``@patch``, ``@v1``, ``@v1.2``, ``@<v1.3``, ``@>=v1.2.0``)
answered as the go command answers them from a proxy (cmd/go/internal/modload.Query).

The candidates are the proxy's ``@v/list`` (canonical semver, no pseudo-versions, sorted); a
query keeps those its prefix and filter allow and the ``allowed`` predicate accepts (not excluded,
not retracted), then picks the highest release, else the highest prerelease (the lowest ones for
``>`` and ``>=``). ``+incompatible`` versions count only when no compatible version with a real
go.mod exists. With nothing in the list, ``latest`` and ``upgrade`` fall back to the proxy's
``@latest`` answer, or without one to the newest pseudo-version the list holds. Retractions come from the go.mod of the module's latest version, found by the
same query with retractions ignored (modload's queryLatestVersionIgnoringRetractions).

Sans-I/O: ``resolve`` takes what it has been given and raises ``NeedFile`` naming the file it is
missing (a version's ``.mod``, or ``@latest``); the caller fetches it and asks again.
Commit hashes and branch names are not supported: a mirror can only serve tagged versions
and the pseudo-versions it is asked for by their full name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from airsync.errors import AirsyncError
from airsync.goproxy import semver
from airsync.goproxy.gomod import parse_gomod
from airsync.goproxy.modpath import canonical_version, check_path_major, split_path_version

__all__ = ["QueryError", "NeedFile", "Answer", "is_query", "check", "list_versions", "resolve"]


class QueryError(AirsyncError):
    """A query that is malformed, or that no version answers."""


class NeedFile(Exception):
    """``resolve`` needs this file of the module first: ``what`` is 'mod' (of ``version``) or 'latest'."""

    def __init__(self, what: str, version: str = "") -> None:
        super().__init__(f"need {what} {version}".strip())
        self.what = what
        self.version = version


@dataclass(frozen=True)
class Answer:
    version: str
    latest: str = ""  # the latest version, retractions ignored: its go.mod says what is retracted
    deprecated: str = ""  # that go.mod's deprecation message, if any


def is_query(version: str) -> bool:
    """True for a query; False for a complete canonical version (which names itself)."""
    return canonical_version(version) != version


def list_versions(text: str, prefix: str = "") -> list[str]:
    """The versions of an ``@v/list`` answer, as modfetch's proxyRepo.Versions reads them."""
    out = []
    for line in text.split("\n"):
        f = line.split()
        if f and semver.is_valid(f[0]) and f[0].startswith(prefix) and not semver.is_pseudo(f[0]):
            out.append(f[0])
    return sorted(set(out), key=semver.sort_key)


def _pseudo_time(v: str) -> str:
    """The 14-digit UTC timestamp of a pseudo-version (module.PseudoVersionTime), '' if none."""
    if not semver.is_pseudo(v):
        return ""
    stamp = v.split("-")[-2].rsplit(".", 1)[-1]
    return stamp if len(stamp) == 14 and stamp.isdigit() else ""


def _rfc3339_stamp(t: str) -> str:
    """An RFC 3339 time as a comparable 14-digit UTC stamp ('' when it does not parse)."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        return ""
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%d%H%M%S")


def latest_from_list(text: str) -> str | None:
    """modfetch's latestFromList: among list lines with a time (a second field, or a
    pseudo-version's own), the newest; the go command's answer for @latest when a proxy
    has none and ``@v/list`` holds no tagged version."""
    best, best_time = None, ""
    for line in text.split("\n"):
        f = line.split()
        if not f or not semver.is_valid(f[0]):
            continue
        t = _rfc3339_stamp(f[1]) if len(f) >= 2 else _pseudo_time(f[0])
        if t and t > best_time:
            best, best_time = f[0], t
    return best


def latest_of_list(text: str) -> str | None:
    """The version ``go get M@latest`` picks from this list alone (retractions aside): the
    highest release, else the highest prerelease, else the newest pseudo-version."""
    versions = list_versions(text)
    releases = [v for v in versions if not semver.prerelease(v)]
    if releases or versions:
        return (releases or versions)[-1]
    return latest_from_list(text)


def legacy_gomod(path: str) -> bytes:
    """The go.mod a proxy synthesizes for a version without one (modfetch.LegacyGoMod)."""
    return f"module {path}\n".encode()


def _is_prefix(v: str) -> bool:
    """gover.ModIsPrefix for a module: vN or vN.M (no patch, prerelease or build)."""
    return not any(c in v for c in "-+") and v.count(".") < 2


@dataclass
class _Matcher:
    path: str
    prefix: str = ""
    filter: Callable[[str], bool] | None = None
    prefer_lower: bool = False
    may_use_latest: bool = False
    prefer_incompatible: bool = False

    def allows(self, v: str, allowed: Callable[[str], bool]) -> bool:
        if self.prefix and not v.startswith(self.prefix):
            return False
        if self.filter is not None and not self.filter(v):
            return False
        return allowed(v)


def _matcher(path: str, query: str, current: str) -> _Matcher:
    def bad(v: str) -> QueryError:
        return QueryError(f"invalid semantic version {v!r} in range {query!r}")

    def matches_major(v: str) -> bool:
        _, path_major, ok = split_path_version(path)
        return ok and check_path_major(v, path_major) is None

    qm = _Matcher(path, prefer_incompatible=current.endswith("+incompatible"))
    if query == "latest":
        qm.may_use_latest = True
    elif query in ("upgrade", "patch"):
        if not current or current == "none":
            if query == "patch":
                raise QueryError(f"can't query version \"patch\" of module {path}: no existing version is required")
            qm.may_use_latest = True
        else:
            qm.may_use_latest = semver.is_pseudo(current)
            qm.filter = lambda v: semver.compare(v, current) >= 0
            if query == "patch":
                qm.prefix = semver.major_minor(current) + "."
    elif query[:2] in ("<=", ">=") or query[:1] in ("<", ">"):
        op = query[:2] if query[:2] in ("<=", ">=") else query[:1]
        v = query[len(op):]
        if not semver.is_valid(v):
            raise bad(v)
        if op in ("<=", ">") and _is_prefix(v):
            # Whether <=v1.2 allows v1.2.3 is ambiguous (@v1.2 may mean v1.2.3): refused, as go does.
            raise QueryError(f"ambiguous semantic version {v!r} in range {query!r}")
        cmp = {"<=": lambda c: c <= 0, "<": lambda c: c < 0, ">=": lambda c: c >= 0, ">": lambda c: c > 0}[op]
        qm.filter = lambda mv: cmp(semver.compare(mv, v))
        qm.prefer_lower = op in (">", ">=")
        qm.prefer_incompatible = qm.prefer_incompatible or not matches_major(v)
    elif semver.is_valid(query):
        if _is_prefix(query):
            qm.prefix = query + "."
            # v1.2 never matches versions below v1.2.0, such as its prereleases (golang.org/issue/31972).
            qm.filter = lambda v: semver.compare(v, query) >= 0
        else:
            qm.filter = lambda v: semver.compare(v, query) == 0
            qm.prefix = semver.canonical(query)
        qm.prefer_incompatible = qm.prefer_incompatible or not matches_major(query)
    else:
        raise QueryError(f"{query!r} is not a version or version query; a mirror serves tagged "
                         "versions and pseudo-versions, not branches or commits")
    return qm


def check(path: str, query: str) -> None:
    """Raise QueryError for a query that no list could answer (bad syntax, a branch name)."""
    _matcher(path, query, "")


def _pick(qm: _Matcher, versions: list[str], allowed: Callable[[str], bool],
          mods: Mapping[str, bytes], latest: bytes | None, listing: str | None) -> str | None:
    need_incompatible = qm.prefer_incompatible
    last_compatible = ""
    releases: list[str] = []
    prereleases: list[str] = []
    for v in versions:
        if not qm.allows(v, allowed):
            continue
        if not need_incompatible:
            if not v.endswith("+incompatible"):
                last_compatible = v
            elif last_compatible:
                # A compatible version with a go.mod of its own means +incompatible majors are
                # legacy tags the author left behind: ignore them (golang.org/issue/34165).
                if last_compatible not in mods:
                    raise NeedFile("mod", last_compatible)
                if mods[last_compatible] != legacy_gomod(qm.path):
                    break
                need_incompatible = True
        (prereleases if semver.prerelease(v) else releases).append(v)
    for group in (releases, prereleases):
        if group:
            return group[0] if qm.prefer_lower else group[-1]
    if qm.may_use_latest:
        if latest is None:
            raise NeedFile("latest")
        if latest == b"":  # no @latest: the go command takes the newest timed line of the list
            version = latest_from_list(listing or "") or ""
        else:
            try:
                version = json.loads(latest).get("Version", "")
            except (ValueError, AttributeError):
                version = ""
        if version and semver.is_valid(version) and qm.allows(version, allowed):
            return version
    return None


def resolve(path: str, query: str, listing: str | None, mods: Mapping[str, bytes],
            latest: bytes | None = None, *, current: str = "",
            excluded: Callable[[str], bool] = lambda v: False) -> Answer:
    """The version ``path@query`` names. ``listing`` is the ``@v/list`` text (None: the proxy has
    none); ``mods`` maps versions to the ``.mod`` bytes fetched so far; ``latest`` is the
    ``@latest`` answer (``b""`` when the proxy has none). Raises NeedFile or QueryError."""
    qm = _matcher(path, query, current)  # a malformed query fails before anything is fetched
    versions = list_versions(listing or "")
    not_excluded = lambda v: not excluded(v)  # noqa: E731
    latest_any = _pick(_matcher(path, "latest", ""), versions, not_excluded, mods, latest, listing)
    retracts, deprecated = (), ""
    if latest_any is not None:
        if latest_any not in mods:
            raise NeedFile("mod", latest_any)
        gm, problems = parse_gomod(mods[latest_any], f"{path}@{latest_any}.mod", lax=True)
        if not problems:
            retracts, deprecated = gm.retracts, gm.deprecated
    allowed = lambda v: not excluded(v) and not any(r.covers(v) for r in retracts)  # noqa: E731
    version = _pick(qm, versions, allowed, mods, latest, listing)
    if version is None and query in ("upgrade", "patch") and current and current != "none":
        version = current  # upgrade and patch may stay where they are
    if version is None:
        if listing is None and not latest:
            raise QueryError(f"module {path} not found upstream (no @v/list, no @latest)")
        if not versions and latest_any is None:
            raise QueryError(f"no versions of {path} are published")
        if versions and all(any(r.covers(v) for r in retracts) for v in versions):
            raise QueryError(f"every published version of {path} is retracted")
        raise QueryError(f"no matching versions for query {query!r}")
    return Answer(version, latest_any or "", deprecated)
