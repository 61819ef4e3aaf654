"""The requests directory: which dropped files are requests, and when one may be read.

Files dropped into the watched directory become mirror jobs: ``*.sum`` files are go.sum files,
``*.mod`` files go.mod files, anything else a list of ``PATH@VERSION`` lines. Dot-files,
``*.tmp``, ``*.part`` and ``*~`` are someone's work in progress and never read; so a writer
that creates ``x.tmp`` and renames it to ``x.sum`` is always safe. For writers that write in
place, ``Settler`` holds a file back until its size and mtime have stayed the same for the
debounce time: a half-written file is not read. A file handed out once is not handed out
again while it looks the same, so the daemon may re-scan the directory as often as it likes
(it does: file system events can be missed, e.g. a file that arrives while the watch starts).
Pure: the daemon feeds it stat results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IGNORED_SUFFIXES = (".tmp", ".part", "~", ".swp")


def kind_of(name: str) -> str | None:
    """'go_sum', 'go_mod' or 'modules' for a request file name; None for files to leave alone."""
    if not name or name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
        return None
    if name.endswith(".sum"):
        return "go_sum"
    if name.endswith(".mod"):
        return "go_mod"
    return "modules"


@dataclass
class Settler:
    """Which files have stopped changing: each must look the same for ``quiet`` seconds."""

    quiet: float
    _seen: dict[str, tuple[tuple[int, int], float]] = field(default_factory=dict)
    _taken: dict[str, tuple[int, int]] = field(default_factory=dict)  # handed out, as it was then

    def observe(self, name: str, size_mtime: tuple[int, int] | None, now: float) -> None:
        """A stat result (size, mtime_ns) for ``name``; None: it is gone."""
        if size_mtime is None:
            self._seen.pop(name, None)
            self._taken.pop(name, None)
            return
        if self._taken.get(name) == size_mtime:
            return  # already handed out, unchanged since
        old = self._seen.get(name)
        if old is None or old[0] != size_mtime:
            self._seen[name] = (size_mtime, now)

    def settled(self, now: float) -> list[str]:
        """Names unchanged for ``quiet`` seconds; each is returned once (then forgotten)."""
        ready = sorted(n for n, (_, since) in self._seen.items() if now - since >= self.quiet)
        for n in ready:
            self._taken[n] = self._seen.pop(n)[0]
        return ready

    def taken(self, name: str, size_mtime: tuple[int, int]) -> bool:
        """Was ``name`` handed out by ``settled`` looking as it does now (so it is whole)?"""
        return self._taken.get(name) == size_mtime

    def present(self, names: set[str]) -> None:
        """A full listing of the directory: forget what has gone (moved away, deleted)."""
        for n in [n for n in (*self._seen, *self._taken) if n not in names]:
            self.observe(n, None, 0.0)

    @property
    def pending(self) -> list[str]:
        return sorted(self._seen)
