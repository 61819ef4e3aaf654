"""``airsync doctor``: will this machine's go command verify modules from the inside mirror?

What this is: a check run inside, on a developer machine, of what the go command will do with the
checksum database the mirror carries. It reads ``go env`` (GOPATH, GOMODCACHE, GOSUMDB, GOPROXY),
the head the go command remembers (``$GOPATH/pkg/sumdb/<name>/latest``) and the mirror (``--mirror``,
else the first ``file://`` entry of GOPROXY).

How it works: the go command checks the mirror's newest head against the head it remembers with
the newer one's tiles, from its own cache (``$GOMODCACHE/cache/download/sumdb``) or the mirror, as
``carried.check_consistent`` does here. A head the mirror carried, or one its tiles prove, is fine.
A head the mirror cannot prove (the machine was online once, or used another mirror) is named in
one line with both heads and the way out: report the head to the border (``airsync sumdb-heads``
here, ``airsync mirror --prove-heads`` there) and import the next medium. Forgetting the head or
turning GOSUMDB off would throw away the very check that catches a forked log: never suggested.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from airsync.errors import AirsyncError, ConfigError
from airsync.trust import carried, note, ondisk, sumdb

GO_ENV = ("GOPATH", "GOMODCACHE", "GOSUMDB", "GOPROXY")


@dataclass(frozen=True)
class Finding:
    ok: bool
    line: str


def go_env(go: str = "go", run: Callable = subprocess.run) -> dict[str, str]:
    """``go env -json`` for the variables the doctor reads."""
    try:
        r = run([go, "env", "-json", *GO_ENV], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"cannot run '{go} env': {e}") from None
    if r.returncode != 0:
        raise ConfigError(f"'{go} env' failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def mirror_from_goproxy(goproxy: str) -> Path | None:
    """The first file:// entry of a GOPROXY list, as a directory."""
    for entry in goproxy.replace("|", ",").split(","):
        u = urlparse(entry.strip())
        if u.scheme == "file" and not u.netloc:
            return Path(unquote(u.path))
    return None


def diagnose(env: dict[str, str], mirror: Path | None) -> list[Finding]:
    """One finding per checksum database the machine trusts (today: the one GOSUMDB names)."""
    value = env.get("GOSUMDB") or sumdb.SUM_GOLANG_ORG
    db = sumdb.parse_gosumdb(value)
    if db is None:
        return [Finding(True, "GOSUMDB=off: the go command checks nothing against a checksum database here")]
    mirror = mirror or mirror_from_goproxy(env.get("GOPROXY", ""))
    if mirror is None:
        raise ConfigError("no mirror: give --mirror DIR (GOPROXY has no file:// entry)")
    verifier = note.parse_verifier(db.vkey)
    latest = Path(env.get("GOPATH", "").split(":")[0] or ".") / "pkg" / "sumdb" / db.name / "latest"
    data = ondisk.read_small(latest)
    if not data:
        return [Finding(True, f"ok: this machine remembers no head of {db.name} yet; the mirror's is taken as it is")]
    try:
        remembered = carried.open_head(data, verifier)
    except AirsyncError as e:
        return [Finding(False, f"{latest}: not a head of {db.name} signed by its key ({e}); check GOSUMDB")]
    dbfiles = ondisk.mirror_databases(mirror).get(db.name)
    heads = dbfiles.heads(verifier) if dbfiles else []
    if not heads:
        return [Finding(False, f"{mirror}: carries no checksum database {db.name}: import a medium made with --sumdb")]
    newest = heads[-1]
    if any(h.tree == remembered.tree for h in heads):
        return [Finding(True, f"ok: this machine remembers {remembered.describe()}, which the mirror carries "
                              f"(its newest: tree {newest.n})")]
    cache = Path(env.get("GOMODCACHE") or "") / "cache" / "download" / "sumdb" / db.name

    def read(rel: str) -> bytes | None:  # the go command's own cache first, then the mirror
        return ondisk.read_small(cache / rel) or dbfiles.read_tile(rel)

    try:
        # What the go command checks first when it starts (its head against itself), then the rest.
        carried.check_consistent(remembered, remembered, read)
        carried.check_consistent(remembered, newest, read)
    except carried.MissingTile as e:
        return [Finding(False, (
            f"this machine remembers {db.name} {remembered.describe()} ({latest}), which the mirror's newest "
            f"tree {newest.n} cannot be proved consistent with (missing {e.path}); report the head to the "
            f"border: run 'airsync sumdb-heads --out heads.txt' here, carry heads.txt out, run 'airsync mirror "
            f"--prove-heads heads.txt ...' there, then sync and import the next medium"
        ))]
    except carried.Forked as e:
        return [Finding(False, (
            f"SECURITY: this machine remembers {db.name} {remembered.describe()} ({latest}), which is not "
            f"consistent with the mirror's tree {newest.n}: {e}. One of the two came from a forked log; keep "
            f"{latest} as evidence and tell whoever runs the border host"
        ))]
    return [Finding(True, f"ok: this machine's {remembered.describe()} is proved consistent with the mirror's "
                          f"tree {newest.n}")]
