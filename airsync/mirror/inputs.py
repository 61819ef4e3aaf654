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
from airsync.goproxy import gomod, gosum, modpath, query
from airsync.goproxy.wants import MainModule, ModuleRequest, Request


@dataclass
class Inputs:
    sum_lines: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    modules: list = field(default_factory=list)  # (ModuleVersion, origin) of exact versions
    queries: list[ModuleRequest] = field(default_factory=list)  # PATH@latest, PATH@v1, ...
    mains: list[MainModule] = field(default_factory=list)  # the go.mod inputs
    problems: list[InputError] = field(default_factory=list)

    def request(self, deps: bool = True, latest: bool = False) -> Request:
        """What to mirror; ``deps``: the module graphs of the go.mods and named modules too;
        ``latest``: the latest version of every module as well."""
        named = [ModuleRequest(mv.path, mv.version, where) for mv, where in self.modules] + self.queries
        return Request(tuple(self.sum_lines), tuple(self.requires), tuple(self.mains), tuple(named), deps, latest)

    @property
    def empty(self) -> bool:
        """Nothing to mirror was named (files may still have had only comments, or problems)."""
        return not (self.sum_lines or self.requires or self.modules or self.queries or self.mains)


def _read(path: Path, inputs: Inputs) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as e:
        inputs.problems.append(InputError(str(path), None, f"cannot read: {e.strerror or e}"))
        return None


def read_inputs(go_sums: list[str], go_mods: list[str], module_files: list[str], modules: list[str]) -> Inputs:
    """Parse every input; problems are collected, never raised, so the rest still runs."""
    inputs = Inputs()
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
