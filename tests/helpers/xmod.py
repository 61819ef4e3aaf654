"""golang.org/x/mod's own test data, read where x/mod is installed, for the conformance tests (a helper).

Two copies of x/mod are tested: Debian's (package golang-golang-x-mod-dev, under
/usr/share/gocode) and a newer one from the Go module proxy, which ``scripts/setup --test``
downloads into ``.cache/gomod`` with the go command. Nothing of x/mod is copied into the
repository, and nothing here reaches the network.

x/mod's test tables are Go composite literals in its _test.go files, so Go reads them:
``dump()`` copies each x/mod (without its _test.go files) into a temporary directory, gives the
copy a go.mod without requirements, and has ``xmoddump.go`` (beside this file) write into each
package a ``zz_airsync_dump_test.go`` that holds the tables and test functions asked for in
``PACKAGES``, lifted out of x/mod's test files. ``go test -run TestAirsyncDump`` then writes each
package's JSON: the tables (unexported fields and all), every call the lifted tests made to a
recorded function with x/mod's answer, and x/mod's answers about its test data (the oracle). The
build is offline (GOPROXY=off, GOTOOLCHAIN=local, fresh GOCACHE and GOPATH) with the newest go on
the machine, and so are the lifted tests: one whose code imports a network package or os/exec is
never lifted (Debian's 0.7.0 fetches its Certificate Transparency vectors from the internet), and
HTTP proxies point at a closed local port. All of it happens once per copy and test session (``dump``
is cached, failures too; its directory goes at exit). The zip tests' txtar files are data, read directly
(``read_txtar``, ``zip_cases``).

When go or a copy of x/mod is missing, ``XmodUnavailable`` says what to install; the tests turn it
into a failure of that copy's cases, never a skip.
"""

from __future__ import annotations

import atexit
import base64
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "PROXY_XMOD_VERSION",
    "PACKAGES",
    "XmodUnavailable",
    "Copy",
    "copies",
    "dump",
    "read_txtar",
    "ZipCase",
    "zip_cases",
]

#: The x/mod that ``scripts/setup --test`` downloads from the module proxy (keep the two in step).
PROXY_XMOD_VERSION = "v0.43.0"

REPO = Path(__file__).resolve().parents[2]
DEBIAN_XMOD = Path("/usr/share/gocode/src/golang.org/x/mod")
DEBIAN_PACKAGE = "golang-golang-x-mod-dev"
PROXY_XMOD = REPO / ".cache" / "gomod" / "golang.org" / "x" / f"mod@{PROXY_XMOD_VERSION}"

NEWEST_GO = REPO / "scripts" / "newest-go"

#: What to take from each x/mod package's tests: package-level tables to dump, and test functions
#: to run with their calls recorded (see xmoddump.go's snippets for what is recorded). A name a
#: copy lacks is listed as missing in its dump, not an error: newer x/mod has more tests.
PACKAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "module": (
        ("checkTests", "checkPathTests", "splitPathVersionTests", "escapeTests", "badUnescape", "pseudoTests"),
        ("TestMatchPathMajor", "TestMatchPrefixPatterns"),
    ),
    "semver": (("tests",), ("TestSort",)),
    "sumdb/note": (
        (),
        ("TestNewVerifier", "TestNewSigner", "TestGenerateKey", "TestFromEd25519", "TestSign", "TestOpen"),
    ),
    "sumdb/tlog": (
        ("tilePaths",),
        (
            "TestTree",
            "TestSplitStoredHashIndex",
            "TestTilePath",
            "TestEmptyTree",
            "TestNewTilesForSize",
            "TestCertificateTransparency",
            "TestFormatTree",
            "TestParseTree",
            "TestFormatRecord",
            "TestParseRecord",
        ),
    ),
    "sumdb/dirhash": ((), ("TestHash1", "TestHashDir", "TestHashZip")),
    "zip": (("sizeLimitTests", "sizeLimitVersion"), ()),
}


class XmodUnavailable(Exception):
    """x/mod's test data cannot be read: go or a copy of x/mod is missing, or the dump failed."""


@dataclass(frozen=True)
class Copy:
    """One x/mod to test: ``label`` names it in test ids (``xmod0.7.0``); ``missing`` says what to
    install when it is not there."""

    label: str
    version: str
    root: Path
    missing: str | None = None


