"""Third-party packages imported without the optional parts airsync never uses.

Some libraries import extras at import time whenever those are installed: httpx its own command
line (click, rich, pygments) when click is there, structlog rich for pretty tracebacks. airsync
uses neither, and they cost tens of milliseconds of every command's start-up. ``hidden(names)``
makes ``import name`` fail (ImportError, which those libraries catch and fall back from) while
the library itself is imported, then puts everything back: later imports of the hidden packages,
by anyone, work as usual. A package already imported is left alone.

Some import what they need only for parts airsync never calls: structlog's stdlib module imports
asyncio (14 ms) for its async logging methods. ``deferred(names)`` hands such an importer a
stand-in that imports the real module at its first attribute lookup; once the block is over,
everyone else who imports the name gets the real module.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hidden(*names: str) -> Iterator[None]:
    """While the block runs, ``import name`` raises ImportError for each of ``names`` not yet imported."""
    hide = [n for n in names if n not in sys.modules]
    for n in hide:
        sys.modules[n] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        for n in hide:
            if n in sys.modules and sys.modules[n] is None:
                del sys.modules[n]


class _StandIn(types.ModuleType):
    """A module that is imported for real at its first attribute lookup."""

    def __getattr__(self, attr: str) -> object:
        if attr == "__path__":
            # Asked by ``import name.sub`` in the block: importing the package now would run
            # the submodule twice (once by the package, once by that import). Fail plainly.
            raise AttributeError(f"{self.__name__} is deferred: import its submodules after the block")
        if sys.modules.get(self.__name__) is self:  # looked up inside the block: leave the stage
            sys.modules.pop(self.__name__, None)
        return getattr(importlib.import_module(self.__name__), attr)


@contextmanager
def deferred(*names: str) -> Iterator[None]:
    """While the block runs, ``import name`` gives a stand-in for each of ``names`` not yet
    imported (and installed: a missing one still fails to import), which imports the real
    module when an attribute of it is first looked up."""
    import importlib.util

    defer = [n for n in names if n not in sys.modules and importlib.util.find_spec(n) is not None]
    for n in defer:
        sys.modules[n] = _StandIn(n)
    try:
        yield
    finally:
        for n in defer:
            if isinstance(sys.modules.get(n), _StandIn):
                del sys.modules[n]
