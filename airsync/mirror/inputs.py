"""What to mirror, as the user gave it: go.sum and go.mod files, module lists, ``--module`` values.

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
from airsync.goproxy import gomod, gosum, modpath


@dataclass
class Inputs:
    sum_lines: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    modules: list = field(default_factory=list)  # (ModuleVersion, origin)
    problems: list[InputError] = field(default_factory=list)


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
        inputs.problems += problems
    else:
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            text = raw.split(b"#", 1)[0].strip()
            if text:
                _add_module(inputs, text.decode("utf-8", "replace"), name, lineno)


def _add_module(inputs: Inputs, text: str, source: str, lineno: int | None) -> None:
    try:
        mv = modpath.parse_module_version(text)
    except ModulePathError as e:
        inputs.problems.append(InputError(source, lineno, str(e)))
        return
    inputs.modules.append((mv, f"{source}:{lineno}" if lineno else f"{source} {text}"))
