"""Resolving what to mirror when no go.sum names it: version queries and module graphs.

A ``Request`` holds what the user named: go.mod files (each the main module of a graph),
``PATH@VERSION`` and ``PATH@QUERY`` values, and whether their dependencies come too. The
``Resolver`` answers each query from the upstream's ``@v/list`` (and ``@latest`` where the list
is empty), honouring retractions (``goproxy.query``), then loads each module graph
(``goproxy.graph``): it fetches every go.mod the go command would read, concurrently, a layer at
a time, preferring a ``.mod`` already published in the mirror (verified when it landed). A
``.mod`` that a go.sum line pins is checked against it before its requirements are believed.

The result is the build list of every graph (their ``.info``, ``.mod`` and ``.zip`` are needed),
the module versions whose go.mod alone is read, the go.mods' bytes (so the mirror job does not
fetch them again) and every problem, named by module and what was asked: a query no version
answers, a module the upstream does not know, a go.mod that cannot be had. The rest resolves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import trio

from airsync.errors import AirsyncError, NotFoundError
from airsync.goproxy import dirhash, gover, graph, modpath, query, semver, wants
from airsync.goproxy.gomod import GoMod, parse_gomod
from airsync.goproxy.modpath import ModuleVersion
from airsync.goproxy.wants import MainModule, ModuleRequest, ModuleWant, Request

log = structlog.get_logger("airsync.mirror")

MAX_LIST = 16 << 20
MAX_MOD = 16 << 20
MAX_ROUNDS = 64  # a query needs a handful of files; more rounds than this is a bug, not a module

Get = Callable[[str, int], Awaitable[bytes | None]]  # (proxy relpath, max size) -> bytes, None if absent


@dataclass
class Resolution:
    selected: dict[ModuleVersion, str] = field(default_factory=dict)  # build lists -> origin
    gomod_only: dict[ModuleVersion, str] = field(default_factory=dict)  # go.mod read, not in a build list
    mods: dict[ModuleVersion, bytes] = field(default_factory=dict)  # the .mod bytes fetched
    answers: dict[str, str] = field(default_factory=dict)  # "path@query" -> version
    latest: dict[str, str] = field(default_factory=dict)  # path -> latest version, retractions ignored
    toolchains: dict[ModuleVersion, str] = field(default_factory=dict)  # golang.org/toolchain versions
    deprecated: dict[str, str] = field(default_factory=dict)  # module path -> message
    go_versions: dict[ModuleVersion, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def max_go(self) -> str | None:
        best = None
        for v in self.go_versions.values():
            if best is None or gover.compare(v, best) > 0:
                best = v
        return best


@dataclass
class _Graph:
    g: graph.ModuleGraph
    origin: str  # for messages: the go.mod file, or the --module value
    where: Path | None = None  # where a directory replacement is relative to
    gomod_only: bool = False  # only its go.mods are needed, not its build list


class Resolver:
    def __init__(self, get: Get, concurrency: int = 32) -> None:
        self._get = get
        self._limit = trio.CapacityLimiter(concurrency)
        self._mods: dict[ModuleVersion, bytes] = {}
        self._parsed: dict[ModuleVersion, GoMod] = {}
        self._mod_errors: dict[ModuleVersion, str] = {}
        self._fetching: dict[str, trio.Event] = {}
        self._fetched: dict[str, bytes | None | AirsyncError] = {}
        self._pins: dict[ModuleVersion, frozenset[str]] = {}

    async def resolve(self, request: Request) -> Resolution:
        res = Resolution()
        self._pins = request.mod_pins()
        graphs: list[_Graph] = []
        for main in request.graph_mains:
            graphs += self._main_graphs(main, res)
        await self._named(request.modules, request.deps, res, graphs)
        await self._toolchains(request, res)
        await self._load(graphs)
        for gr in graphs:
            self._collect(gr, res)
        if request.latest:
            # Each module's latest version too (and its graph), so that go get -u and go list
            # -m -u inside give the outside's answers and show its retractions and deprecations.
            asked = {key.split("@", 1)[0] for key in res.answers if key.endswith("@latest")}
            extra = [ModuleRequest(p, "latest", "--latest") for p in sorted({mv.path for mv in res.selected} - asked)]
            graphs = []
            await self._named(extra, request.deps, res, graphs)
            await self._load(graphs)
            for gr in graphs:
                self._collect(gr, res)
            # The version that retracts others is listed too: the go command inside reads its
            # go.mod (the newest listed one) to know what is retracted.
            for path, version in res.latest.items():
                res.selected.setdefault(ModuleVersion(path, version), "--latest (its retractions)")
        res.mods = dict(self._mods)
        return res

    def _main_graphs(self, main: MainModule, res: Resolution) -> list[_Graph]:
        gm = main.gomod
        if gm.module_path is None:
            res.problems.append(f"{main.source}: no module line; its requirements are mirrored without their graph")
        where = Path(main.source).parent
        graphs = [_Graph(graph.ModuleGraph(gm.module_path or "", list(gm.graph_requires), graph.pruned_go(gm.go),
                                           gm.replaces, frozenset(gm.excludes)), main.source, where)]
        if gm.go and gover.lang(gm.go) == "1.17":
            # go mod tidy at go 1.17 also checks what go 1.16 would select (-compat=1.16): it
            # reads the whole unpruned graph's go.mods, so the mirror must hold them.
            graphs.append(_Graph(graph.ModuleGraph(gm.module_path or "", list(gm.graph_requires), False,
                                                   gm.replaces, frozenset(gm.excludes)),
                                 f"{main.source} (go 1.16 compatibility)", where, gomod_only=True))
        return graphs

    async def _named(self, modules: Iterable[ModuleRequest], deps: bool, res: Resolution,
                     graphs: list[_Graph]) -> None:
        """Answer the named modules' queries; with ``deps``, add the graph of each answer."""
        roots: list[tuple[ModuleRequest, ModuleVersion]] = []
        async with trio.open_nursery() as n:
            for m in modules:
                n.start_soon(self._answer, m, res, roots)
        if deps:
            async with trio.open_nursery() as n:  # every named module's go.mod at once
                for _m, mv in roots:
                    n.start_soon(self._gomod, mv)
        for m, mv in sorted(roots, key=lambda x: (x[1].path, semver.sort_key(x[1].version))):
            res.selected.setdefault(mv, m.origin)
            if not deps:
                continue
            gm = await self._gomod(mv)
            if gm is None:
                res.problems.append(f"{m.origin}: {mv}: {self._mod_errors[mv]}")
                continue
            # As `go install PATH@VERSION` loads it: the module is the main module of its graph.
            graphs.append(_Graph(graph.ModuleGraph(mv.path, list(gm.graph_requires), graph.pruned_go(gm.go)),
                                 f"{m.origin} ({mv})"))
            if gm.go:
                res.go_versions[mv] = gm.go

    # -- toolchains ---------------------------------------------------------------------------

    async def _toolchains(self, request: Request, res: Resolution) -> None:
        """golang.org/toolchain versions for each asked Go version and platform: a release by
        name, or for a family (1.27) the one the go command would switch to from the upstream's
        list. Each is a module like any other (its zip is verified, the database vouches)."""
        if not request.toolchains:
            return
        listing: str | None = None
        if any(gover.is_lang(t.version) for t in request.toolchains):
            try:
                data = await self._fetch(modpath.list_file(gover.TOOLCHAIN_MODULE), MAX_LIST)
            except AirsyncError as e:
                res.problems.append(f"{gover.TOOLCHAIN_MODULE}: cannot list its versions: {_detail(e, gover.TOOLCHAIN_MODULE)}")
                data = None
            listing = "" if data is None else data.decode("utf-8", "replace")
        wanted: list[tuple[ModuleVersion, str]] = []
        for t in request.toolchains:
            for platform in request.platforms:
                goos, _, goarch = platform.partition("/")
                go = t.version
                if gover.is_lang(go):
                    newest = gover.newest_toolchain(listing or "", go, goos, goarch) if listing is not None else None
                    if newest is None:
                        if listing is not None:
                            res.problems.append(f"{t.origin}: no Go {go} release for {platform} upstream")
                        continue
                    go = newest
                mv = ModuleVersion(gover.TOOLCHAIN_MODULE, gover.toolchain_module_version(go, goos, goarch))
                wanted.append((mv, f"{t.origin} ({platform})"))
        async with trio.open_nursery() as n:
            for mv, _origin in wanted:
                n.start_soon(self._gomod, mv)
        for mv, origin in wanted:
            if await self._gomod(mv) is None:
                go, goos, goarch = gover.parse_toolchain_module_version(mv.version)  # type: ignore[misc]
                why = self._mod_errors.get(mv, "")
                why = f"{mv} is not there" if not why or "not found" in why else f"{mv}: {why}"
                res.problems.append(f"{origin}: no toolchain go{go} for {goos}/{goarch} upstream ({why})")
            else:
                res.selected.setdefault(mv, origin)
                res.toolchains[mv] = origin

    # -- queries ------------------------------------------------------------------------------

    async def _answer(self, m: ModuleRequest, res: Resolution, roots: list) -> None:
        if not query.is_query(m.version):
            roots.append((m, ModuleVersion(m.path, m.version)))
            return
        esc = modpath.escape_path(m.path)
        listing: str | None = None
        latest: bytes | None = None
        mods: dict[str, bytes] = {}
        try:
            data = await self._fetch(f"{esc}/@v/list", MAX_LIST)
            listing = None if data is None else data.decode("utf-8", "replace")
            for _ in range(MAX_ROUNDS):
                try:
                    answer = query.resolve(m.path, m.version, listing, mods, latest)
                    break
                except query.NeedFile as need:
                    if need.what == "latest":
                        latest = await self._fetch(f"{esc}/@latest", 1 << 20) or b""
                        continue
                    mv = ModuleVersion(m.path, need.version)
                    if await self._gomod(mv) is None:
                        raise AirsyncError(f"{mv}: {self._mod_errors[mv]}") from None
                    mods[need.version] = self._mods[mv]
            else:
                raise AirsyncError("the query did not settle")
        except AirsyncError as e:
            asked = f"{m.path}@{m.version}"
            where = m.origin if m.origin.endswith(asked) else f"{m.origin}: {asked}"
            res.problems.append(f"{where}: {_detail(e, m.path)}")
            return
        res.answers[f"{m.path}@{m.version}"] = answer.version
        if answer.latest:
            res.latest[m.path] = answer.latest
        if answer.deprecated:
            res.deprecated[m.path] = answer.deprecated
        log.info("query answered", module=m.path, query=m.version, version=answer.version)
        roots.append((m, ModuleVersion(m.path, answer.version)))

    # -- graphs -------------------------------------------------------------------------------

    async def _load(self, graphs: list[_Graph]) -> None:
        for _ in range(100_000):  # each round loads at least one go.mod, and a graph is finite
            wanted = [(gr.g, gr.where, mv) for gr in graphs for mv in gr.g.wanted()]
            if not wanted:
                return
            async with trio.open_nursery() as n:
                for mv in {self._actual(g, mv) for g, _where, mv in wanted}:
                    if mv.version:
                        n.start_soon(self._gomod, mv)
            for g, where, mv in wanted:
                actual = self._actual(g, mv)
                if actual.version:
                    gm, why = await self._gomod(actual), self._mod_errors.get(actual, "")
                else:
                    gm, why = self._local(actual, where)
                if gm is None:
                    g.fail(mv, why)
                else:
                    g.give(mv, graph.summary_of(gm))
        raise AirsyncError("the module graph did not settle")

    def _collect(self, gr: _Graph, res: Resolution) -> None:
        g, origin = gr.g, gr.origin
        for mv, why in g.failures().items():
            chain = " -> ".join(str(m) for m in g.path_to(mv)[:-1])
            via = f" (required by {chain})" if chain else ""
            res.problems.append(f"{origin}: {mv}{via}: {why}")
        if not gr.gomod_only:
            for mv in g.selected():
                actual = self._actual(g, mv)
                if actual.version:  # a directory replacement is the user's own source
                    res.selected.setdefault(actual, origin)
        for mv in g.loaded():
            actual = self._actual(g, mv)
            if actual.version:
                res.gomod_only.setdefault(actual, origin)
        for mv, go in g.go_versions().items():
            res.go_versions[self._actual(g, mv)] = go
        for mv in list(res.gomod_only):
            if mv in res.selected:
                del res.gomod_only[mv]

    @staticmethod
    def _actual(g: graph.ModuleGraph, mv: ModuleVersion) -> ModuleVersion:
        r = g.replacement(mv)
        if r is None:
            return mv
        return ModuleVersion(r.new, r.new_version)  # version '' for a directory

    @staticmethod
    def _local(actual: ModuleVersion, where: Path | None) -> tuple[GoMod | None, str]:
        """The go.mod of a directory replacement, read beside the go.mod that names it."""
        if where is None:
            return None, f"replaced by directory {actual.path}, which only a go.mod input can name"
        path = where / actual.path / "go.mod"
        try:
            data = path.read_bytes()
        except OSError as e:
            return None, f"replaced by directory {actual.path}, whose go.mod cannot be read ({e.strerror})"
        gm, problems = parse_gomod(data, str(path), lax=True)
        if problems:
            return None, f"replaced by directory {actual.path}: {problems[0]}"
        return gm, ""

    async def _gomod(self, mv: ModuleVersion) -> GoMod | None:
        """The parsed go.mod of ``mv``, fetched once however many ask; None with the reason in
        ``_mod_errors``."""
        if mv not in self._parsed and mv not in self._mod_errors:
            try:
                data = await self._fetch(modpath.proxy_file(mv, "mod"), MAX_MOD)  # one fetch per file
            except AirsyncError as e:
                self._mod_errors.setdefault(mv, _detail(e, mv.path))
                return None
            if mv not in self._parsed and mv not in self._mod_errors:  # not done by another asker meanwhile
                self._read_gomod(mv, data)
        return self._parsed.get(mv)

    def _read_gomod(self, mv: ModuleVersion, data: bytes | None) -> None:
        if data is None:
            self._mod_errors[mv] = "no such module version upstream (its go.mod is not found)"
            return
        pins = self._pins.get(mv)
        if pins and dirhash.hash_gomod(data) not in pins:
            self._mod_errors[mv] = (f"its go.mod has hash {dirhash.hash_gomod(data)}, but go.sum says "
                                    f"{' or '.join(sorted(pins))}: not used")
            return
        gm, problems = parse_gomod(data, f"{mv}.mod", lax=True)
        if problems:
            self._mod_errors[mv] = f"its go.mod does not parse: {problems[0]}"
            return
        self._mods[mv] = data
        self._parsed[mv] = gm

    async def _fetch(self, relpath: str, max_size: int) -> bytes | None:
        """One fetch per file however many ask (two queries of one module share its list, and
        a fetched file lands in a partial file of its own name)."""
        busy = self._fetching.get(relpath)
        if busy is None:
            busy = self._fetching[relpath] = trio.Event()
            try:
                async with self._limit:
                    self._fetched[relpath] = await self._get(relpath, max_size)
            except AirsyncError as e:
                self._fetched[relpath] = e
            finally:
                busy.set()
        await busy.wait()
        got = self._fetched[relpath]
        if isinstance(got, AirsyncError):
            raise got
        return got


def _detail(e: AirsyncError, path: str) -> str:
    if isinstance(e, NotFoundError):
        return f"the upstream does not know module {path}"
    return str(e)


def plan_for(request: Request, res: Resolution | None) -> list[ModuleWant]:
    """The mirror's plan: what go.sum pins, plus what resolving found (or, without resolving, the
    go.mod requirements and the named versions as they are)."""
    if res is None:
        return wants.plan(request.sum_lines, request.requires,
                          [(ModuleVersion(m.path, m.version), m.origin) for m in request.modules])
    named = {ModuleVersion(m.path, res.answers.get(f"{m.path}@{m.version}", m.version)) for m in request.modules}
    named |= set(res.toolchains)
    return wants.plan(
        request.sum_lines, request.requires if not request.graph_mains else [],
        [(mv, where) for mv, where in res.selected.items() if mv in named],
        [(mv, where) for mv, where in res.selected.items() if mv not in named],
        list(res.gomod_only.items()),
    )
