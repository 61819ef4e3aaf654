"""Subcommands of the long-running service and its clients (``run``, ``status``, ...).

They live apart from ``cli`` so the daemon's command line grows in one place.
"""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the daemon's subcommands to the ``airsync`` parser."""
