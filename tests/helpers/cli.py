"""The airsync command line as a subprocess, for end-to-end tests (a helper module, not a test file)."""

from __future__ import annotations

import subprocess
import sys


def airsync(*args: object, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m airsync --log-format json ARGS`` with its output captured. A traceback is a test
    failure: user errors are one clear line, never a trace."""
    r = subprocess.run([sys.executable, "-m", "airsync", "--log-format", "json", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr + r.stdout
    return r
