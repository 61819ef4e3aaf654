"""Synthetic Go modules and a GOPROXY tree built from them on the fly, for demos, tests and benchmarks.

Nothing here touches the network. ``demo_modules()`` is a small module graph under made-up
``example.com``/``example.org`` paths that still exercises the awkward corners of the proxy protocol:
an upper-case path (``!`` escaping), a ``/v2`` major-version module, a module with several versions of
which an older one is reachable only through the go.mod graph (so go.sum holds only its ``/go.mod``
line), a pseudo-version, a prerelease, a go.mod without a ``go`` line (an unpruned, pre-1.17 style
module) and a module with a subpackage. Every library module's root package exports ``Describe()`` and
imports its requirements' packages, so building ``write_main_module``'s app with the real go command
compiles through the whole dependency graph. ``build_proxy_tree`` writes the static proxy layout
(``@v/list``, ``.info``, ``.mod``, ``.zip``) deterministically: rebuilding gives identical bytes, and
files whose bytes are already right are not rewritten. ``gosum_lines``/``app_gosum`` compute go.sum text
with ``airsync.dirhash`` for when the go command is absent. ``big_module``/``small_modules`` make
benchmark payloads (incompressible bytes, stored uncompressed; or many tiny modules);
``updated_module`` makes the next version of one with a few edits (for delta-transfer benchmarks).

Command line::

    python -m airsync.sample build ROOT [--big N:SIZE] [--small N] [--seed S] [--no-demo]
    python -m airsync.sample app DIR [--gosum] [--module-path example.net/app]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from airsync.goproxy import semver
from airsync.goproxy.dirhash import hash1, hash_gomod
from airsync.goproxy.modpath import ModuleVersion, list_file, proxy_file

__all__ = [
    "SampleModule",
    "library_module",
    "demo_modules",
    "demo_app_requires",
    "build_proxy_tree",
    "zip_bytes",
    "info_bytes",
    "write_main_module",
    "module_h1",
    "gosum_lines",
    "app_gosum",
    "big_module",
    "small_modules",
    "updated_module",
    "main",
]

DEFAULT_TIME = "2023-01-02T15:04:05Z"
GO_VERSION = "1.19"  # Debian 12's go; never write a newer go directive
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SampleModule:
    """One module version: its files (relative to the module root, 'go.mod' included) and go.mod requires."""

    path: str
    version: str
    files: tuple[tuple[str, bytes], ...]
    requires: tuple[tuple[str, str], ...] = ()
    time: str = DEFAULT_TIME
    compress: bool = True  # False: ZIP_STORED (fast for big incompressible payloads)

    def __post_init__(self) -> None:
        if semver.canonical(self.version) != self.version and not self.version.endswith("+incompatible"):
            raise ValueError(f"{self.path}: version {self.version!r} is not canonical semver")
        names = [n for n, _ in self.files]
        if "go.mod" not in names:
            raise ValueError(f"{self.path}@{self.version}: files must include go.mod")
        if len(set(names)) != len(names):
            raise ValueError(f"{self.path}@{self.version}: duplicate file names")
        for n in names:
            if n.startswith("/") or ".." in n.split("/") or "\\" in n or "\n" in n:
                raise ValueError(f"{self.path}@{self.version}: bad file name {n!r}")

    @property
    def mv(self) -> ModuleVersion:
        return ModuleVersion(self.path, self.version)

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.version)

    @property
    def gomod(self) -> bytes:
        return dict(self.files)["go.mod"]

    @property
    def zip_prefix(self) -> str:
        return f"{self.path}@{self.version}/"

    def zip_entries(self) -> list[tuple[str, bytes]]:
        """(name with the unescaped 'path@version/' prefix, content), sorted by name."""
        return sorted((self.zip_prefix + n, data) for n, data in self.files)

    def size(self) -> int:
        return sum(len(d) for _, d in self.files)


# --- Go source generation -------------------------------------------------------------------------

_MAJOR_SUFFIX = re.compile(r"^v[0-9]+$")


def package_name(import_path: str) -> str:
    """A Go identifier for the package at import_path (last element, skipping a /vN suffix)."""
    elems = import_path.split("/")
    name = elems[-1]
    if _MAJOR_SUFFIX.match(name) and len(elems) > 1:
        name = elems[-2]
    name = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if not name or name[0].isdigit():
        name = "p" + name
    return name


def _go_string(s: str) -> str:
    return json.dumps(s)  # a JSON string of printable ASCII is a valid Go string literal


def gomod_text(path: str, requires: Sequence[tuple[str, str]] = (), indirect: Sequence[tuple[str, str]] = (),
               go: str | None = GO_VERSION) -> bytes:
    """A go.mod: module line, optional go line, one require block (indirect ones marked)."""
    out = [f"module {path}\n"]
    if go:
        out.append(f"\ngo {go}\n")
    reqs = [(p, v, False) for p, v in requires] + [(p, v, True) for p, v in indirect]
    if reqs:
        out.append("\nrequire (\n")
        for p, v, ind in sorted(reqs):
            out.append(f"\t{p} {v}{' // indirect' if ind else ''}\n")
        out.append(")\n")
    return "".join(out).encode()


def _go_file(pkg: str, doc: str, imports: Sequence[str], body: str) -> bytes:
    out = [f"// {doc}\npackage {pkg}\n"]
    if imports:
        out.append("\nimport (\n")
        for i, imp in enumerate(imports):
            out.append(f"\tdep{i} {_go_string(imp)}\n")
        out.append(")\n")
    out.append("\n" + body)
    return "".join(out).encode()


def _describe_func(ident: str, n_imports: int) -> str:
    expr = _go_string(ident)
    if n_imports:
        deps = ' + ", " + '.join(f"dep{i}.Describe()" for i in range(n_imports))
        expr += ' + " [" + ' + deps + ' + "]"'
    return ("// Describe returns this package's module path and version, then its dependencies'.\n"
            f"func Describe() string {{\n\treturn {expr}\n}}\n")


def library_module(path: str, version: str, requires: Sequence[tuple[str, str]] = (), *,
                   indirect: Sequence[tuple[str, str]] = (), time: str = DEFAULT_TIME,
                   go: str | None = GO_VERSION, subpackages: Sequence[str] = (),
                   extra_files: Sequence[tuple[str, bytes]] = ()) -> SampleModule:
    """A library module whose root package exports Describe() and imports each requirement's root package.

    ``requires`` are direct (imported) requirements; ``indirect`` ones only appear in go.mod, marked
    ``// indirect``. Each of ``subpackages`` ('a/b') gets its own package with Describe(), imported by the
    root package. ``go=None`` writes a go.mod without a ``go`` line.
    """
    pkg = package_name(path)
    imports = [p for p, _ in requires] + [f"{path}/{s}" for s in subpackages]
    files: list[tuple[str, bytes]] = [("go.mod", gomod_text(path, requires, indirect, go))]
    files.append((f"{pkg}.go", _go_file(
        pkg, f"Package {pkg} is a synthetic airsync sample package of module {path}.",
        imports, _describe_func(f"{path}@{version}", len(imports)))))
    for sub in subpackages:
        spkg = package_name(sub)
        files.append((f"{sub}/{spkg}.go", _go_file(
            spkg, f"Package {spkg} is a synthetic airsync sample subpackage.", [],
            _describe_func(f"{path}/{sub}@{version}", 0))))
    files.extend(extra_files)
    return SampleModule(path=path, version=version, files=tuple(files),
                        requires=tuple(sorted(set(requires) | set(indirect))), time=time)


# --- the demo graph -------------------------------------------------------------------------------

STRS = "example.com/lib/strs"
BIGCORP = "example.com/BigCorp/Util"
GREET2 = "example.org/greet/v2"
LEGACY = "example.org/legacy"
PSEUDO = "example.com/pseudo"
PSEUDO_VERSION = "v0.0.0-20230102150405-abcdef123456"
TOOLS = "example.com/tools"


def demo_modules() -> list[SampleModule]:
    """Six module paths, eight versions; see the module docstring for what each one exercises.

    With ``demo_app_requires()`` the selected build list is strs v1.1.0, BigCorp/Util v1.2.0,
    greet/v2 v2.1.0, legacy v1.0.0 (no go line, so unpruned: its requirement strs v1.0.0 enters go.sum
    as a /go.mod-only line), the pseudo-version and tools v0.3.1 (with subpackage fmtx).
    strs v1.2.0-rc.1 is in the tree but in no graph.
    """
    lic = ("LICENSE", b"Synthetic sample module for airsync tests. No rights reserved.\n")
    return [
        library_module(STRS, "v1.0.0", go="1.18", time="2022-03-01T10:00:00Z"),
        library_module(STRS, "v1.1.0", time="2022-09-01T10:00:00Z", extra_files=[lic]),
        library_module(STRS, "v1.2.0-rc.1", time="2023-02-01T10:00:00Z", extra_files=[lic]),
        library_module(BIGCORP, "v1.2.0", [(STRS, "v1.1.0")], time="2022-10-05T08:30:00Z"),
        library_module(GREET2, "v2.1.0", [(BIGCORP, "v1.2.0")], indirect=[(STRS, "v1.1.0")],
                       time="2022-11-11T11:11:11Z",
                       extra_files=[("README.md", b"# greet v2\n\nA /v2 major-version sample module.\n")]),
        library_module(LEGACY, "v1.0.0", [(STRS, "v1.0.0")], go=None, time="2021-06-01T00:00:00Z"),
        library_module(PSEUDO, PSEUDO_VERSION, time="2023-01-02T15:04:05Z"),
        library_module(TOOLS, "v0.3.1", subpackages=["fmtx"], time="2022-12-24T18:00:00Z"),
    ]


def demo_app_requires() -> list[tuple[str, str]]:
    """The direct requirements of the demo app (``write_main_module``)."""
    return [
        (GREET2, "v2.1.0"),
        (LEGACY, "v1.0.0"),
        (PSEUDO, PSEUDO_VERSION),
        (STRS, "v1.1.0"),
        (TOOLS, "v0.3.1"),
    ]


# --- proxy tree -----------------------------------------------------------------------------------

def info_bytes(m: SampleModule) -> bytes:
    """The .info file: compact JSON like the go command's, no trailing newline."""
    return json.dumps({"Version": m.version, "Time": m.time}, separators=(",", ":")).encode()


