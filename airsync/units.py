"""Sizes and counts as people read them, for summaries and status lines (no I/O, no imports)."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; bytes below 1 KiB are shown whole ('801 B')."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable: GiB ends the loop")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """count(1, 'file') -> '1 file'; count(3, 'file') -> '3 files'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
