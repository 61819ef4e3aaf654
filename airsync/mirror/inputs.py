"""What to mirror, as the user gave it: go.sum and go.mod files, module lists, ``--module`` values.

A module value is ``PATH@VERSION`` or ``PATH@QUERY`` (``latest``, ``upgrade``, ``v1``, ``v1.2``,
``<v1.4.0``, ...), checked here and resolved by the mirror job (``mirror.resolve``); each go.mod
is kept whole as the main module of a graph to resolve. ``Inputs.request`` is what the job runs.

``read_inputs`` reads the files of ``airsync mirror``'s options (and of the service's config
lists); ``parse_input`` takes the bytes of one file, which is how the service reads a request
file it has already opened safely. Both collect every problem as an ``InputError`` (file, line,
what is wrong) instead of raising, so one bad line never stops the rest: the caller reports
them and plans what parsed (``goproxy.wants.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from airsync.errors import InputError, ModulePathError
from airsync.goproxy import gomod, gosum, gover, modpath, query
from airsync.goproxy.wants import MainModule, ModuleRequest, Request


@dataclass
class Inputs:
    sum_lines: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    modules: list = field(default_factory=list)  # (ModuleVersion, origin) of exact versions
    queries: list[ModuleRequest] = field(default_factory=list)  # PATH@latest, PATH@v1, ...
    mains: list[MainModule] = field(default_factory=list)  # the go.mod inputs
    toolchains: list[ModuleRequest] = field(default_factory=list)  # path "go", version 1.27.3 or 1.27
    problems: list[InputError] = field(default_factory=list)

    def request(self, deps: bool = True, latest: bool = False, platforms: tuple[str, ...] = (),
                gomod_toolchains: bool = False) -> Request:
        """What to mirror; ``deps``: the module graphs of the go.mods and named modules too;
        ``latest``: the latest version of every module as well; toolchains for ``platforms``,
        with ``gomod_toolchains`` also those the go.mods' go and toolchain lines ask for."""
        named = [ModuleRequest(mv.path, mv.version, where) for mv, where in self.modules] + self.queries
        toolchains = list(self.toolchains)
        if gomod_toolchains:
            toolchains += [t for m in self.mains if (t := _gomod_toolchain(m)) is not None]
        return Request(tuple(self.sum_lines), tuple(self.requires), tuple(self.mains), tuple(named), deps, latest,
                       tuple(toolchains), tuple(platforms))

    def add_toolchain(self, text: str) -> None:
        """``--toolchain go1.27.3`` (or 1.27.3, or a family: go1.27)."""
        version = gover.from_toolchain(text) if text.startswith("go") else text
        if not gover.is_valid(version) or gover.compare(version, "1.21") < 0:
            self.problems.append(InputError("--toolchain", None, f"{text!r}: want a Go release of 1.21 or later, "
                                            "e.g. go1.27.3 (or a family, go1.27, for its newest release)"))
            return
        self.toolchains.append(ModuleRequest("go", version, f"--toolchain {text}"))

    @property
    def empty(self) -> bool:
        """Nothing to mirror was named (files may still have had only comments, or problems)."""
        return not (self.sum_lines or self.requires or self.modules or self.queries or self.mains or self.toolchains)


def _read(path: Path, inputs: Inputs) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as e:
        inputs.problems.append(InputError(str(path), None, f"cannot read: {e.strerror or e}"))
        return None


def _gomod_toolchain(main: MainModule) -> ModuleRequest | None:
    """The toolchain a go command of 1.21 or later switches to for a main module (toolchain.Select):
    its toolchain line when newer than its go line, else the go line, a language version meaning
    its first release (go 1.27 -> go1.27.0, golang.org/issue/62278)."""
    gm = main.gomod
    go = gm.go or ""
    tool = gover.from_toolchain(gm.toolchain or "")
    best = tool if tool and gover.compare(tool, go) > 0 else go
    if not best or gover.compare(best, "1.21") < 0:
        return None
    if best == go and gover.is_lang(go):
        best += ".0"
    return ModuleRequest("go", best, f"{main.source}: go {gm.go}" + (f", toolchain {gm.toolchain}" if gm.toolchain else ""))


def read_inputs(go_sums: list[str], go_mods: list[str], module_files: list[str], modules: list[str],
                toolchains: list[str] = ()) -> Inputs:
    """Parse every input; problems are collected, never raised, so the rest still runs."""
    inputs = Inputs()
    for text in toolchains:
        inputs.add_toolchain(text)
    for kind, names in (("go_sum", go_sums), ("go_mod", go_mods), ("modules", module_files)):
        for name in names:
            data = _read(Path(name), inputs)
            if data is not None:
                parse_input(inputs, kind, data, name)
    for arg in modules:
        _add_module(inputs, arg, "--module", None)
    return inputs


def parse_input(inputs: Inputs, kind: str, data: bytes, name: str) -> None:
    """Add the contents of one input file (kind 'go_sum', 'go_mod' or 'modules') to ``inputs``."""
    if kind == "go_sum":
        lines, problems = gosum.parse_gosum(data, name)
        inputs.sum_lines += lines
        inputs.problems += problems
    elif kind == "go_mod":
        parsed, problems = gomod.parse_gomod(data, name)
        inputs.requires += list(parsed.requires) + list(parsed.replacements)
        inputs.mains.append(MainModule(parsed, name))
        inputs.problems += problems
    else:
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            text = raw.split(b"#", 1)[0].strip()
            if text:
                _add_module(inputs, text.decode("utf-8", "replace"), name, lineno)


def _add_module(inputs: Inputs, text: str, source: str, lineno: int | None) -> None:
    origin = f"{source}:{lineno}" if lineno else f"{source} {text}"
    path, at, version = text.partition("@")
    try:
        if at and path and version and query.is_query(version):
            modpath.check_path(path)
            query.check(path, version)
            inputs.queries.append(ModuleRequest(path, version, origin))
            return
        mv = modpath.parse_module_version(text)
    except ModulePathError as e:
        inputs.problems.append(InputError(source, lineno, str(e)))
        return
    except query.QueryError as e:
        inputs.problems.append(InputError(source, lineno, f"{text}: {e}"))
        return
    inputs.modules.append((mv, origin))