def zip_bytes(m: SampleModule) -> bytes:
    """The module zip: sorted entries under 'path@version/' (unescaped), fixed times, no directories."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if m.compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in m.zip_entries():
            zi = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            zi.compress_type = method
            zi.create_system = 3
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data, compress_type=method, compresslevel=6 if m.compress else None)
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp-sample")
    tmp.write_bytes(data)
    tmp.replace(path)


def build_proxy_tree(root: Path, modules: Iterable[SampleModule]) -> None:
    """Write a static GOPROXY tree for modules under root (list, .info, .mod, .zip)."""
    root = Path(root)
    versions: dict[str, set[str]] = {}
    for m in modules:
        mv = m.mv
        versions.setdefault(m.path, set()).add(m.version)
        _write_if_changed(root / proxy_file(mv, "info"), info_bytes(m))
        _write_if_changed(root / proxy_file(mv, "mod"), m.gomod)
        _write_if_changed(root / proxy_file(mv, "zip"), zip_bytes(m))
    for path, vs in versions.items():
        text = "".join(v + "\n" for v in sorted(vs, key=semver.sort_key))
        _write_if_changed(root / list_file(path), text.encode())


# --- main module ----------------------------------------------------------------------------------

def write_main_module(dir: Path, modules_required: Sequence[tuple[str, str]],
                      module_path: str = "example.net/app") -> None:
    """Write go.mod and main.go of an app that imports and calls each required module's root package."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    reqs = sorted(set(modules_required))
    (dir / "go.mod").write_bytes(gomod_text(module_path, reqs))
    lines = ["// Command app is the airsync demo app: it prints what each dependency describes.\n",
             "package main\n\nimport (\n\t\"fmt\"\n"]
    if reqs:
        lines.append("\n")
    for i, (p, _) in enumerate(reqs):
        lines.append(f"\tm{i} {_go_string(p)}\n")
    lines.append(")\n\nfunc main() {\n")
    for i in range(len(reqs)):
        lines.append(f"\tfmt.Println(m{i}.Describe())\n")
    lines.append("}\n")
    (dir / "main.go").write_text("".join(lines))


