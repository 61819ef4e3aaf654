"""``airsync audit``: the known vulnerabilities of module versions, from a carried database, offline.

Which module versions: a go.sum's (each version with a hash of its content, i.e. not only of its
go.mod: those are the modules whose code a build compiles), a go.mod's requirements (after its
replaces), or every version whose ``.zip`` a mirror or medium holds.

How they are matched, as govulncheck's ``-scan module`` does: ``modules.json`` names the entries
of a module path; an entry whose fix in the index is at or below the version is passed over
without being read; the rest are read and an entry counts when one of its ``affected`` blocks
names the module and its SEMVER ranges cover the version (``affects``). Withdrawn entries never
count. ``stdlib`` and ``toolchain`` entries are about the Go release a program is built with,
which no go.sum, go.mod or mirror pins: they are not matched (govulncheck matches them against
the go command it runs with).

Each finding: id, aliases (CVE, GHSA), module, version, the fix to upgrade to (``fixed_version``
of that module's ranges; '' when none) and the summary. Pure: the caller passes the parsed
index and a function that reads an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from airsync.goproxy import gomod, gosum
from airsync.goproxy.modpath import ModuleVersion
from airsync.vulndb import affects as ranges
from airsync.vulndb import db

__all__ = ["GO_ITSELF", "Finding", "match", "from_gosum", "from_gomod", "table"]

GO_ITSELF = frozenset({"stdlib", "toolchain"})


@dataclass(frozen=True)
class Finding:
    id: str
    aliases: tuple[str, ...]
    module: str
    version: str
    fixed: str  # with its v, '' when no fix
    summary: str

    def as_json(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


def match(versions: Iterable[ModuleVersion], index: db.Index, read: Callable[[str], db.Entry]) -> list[Finding]:
    """The findings for ``versions`` (sorted by module, version, id); ``read(id)`` gives an entry."""
    by_path = {m.path: m for m in index.modules}
    cache: dict[str, db.Entry] = {}
    out = set()
    for mv in set(versions):
        meta = by_path.get(mv.path)
        if meta is None or mv.path in GO_ITSELF:
            continue
        for v in meta.vulns:
            if v.fixed and not ranges.less(mv.version, v.fixed):
                continue  # fixed at or below this version, by the index: no need to read the entry
            entry = cache.get(v.id) or cache.setdefault(v.id, read(v.id))
            if entry.withdrawn:
                continue
            for a in entry.affected:
                if a.module == mv.path and ranges.affects(a.ranges, mv.version):
                    fixed = ranges.fixed_version(a.ranges)
                    out.add(Finding(entry.id, entry.aliases, mv.path, mv.version,
                                    ranges.canonical(fixed) if fixed else "", entry.summary))
                    break
    return sorted(out, key=lambda f: (f.module, f.version, f.id))


def from_gosum(data: bytes, source: str) -> tuple[list[ModuleVersion], list[str]]:
    """The module versions a go.sum pins with a content hash, and its bad lines (as messages)."""
    lines, problems = gosum.parse_gosum(data, source)
    return sorted({line.module for line in lines if not line.gomod}, key=str), [str(p) for p in problems]


def from_gomod(data: bytes, source: str) -> tuple[list[ModuleVersion], list[str]]:
    """The module versions a go.mod requires (replacements in place of what they replace)."""
    parsed, problems = gomod.parse_gomod(data, source)
    return sorted({r.module for r in (*parsed.requires, *parsed.replacements)}, key=str), [str(p) for p in problems]


def table(findings: list[Finding], width: int = 60) -> str:
    """The findings as an aligned text table."""
    rows = [("ID", "MODULE", "VERSION", "FIXED", "ALIASES", "SUMMARY")]
    for f in findings:
        summary = f.summary if len(f.summary) <= width else f.summary[: width - 1] + "…"
        rows.append((f.id, f.module, f.version, f.fixed or "none", ", ".join(f.aliases) or "-", summary))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] + "\n" for r in rows)
