"""The typed errors airsync raises.

Every error a user can cause (bad input files, bad module paths, bad upstream settings) or that an
upstream can cause (missing files, hash mismatches) is an ``AirsyncError``: the CLI prints its
message and exits non-zero, never a traceback. Anything else is a bug.
"""

from __future__ import annotations


class AirsyncError(Exception):
    """Base of every error whose message is meant for the user."""


class InputError(AirsyncError):
    """A problem in an input file (go.sum, go.mod, module list), located by file and line."""

    def __init__(self, source: str, lineno: int | None, message: str) -> None:
        self.source = source
        self.lineno = lineno
        self.message = message
        where = f"{source}:{lineno}" if lineno else source
        super().__init__(f"{where}: {message}")


class ModulePathError(AirsyncError):
    """An invalid module path, version or escaped form."""


class ConfigError(AirsyncError):
    """A bad setting: command-line option or config key."""


class UpstreamError(AirsyncError):
    """An upstream could not deliver a file (after retries, or it has none)."""


class NotFoundError(UpstreamError):
    """Every upstream in the list answered 404/410 (or has no such file)."""


class VerifyError(AirsyncError):
    """Downloaded bytes failed verification; they were kept aside, never published."""

    def __init__(self, module: str, message: str) -> None:
        self.module = module
        self.detail = message
        super().__init__(f"{module}: {message}")


class HashMismatch(VerifyError):
    def __init__(self, module: str, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(module, f"{what} hash mismatch: go.sum says {expected}, downloaded {actual}")


class ZipRuleError(VerifyError):
    """A module zip breaks the module zip rules (golang.org/x/mod/zip)."""


def first_of(e: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``e`` itself if it is a ``kind``, else the first ``kind`` inside the exception groups
    that trio nurseries raise (depth first), else None."""
    if isinstance(e, kind):
        return e
    for inner in getattr(e, "exceptions", ()):
        found = first_of(inner, kind)
        if found is not None:
            return found
    return None