# --- go.sum ---------------------------------------------------------------------------------------

def module_h1(m: SampleModule) -> str:
    """The zip's h1: hash (equal to dirhash.hash_zip of zip_bytes(m))."""
    return hash1(m.zip_entries())


def _gosum_sort_key(line_key: tuple[str, str]) -> tuple:
    path, version = line_key
    base, _, suffix = version.partition("/")
    return (path, semver.sort_key(base), suffix)


def gosum_lines(modules: Iterable[SampleModule], go_mod_only: Iterable[tuple[str, str]] = ()) -> str:
    """go.sum text: for each module a zip h1 line and a /go.mod h1 line, in the go command's order.

    Modules whose (path, version) is in ``go_mod_only`` get only the /go.mod line.
    """
    only = {tuple(k) for k in go_mod_only}
    entries: dict[tuple[str, str], str] = {}
    for m in modules:
        if m.key not in only:
            entries[(m.path, m.version)] = module_h1(m)
        entries[(m.path, m.version + "/go.mod")] = hash_gomod(m.gomod)
    return "".join(f"{p} {v} {h}\n" for (p, v), h in sorted(entries.items(), key=lambda kv: _gosum_sort_key(kv[0])))


_GO_LINE = re.compile(rb"^go\s+([0-9]+)\.([0-9]+)", re.M)


