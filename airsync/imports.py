"""Third-party packages imported without the optional parts airsync never uses.

Some libraries import extras at import time whenever those are installed: httpx its own command
line (click, rich, pygments) when click is there, structlog rich for pretty tracebacks. airsync
uses neither, and they cost tens of milliseconds of every command's start-up. ``hidden(names)``
makes ``import name`` fail (ImportError, which those libraries catch and fall back from) while
the library itself is imported, then puts everything back: later imports of the hidden packages,
by anyone, work as usual. A package already imported is left alone.
"""

from __future__ import annotations

import sys
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
