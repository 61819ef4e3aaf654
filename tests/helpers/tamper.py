"""Files made or altered on purpose, for tests that need bytes a well-behaved tool never writes."""

from __future__ import annotations

import zipfile
from pathlib import Path


def write_zip_with_descriptors(path: Path, files) -> Path:
    """A zip written through an unseekable stream, so zipfile emits data descriptors (flag 0x08)."""

    class Unseekable:
        def __init__(self, f):
            self.f = f

        def write(self, b):
            return self.f.write(b)

        def flush(self):
            self.f.flush()

    with open(path, "wb") as raw, zipfile.ZipFile(Unseekable(raw), "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            with zf.open(name, "w") as w:
                w.write(data)
    return path


def patch_bytes(path: Path, old: bytes, new: bytes, count: int = 2) -> None:
    """Replace same-length bytes in place (a name appears in the local and the central header)."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert data.count(old) == count, data.count(old)
    path.write_bytes(data.replace(old, new))


def flip_first_hash(lookup: Path) -> None:
    """Alter one character of the first h1: hash in a lookup answer (a tampered record)."""
    data = lookup.read_bytes()
    i = data.index(b"h1:") + 3
    lookup.write_bytes(data[:i] + (b"B" if data[i : i + 1] != b"B" else b"C") + data[i + 1 :])