def _unpruned(m: SampleModule) -> bool:
    """Whether the go command loads m's requirements transitively (no go line, or go < 1.17)."""
    mo = _GO_LINE.search(m.gomod)
    return mo is None or (int(mo.group(1)), int(mo.group(2))) < (1, 17)


def app_gosum(modules: Iterable[SampleModule], requires: Sequence[tuple[str, str]]) -> str:
    """The go.sum that ``go mod tidy`` (go >= 1.17 main module) writes for an app requiring ``requires``.

    Assumes every requirement's packages are imported (true for ``library_module`` graphs). Selection is
    MVS over the full graph; tidy's roots are the selected versions of every module reached from the
    app's requirements. go.mod lines are kept for every module whose requirements the pruned module graph
    loads (the roots, and everything below a module without go line or with go < 1.17); zip lines for
    the roots.
    """
    by_key = {m.key: m for m in modules}

    def get(k: tuple[str, str]) -> SampleModule:
        try:
            return by_key[k]
        except KeyError:
            raise ValueError(f"app_gosum: module {k[0]}@{k[1]} is not among the sample modules") from None

    # MVS over the full graph.
    selected: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    stack = list(requires)
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        p, v = k
        if p not in selected or semver.compare(v, selected[p]) > 0:
            selected[p] = v
        stack.extend(get(k).requires)
    # Tidy's roots: the selected modules reached through selected modules' requirements.
    roots: set[tuple[str, str]] = set()
    stack = [(p, selected[p]) for p, _ in requires]
    while stack:
        k = stack.pop()
        if k in roots:
            continue
        roots.add(k)
        stack.extend((p, selected[p]) for p, _ in get(k).requires)
    # The pruned graph walk (cmd/go/internal/modload readModGraph).
    loaded: set[tuple[str, str]] = set()
    queued: set[tuple[tuple[str, str], bool]] = set()
    queue = [(k, False) for k in sorted(roots)]
    while queue:
        k, unpruned = queue.pop()
        if (k, unpruned) in queued:
            continue
        queued.add((k, unpruned))
        m = get(k)
        loaded.add(k)
        if unpruned or _unpruned(m):
            queue.extend((r, True) for r in m.requires)
    mods = [get(k) for k in sorted(loaded | roots)]
    return gosum_lines(mods, go_mod_only=loaded - roots)