@functools.cache
def copies() -> tuple[Copy, ...]:
    """Debian's x/mod and the module proxy's (newest last), installed or not (``missing`` says how)."""
    found = []
    try:
        deb = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status} ${Version}", DEBIAN_PACKAGE], capture_output=True, text=True
        ).stdout
    except OSError:
        deb = ""
    if deb.startswith("install ok installed ") and (DEBIAN_XMOD / "go.mod").is_file():
        # Debian versions read [epoch:]upstream[-revision]; the upstream part is x/mod's own version.
        upstream = deb.rsplit(" ", 1)[1].split(":", 1)[-1].rsplit("-", 1)[0]
        found.append(Copy(f"xmod{upstream}", f"v{upstream}", DEBIAN_XMOD))
    else:
        found.append(
            Copy("xmod-debian", "", DEBIAN_XMOD, f"{DEBIAN_PACKAGE} is not installed: run scripts/setup --test")
        )
    proxy = Copy(f"xmod{PROXY_XMOD_VERSION.removeprefix('v')}", PROXY_XMOD_VERSION, PROXY_XMOD)
    if not (PROXY_XMOD / "go.mod").is_file():
        where = f"golang.org/x/mod@{PROXY_XMOD_VERSION} is not in {PROXY_XMOD.parent}"
        proxy = replace(proxy, missing=f"{where}: run scripts/setup --test")
    found.append(proxy)
    return tuple(found)


def _once(fn):
    """functools.cache that also keeps a failure: a broken setup is diagnosed once, not per test."""

    @functools.cache
    def outcome(*args):
        try:
            return fn(*args), None
        except XmodUnavailable as e:
            return None, e

    @functools.wraps(fn)
    def wrapper(*args):
        result, error = outcome(*args)
        if error is not None:
            raise error
        return result

    return wrapper


def _newest_go() -> tuple[str, tuple[int, ...]]:
    """The newest go on the machine (scripts/newest-go, as the other tests use), and its version."""
    r = subprocess.run([str(NEWEST_GO)], capture_output=True, text=True)
    go = r.stdout.strip()
    if r.returncode != 0 or not go:
        raise XmodUnavailable("no go command found: apt-get install golang-go (scripts/setup does)")
    r = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=_base_env(go))
    m = re.fullmatch(r"go(\d+)\.(\d+)(?:\.(\d+))?\S*\s*", r.stdout)
    if r.returncode != 0 or not m:
        raise XmodUnavailable(f"{go} env GOVERSION failed: {r.stderr.strip()}")
    return go, tuple(int(x or 0) for x in m.groups())


def _base_env(go: str) -> dict[str, str]:
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(go), "/usr/bin", "/bin"]))
    return {"PATH": path, "GOENV": "off", "GOTOOLCHAIN": "local", "HOME": tempfile.gettempdir()}


