"""The SBOM of what crosses: a CycloneDX 1.6 JSON document of the module versions carried.

Each module version whose ``.zip`` or ``.mod`` a medium or bundle carries is one ``library``
component: ``name`` its module path, ``version`` its version, ``purl`` ``pkg:golang/<path>@<version>``
(the purl spec's escaping, by packageurl-python), the SHA-256 of its ``.zip`` (when carried) as a
hash, and its go.sum hashes as the properties ``airsync:h1`` (the zip's ``h1:``) and
``airsync:go.mod-h1`` (CycloneDX has no hash algorithm for Go's dirhash). The document is built
and serialized by cyclonedx-python-lib, never by hand; its serial number and timestamp follow from
the manifest (``serial``, ``created``), so one carry has one SBOM text. Toolchain modules
(``golang.org/toolchain``) are components like any other.

Everything else in the text follows from the components and their purls, the library's version
(and its serializer's) and this module's code (``content_key``). So a carry of the same module
versions as one of the last (another medium of the same mirror) takes the document the library
built then, with its own serial number and time (``restamp``): building costs about 0.25 ms a
component, 0.07 s for 300, 1.1 s for 3,000.

SPDX is not offered: no well-kept Python library builds SPDX 2.3/3.0 JSON as lightly as
cyclonedx-python-lib builds CycloneDX (spdx-tools pulls a large tree and is geared to parsing);
``airsync sbom --format spdx-json`` says so.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from airsync.errors import AirsyncError
from airsync.goproxy import modpath

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airsync.carry.manifest import Entry

__all__ = ["FORMATS", "make_sbom", "validate", "components", "content_key", "restamp"]

FORMATS = ("cyclonedx-json", "spdx-json")


def components(entries: Iterable[Entry], gosum: Iterable[str]) -> dict[tuple[str, str], dict[str, str]]:
    """(module path, version) -> {"sha256": zip sha256, "h1": ..., "go.mod-h1": ...} for each module
    version with a ``.zip`` or ``.mod`` among ``entries``."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for e in entries:
        try:
            mf = modpath.parse_proxy_file(e.path)
        except AirsyncError:  # not a module file name: nothing to list
            continue
        if mf is None or mf[1] not in ("zip", "mod"):
            continue
        mv, ext = mf
        info = out.setdefault((mv.path, mv.version), {})
        if ext == "zip":
            info["sha256"] = e.sha256
    for line in gosum:
        path, version, h = line.split(" ")
        key = (path, version.removesuffix("/go.mod"))
        if key in out:
            out[key]["go.mod-h1" if version.endswith("/go.mod") else "h1"] = h
    return out


def _purl(path: str, version: str):
    from packageurl import PackageURL

    namespace, _, name = path.rpartition("/")
    return PackageURL(type="golang", namespace=namespace or None, name=name, version=version)


def make_sbom(entries: Iterable[Entry], gosum: Iterable[str], serial: str, created: str) -> bytes:
    """The CycloneDX 1.6 JSON SBOM of the module versions among ``entries`` (with ``gosum``'s hashes).
    ``serial``: any text naming the carry (a bundle id, a manifest digest); ``created``: RFC 3339."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    bom = Bom(serial_number=_serial_number(serial), metadata=BomMetaData(timestamp=_timestamp(created)))
    _register_by_set(bom)
    for (path, version), info in sorted(components(entries, gosum).items()):
        purl = _purl(path, version)
        props = [Property(name=f"airsync:{k}", value=info[k]) for k in ("h1", "go.mod-h1") if k in info]
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=info["sha256"])] if "sha256" in info else []
        bom.components.add(Component(type=ComponentType.LIBRARY, name=path, version=version, purl=purl,
                                     bom_ref=purl.to_string(), hashes=hashes, properties=props))
    return (JsonV1Dot6(bom).output_as_string(indent=2) + "\n").encode("utf-8")


def _serial_number(serial: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"airsync:{serial}")


def _timestamp(created: str) -> _dt.datetime:
    return _dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)


def content_key(entries: Iterable[Entry], gosum: Iterable[str]) -> str:
    """What the text of ``make_sbom(entries, gosum, ...)`` depends on besides its serial number
    and time: the components with their purls (packageurl-python's escaping), the versions of the
    library and of its serializer, and this module's own code."""
    import cyclonedx  # the packages' own __init__ only: their versions
    import py_serializable  # what writes the library's JSON

    listed = [(path, version, _purl(path, version).to_string(), info)
              for (path, version), info in sorted(components(entries, gosum).items())]
    try:
        code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    except OSError:  # installed without its source: no key ever matches, every carry builds
        code = uuid.uuid4().hex
    libraries = [cyclonedx.__version__, py_serializable.__version__]
    return hashlib.sha256(json.dumps([libraries, code, listed]).encode()).hexdigest()


def restamp(doc: bytes, serial: str, created: str) -> bytes:
    """``doc``, a ``make_sbom`` document, as ``make_sbom`` makes it for ``serial`` and ``created``
    (the library writes JSON with ``json.dumps(indent=2)``; a test holds the two equal)."""
    d = json.loads(doc)
    d["serialNumber"] = _serial_number(serial).urn
    d["metadata"]["timestamp"] = _timestamp(created).isoformat()
    return (json.dumps(d, indent=2) + "\n").encode("utf-8")


def _register_by_set(bom) -> None:  # noqa: ANN001 (a cyclonedx Bom, imported lazily)
    """Give ``bom`` a ``register_dependency`` that finds registered entries in a set.

    Before output the library's ``Bom.validate`` registers an empty dependency entry for every
    component, each time by a linear search of those registered so far: quadratic, 0.7 s of the
    1.8 s a 3,000-version SBOM took. Our components depend on nothing, so an entry per component
    is all it adds; the document is byte for byte the library's own (a test holds it so).
    """
    from cyclonedx.model.dependency import Dependency

    registered: set[str] = set()
    library_register = bom.register_dependency

    def register_dependency(target, depends_on=None) -> None:  # noqa: ANN001 (the library's signature)
        key = target.bom_ref.value
        if depends_on or key is None:
            library_register(target, depends_on)
            return
        if key in registered:
            return
        registered.add(key)
        bom.dependencies.add(Dependency(ref=target.bom_ref))

    bom.register_dependency = register_dependency


def validate(data: bytes) -> str | None:
    """None when ``data`` is valid CycloneDX 1.6 JSON (by the library's bundled schema), else why not."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode("utf-8"))
    return None if error is None else str(error)