# --- benchmark payloads ---------------------------------------------------------------------------

def big_module(path: str, version: str, size: int, seed: int, *, parts: int = 4,
               time: str = DEFAULT_TIME) -> SampleModule:
    """A module with about ``size`` bytes of incompressible pseudo-random data in up to ``parts`` files.

    Stored uncompressed (``compress=False``); its root package still exports Describe().
    """
    rng = random.Random(seed)
    parts = max(1, min(parts, size // 4096 or 1))
    files: list[tuple[str, bytes]] = [("go.mod", gomod_text(path))]
    pkg = package_name(path)
    files.append((f"{pkg}.go", _go_file(pkg, f"Package {pkg} is a synthetic airsync benchmark package.", [],
                                        _describe_func(f"{path}@{version}", 0))))
    base, extra = divmod(max(0, size), parts)
    for i in range(parts):
        n = base + (1 if i < extra else 0)
        files.append((f"data/part{i:02d}.bin", rng.randbytes(n)))
    return SampleModule(path=path, version=version, files=tuple(files), time=time, compress=False)


def small_modules(n: int, seed: int, *, prefix: str = "example.com/small") -> list[SampleModule]:
    """n tiny modules '<prefix>/mNNNN' v1.0.0 (content, not names, depends on seed)."""
    rng = random.Random(seed)
    out = []
    width = max(4, len(str(max(0, n - 1))))
    for i in range(n):
        path = f"{prefix}/m{i:0{width}d}"
        token = rng.randbytes(8).hex()
        out.append(library_module(path, "v1.0.0",
                                  extra_files=[("token.txt", f"{token}\n".encode())]))
    return out


def updated_module(m: SampleModule, version: str, seed: int, *, file: str | None = None,
                   change: float = 0.01, runs: int = 4, shifts: int = 2, add: int = 0,
                   time: str | None = None) -> SampleModule:
    """Version ``version`` of ``m`` as a small release would make it: the same files, a few edits.

    - Every ``.go`` file naming ``path@old`` names ``path@version`` instead (Describe() tells the version).
    - One file is edited: ``file``, by default the largest one other than go.mod (the first of equals). Binary content (not
      ASCII, e.g. big_module's data) gets about ``change`` of its bytes overwritten, in ``runs`` runs at
      random places, then ``shifts`` short runs (1-64 bytes) inserted and as many deleted, so the bytes
      after them move. ASCII text (Go source) stays valid Go: ``runs`` comment lines are inserted at
      line starts and up to ``shifts`` existing comment lines are deleted.
    - ``add`` > 0 adds a file ``data/<version>.bin`` of that many pseudo-random bytes.

    go.mod, the zip method (stored or deflated) and every other file are kept as they are; the result
    depends only on the arguments (same seed, same bytes).
    """
    if m.version == version:
        raise ValueError(f"{m.path}: the update needs a version other than {version}")
    rng = random.Random(seed)
    files = dict(m.files)
    old_id, new_id = _go_string(f"{m.path}@{m.version}").encode(), _go_string(f"{m.path}@{version}").encode()
    for name, data in files.items():
        if name.endswith(".go"):
            files[name] = data.replace(old_id, new_id)
    if file is None:
        candidates = [n for n in files if n != "go.mod"]
        if not candidates:
            raise ValueError(f"{m.path}@{m.version}: no file to edit besides go.mod")
        file = max(candidates, key=lambda n: len(files[n]))  # the first of equals
    elif file not in files:
        raise ValueError(f"{m.path}@{m.version}: no file {file!r}")
    data = files[file]
    files[file] = _edit_text(data, rng, runs, shifts) if data.isascii() else _edit_binary(data, rng, change, runs, shifts)
    if add > 0:
        name = f"data/{version}.bin"
        if name in files:
            raise ValueError(f"{m.path}: {name} exists already")
        files[name] = rng.randbytes(add)
    return SampleModule(path=m.path, version=version, files=tuple(files.items()), requires=m.requires,
                        time=time or m.time, compress=m.compress)


def _edit_binary(data: bytes, rng: random.Random, change: float, runs: int, shifts: int) -> bytes:
    buf = bytearray(data)
    if buf and runs > 0 and change > 0:
        run = max(1, min(len(buf), round(len(buf) * change / runs)))
        for _ in range(runs):
            at = rng.randrange(0, len(buf) - run + 1)
            buf[at:at + run] = rng.randbytes(run)
    for _ in range(shifts):
        at = rng.randrange(0, len(buf) + 1)
        buf[at:at] = rng.randbytes(rng.randint(1, 64))
        if buf:
            at = rng.randrange(0, len(buf))
            del buf[at:at + rng.randint(1, 64)]
    return bytes(buf)


def _edit_text(data: bytes, rng: random.Random, runs: int, shifts: int) -> bytes:
    lines = data.splitlines(keepends=True)
    for _ in range(shifts):
        comments = [i for i, ln in enumerate(lines) if ln.lstrip().startswith(b"//")]
        if comments:
            del lines[rng.choice(comments)]
    ends = len(lines) + (1 if not lines or lines[-1].endswith(b"\n") else 0)  # never glue onto a last line
    for _ in range(runs):
        lines.insert(rng.randrange(0, ends), f"// revision note {rng.randbytes(6).hex()}\n".encode())
        ends += 1
    return b"".join(lines)


# --- a checksum database of our own ---------------------------------------------------------------
# build_sumdb logs one record per module version (its two go.sum lines) in a transparency log
# (airsync.tlog), signs the tree with a fresh ed25519 key (airsync.note), and writes what a GOPROXY
# serves for it: sumdb/<name>/supported, a lookup answer per version (record id, record text,
# signed tree note, as the go command's sumdb server writes it) and every hash tile of the tree.
# The go command then verifies modules against it with GOSUMDB=<verifier key>.

NAME = "sumdb.airsync.test"


@dataclass(frozen=True)
class SampleSumDB:
    name: str
    vkey: str
    skey: str
    tree: object  # airsync.tlog.Tree
    dir: Path


def record_text(m: SampleModule) -> bytes:
    gomod = hash_gomod(dict(m.files)["go.mod"])
    return f"{m.path} {m.version} {module_h1(m)}\n{m.path} {m.version}/go.mod {gomod}\n".encode()


def build_sumdb(
    root: Path,
    modules: list[SampleModule],
    name: str = NAME,
    padding: int = 0,
    skey: str | None = None,
    records: dict[ModuleVersion, bytes] | None = None,
    gap: tuple[int, int] = (0, 0),
) -> SampleSumDB:
    """Write a signed database for ``modules`` under ``root/sumdb/<name>/``.

    ``padding`` unrelated records are logged first, so that trees span several tiles;
    ``skey`` reuses a signer key (a second log under the same key is a fork); ``records``
    replaces the logged text of some versions (a database that vouches for other bytes);
    ``gap=(k, n)`` logs n unrelated records after the first k modules (a log that grew).
    """
    from airsync.trust import note, sumdb, tlog  # ed25519 only for those who build a database

    if skey is None:
        skey, vkey = note.generate_key(name)
    else:
        vkey = note.parse_signer(skey).verifier.vkey
    records = records or {}
    log = tlog.MemoryLog()
    for i in range(padding):
        log.append(f"example.invalid/pad{i} v1.0.0 h1:pad\n".encode())
    texts = {m.mv: records.get(m.mv, record_text(m)) for m in modules}
    ids = {}
    for k, (mv, text) in enumerate(texts.items()):
        if k == gap[0]:
            for i in range(gap[1]):
                log.append(f"example.invalid/gap{i} v1.0.0 h1:gap\n".encode())
        ids[mv] = log.append(text)
    tree = log.tree()
    signed = note.sign(tlog.format_tree(tree), note.parse_signer(skey))
    base = root / "sumdb" / name
    base.mkdir(parents=True, exist_ok=True)
    (base / "supported").write_bytes(b"")
    for m in modules:
        path = base / sumdb.lookup_path(ModuleVersion(m.path, m.version))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{ids[m.mv]}\n".encode() + texts[m.mv] + b"\n" + signed)
    for t in tlog.new_tiles(8, 0, tree.n):
        path = base / t.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log.tile(t))
    return SampleSumDB(name=name, vkey=vkey, skey=skey, tree=tree, dir=base)


# --- command line ---------------------------------------------------------------------------------

def _parse_size(s: str) -> int:
    mo = re.fullmatch(r"([0-9]+)([kKmMgG]i?[bB]?)?", s.strip())
    if not mo:
        raise argparse.ArgumentTypeError(f"bad size {s!r}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(mo.group(2) or "")[:1].lower()]
    return int(mo.group(1)) * mult


def _parse_big(s: str) -> tuple[int, int]:
    n, sep, size = s.partition(":")
    if not sep or not n.isdigit():
        raise argparse.ArgumentTypeError(f"--big wants N:SIZE (e.g. 3:50M), not {s!r}")
    return int(n), _parse_size(size)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m airsync.sample", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write a GOPROXY tree of sample modules")
    b.add_argument("root", type=Path)
    b.add_argument("--big", type=_parse_big, action="append", default=[], metavar="N:SIZE",
                   help="add N big modules example.com/big/bNN v1.0.0 of SIZE bytes each (K/M/G suffixes)")
    b.add_argument("--small", type=int, default=0, metavar="N", help="add N tiny modules example.com/small/mNNNN")
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--no-demo", action="store_true", help="leave out the demo modules")
    b.add_argument("--sumdb", type=Path, metavar="KEYFILE",
                   help="also write a signed checksum database for the modules; its verifier key goes to KEYFILE")
    a = sub.add_parser("app", help="write the demo app (go.mod, main.go)")
    a.add_argument("dir", type=Path)
    a.add_argument("--gosum", action="store_true", help="also write go.sum (computed, no go command needed)")
    a.add_argument("--module-path", default="example.net/app")
    args = ap.parse_args(argv)

    if args.cmd == "build":
        mods: list[SampleModule] = [] if args.no_demo else demo_modules()
        i = 0
        for n, size in args.big:
            for _ in range(n):
                mods.append(big_module(f"example.com/big/b{i:02d}", "v1.0.0", size, args.seed + i))
                i += 1
        if args.small:
            mods.extend(small_modules(args.small, args.seed))
        build_proxy_tree(args.root, mods)
        print(f"wrote {len(mods)} module versions to {args.root}")
        if args.sumdb:
            db = build_sumdb(args.root, mods)
            args.sumdb.write_text(db.vkey + "\n")
            print(f"wrote checksum database {db.name} (tree size {db.tree.n}); its key is in {args.sumdb}")
    else:
        reqs = demo_app_requires()
        write_main_module(args.dir, reqs, args.module_path)
        if args.gosum:
            (args.dir / "go.sum").write_text(app_gosum(demo_modules(), reqs))
        print(f"wrote app {args.module_path} to {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