def _go_env(go: str, work: Path) -> dict[str, str]:
    """An environment from nothing in which go builds offline, with caches of its own under work."""
    env = _base_env(go) | {
        "HOME": str(work / "home"),
        "GOPATH": str(work / "gopath"),
        "GOMODCACHE": str(work / "gopath" / "pkg" / "mod"),
        "GOCACHE": str(work / "gocache"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOWORK": "off",
        "CGO_ENABLED": "0",
        # The dump runs only tests that import no network package (xmoddump.go checks); should
        # one still try HTTP, it meets a closed local port instead of the internet.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    for d in ("home", "gopath", "gocache"):
        (work / d).mkdir(parents=True, exist_ok=True)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    try:
        r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as e:
        raise XmodUnavailable(f"{what}: timed out") from e
    if r.returncode != 0:
        raise XmodUnavailable(f"{what} failed ({' '.join(args)}):\n{r.stdout[-4000:]}{r.stderr[-4000:]}")
    return r.stdout


def _copy_without_tests(src: Path, dst: Path) -> None:
    """x/mod's tree minus its _test.go files (the dump lifts what it needs from them); testdata stays."""

    def ignore(_dir: str, names: list[str]) -> list[str]:
        return [n for n in names if n.endswith("_test.go") or n == "go.sum"]

    shutil.copytree(src, dst, ignore=ignore)
    for d, _, files in os.walk(dst):  # the module cache and /usr/share hand out read-only files
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)


def _dump_copy(go: str, go_version: tuple[int, ...], generator: Path, copy: Copy, work: Path) -> dict:
    env = _go_env(go, work.parent)
    mod = work / "mod"
    _copy_without_tests(copy.root, mod)
    pkgs = [f"./{pkg}" for pkg in PACKAGES]
    # The copy builds alone: its requirements (golang.org/x/tools, for tests the dump leaves out) go.
    gomod = json.loads(_run([go, "mod", "edit", "-json"], mod, env, f"{copy.label}: reading go.mod"))
    needs = tuple(int(x) for x in re.findall(r"\d+", gomod.get("Go") or "0"))
    if needs > go_version:
        have = ".".join(map(str, go_version))
        raise XmodUnavailable(f"golang.org/x/mod {copy.version} needs go {gomod['Go']}; the newest go here is {have}")
    edits = [f"-droprequire={r['Path']}" for r in gomod.get("Require") or ()]
    edits += [f"-dropreplace={r['Old']['Path']}" for r in gomod.get("Replace") or ()]
    if edits:
        _run([go, "mod", "edit", *edits], mod, env, f"{copy.label}: editing go.mod")
    outs = {}
    for pkg, (tables, funcs) in PACKAGES.items():
        outs[pkg] = work / (pkg.replace("/", "_") + ".json")
        args = [str(generator), f"-src={copy.root / pkg}", f"-dst={mod / pkg}", f"-pkg={pkg}"]
        args += [f"-out={outs[pkg]}", f"-tables={','.join(tables)}", f"-funcs={','.join(funcs)}"]
        _run(args, mod, env, f"{copy.label}: generating the {pkg} dump")
    dump_test = [go, "test", "-short", "-count=1", "-run=^TestAirsyncDump$", *pkgs]
    _run(dump_test, mod, env, f"{copy.label}: go test (the dump)")
    return {pkg: _decode(json.loads(out.read_bytes())) for pkg, out in outs.items()}


def _decode(v):
    """JSON from xmoddump back to Python: {"$bytes"} as bytes, {"$str"} as str (surrogateescape)."""
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        if v.keys() == {"$bytes"}:
            return base64.b64decode(v["$bytes"])
        if v.keys() == {"$str"}:
            return base64.b64decode(v["$str"]).decode("utf-8", "surrogateescape")
        return {k: _decode(x) for k, x in v.items()}
    return v


@_once
def _toolchain() -> tuple[str, tuple[int, ...], Path, Path]:
    """(go, its version, the built xmoddump, the session's work directory)."""
    go, go_version = _newest_go()
    work = Path(tempfile.mkdtemp(prefix="airsync-xmod-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    generator = work / "xmoddump"
    build = [go, "build", "-o", str(generator), str(Path(__file__).with_name("xmoddump.go"))]
    _run(build, work, _go_env(go, work), "building xmoddump")
    return go, go_version, generator, work


@_once
def dump(copy: Copy) -> dict[str, dict]:
    """{package: its dump} for one copy, made once per session; raises XmodUnavailable.

    The copies share the build cache: the first one compiles the standard library, the others reuse it.
    """
    if copy.missing:
        raise XmodUnavailable(copy.missing)
    go, go_version, generator, work = _toolchain()
    return _dump_copy(go, go_version, generator, copy, work / copy.label)


# --- txtar and the zip package's test cases ---------------------------------------------------


def read_txtar(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A txtar archive as (comment, [(name, data)]), as golang.org/x/tools/txtar.Parse reads it."""

    def fix_nl(b: bytes) -> bytes:
        return b if not b or b.endswith(b"\n") else b + b"\n"

    def marker(b: bytes) -> tuple[str, bytes] | None:
        if not b.startswith(b"-- "):
            return None
        line, nl, after = b.partition(b"\n")
        if not (line.endswith(b" --") and len(line) >= 6):
            return None
        name = line[3:-3].decode("utf-8", "surrogateescape").strip()
        return (name, after) if name else None

    def find(b: bytes) -> tuple[bytes, str, bytes]:
        i = 0
        while True:
            m = marker(b[i:])
            if m is not None:
                return b[:i], m[0], m[1]
            j = b.find(b"\n-- ", i)
            if j < 0:
                return fix_nl(b), "", b""
            i = j + 1

    comment, name, rest = find(data)
    files = []
    while name:
        body, next_name, rest = find(rest)
        files.append((name, body))
        name = next_name
    return comment, files


@dataclass(frozen=True)
class ZipCase:
    """One txtar file of x/mod's zip/testdata: its keys (path, version, wantErr, hash) and files."""

    kind: str  # the testdata directory: check_zip, unzip, create, ...
    name: str
    keys: dict[str, str]
    files: list[tuple[str, bytes]]


def zip_cases(copy: Copy, kind: str) -> list[ZipCase]:
    """The cases of zip/testdata/<kind>, read as zip_test.go's readTest reads them."""
    cases = []
    for txt in sorted((copy.root / "zip" / "testdata" / kind).glob("*.txt")):
        comment, files = read_txtar(txt.read_bytes())
        keys = {}
        for line in comment.split(b"\n"):
            line = line.split(b"#", 1)[0].strip()
            if line:
                key, _, value = line.partition(b"=")
                keys[key.strip().decode()] = value.strip().decode("utf-8", "surrogateescape")
        cases.append(ZipCase(kind, txt.stem, keys, files))
    if not cases:
        raise XmodUnavailable(f"no test cases in {copy.root / 'zip' / 'testdata' / kind}")
    return cases
