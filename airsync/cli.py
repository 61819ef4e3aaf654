"""The ``airsync`` command line.

Each subcommand parses its options, turns user mistakes into one clear message per problem
(file and line where there is one) and exits non-zero; it never shows a traceback for them.
Exit status: 0 all done, 1 some inputs or files failed (the rest was still mirrored),
2 bad usage or configuration (nothing was done).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from airsync import __version__, config, log
from airsync.errors import AirsyncError, ConfigError, first_of
from airsync.goproxy.upstream import DEFAULT_GOPROXY
from airsync.vulndb.setting import DEFAULT_URL as VULNDB_URL  # what --vulndb alone asks for
from airsync.vulndb.setting import parse_setting as parse_vulndb

# trio, httpx and structlog (which pulls in rich) are imported by the commands that use them,
# so that a sync, verify or import starts quickly.

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Commands that report only on stdout/stderr, never through structlog: they skip its set-up.
# (The service's client commands too: `airsync status` runs under `watch`, 10 ms is a sixth of it.)
QUIET_COMMANDS = {"sync", "verify", "import", "keygen", "audit", "bundle", "sbom",
                  "status", "jobs", "sync-now", "bundle-now", "usb-init", "usb-attach"}


def _target(value: str, config_file: str | None = None):
    """A mirror directory (Path) or, for ``s3://BUCKET/PREFIX``, an object-store target whose
    settings come from the environment, the config's ``[store]`` table and the AWS files."""
    if not value.startswith("s3://"):
        return Path(value)
    from airsync.objstore.mirror import target

    table = config.store_table(Path(config_file)) if config_file else {}
    return target(value, table)


def _local_only(target, what: str) -> None:
    """Commands that take only a directory yet: a store URL is a usage error, said plainly."""
    if not isinstance(target, Path):
        raise ConfigError(f"{what} is not available with an object store ({target}) yet: use a mirror directory")


def cmd_mirror(args: argparse.Namespace) -> int:
    import structlog
    import trio

    from airsync.fetch.fetcher import Stats
    from airsync.mirror import gosumfile, progress
    from airsync.goproxy import gover
    from airsync.mirror.inputs import read_inputs
    from airsync.mirror.job import MirrorJob
    from airsync.units import count

    conf = config.load(Path(args.config)) if args.config else {}
    to = args.to or conf.get("to")
    if not to:
        raise ConfigError("no mirror directory: give --to DIR (or mirror.to in the config)")
    sources = config.mirror_sources(conf, args)
    for note in sources.notes:
        print(f"airsync: note: {note}", file=sys.stderr)
    settings = config.fetch_settings(conf, args)
    for name in ("concurrency", "per_host", "retries"):
        v = getattr(settings, name, None) if name != "retries" else settings.retry.attempts
        if v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")

    vulndb = parse_vulndb(args.vulndb if args.vulndb is not None else conf.get("vulndb"))
    inputs = read_inputs(args.go_sum, args.go_mod, args.modules_file, args.module, args.toolchain)
    for p in inputs.problems:
        print(f"airsync: {p}", file=sys.stderr)
    if inputs.empty and not inputs.problems and vulndb:
        return _mirror_vulndb(Path(to), vulndb, settings)
    if inputs.empty and not inputs.problems:
        raise ConfigError("nothing to mirror: give --go-sum, --go-mod, --modules-file or --module")
    if inputs.empty:
        raise ConfigError("nothing to mirror: every input has problems (see above); nothing was done")
    try:
        platforms = gover.parse_platforms(args.platform) if args.platform else (gover.host_platform(),)
    except ValueError as e:
        raise ConfigError(f"--platform {e}") from None
    request = inputs.request(deps=args.deps, latest=args.latest, platforms=platforms,
                             gomod_toolchains=args.platform is not None)

    target = _target(str(to), args.config)
    if args.prove_heads:
        _local_only(target, "--prove-heads")
        _queue_heads(target, sources.sumdb, args.prove_heads)
    if args.write_go_sum:
        _local_only(target, "--write-go-sum")
    stats = Stats()
    job = MirrorJob(target, sources.upstreams, settings, stats, sumdb=sources.sumdb, private=sources.private)

    async def main():
        # Errors leave the nursery inside an ExceptionGroup: carry them out plainly instead.
        async with trio.open_nursery() as nursery:
            if args.progress:
                nursery.start_soon(progress.show, stats)
            try:
                return await job.run(request)
            except AirsyncError as e:
                return e
            finally:
                nursery.cancel_scope.cancel()

    # The event loop gives up the GIL on every socket call; worker threads (fsync, zip checks)
    # should hand it back within 0.5 ms rather than the default 5 ms, or thousands of small
    # requests each wait on it (measured: ~8% less wall time on 600 small files).
    sys.setswitchinterval(0.0005)
    summary = trio.run(main)
    if isinstance(summary, AirsyncError):
        raise summary
    structlog.get_logger("airsync").info(
        "summary",
        fetched=summary.fetched,
        skipped=summary.skipped,
        failed=len(summary.failures),
        bytes=summary.bytes,
        resumed_bytes=summary.resumed_bytes,
        retries=summary.retries,
        seconds=round(summary.seconds, 3),
        unpinned=len(summary.unpinned),
        input_problems=len(inputs.problems),
        unresolved=len(summary.problems),
    )
    for p in summary.problems:
        print(f"airsync: {p}", file=sys.stderr)
    if args.write_go_sum and summary.fatal:
        print(f"airsync: {args.write_go_sum} left as it was: the job stopped before its plan was done",
              file=sys.stderr)
    elif args.write_go_sum:
        n = gosumfile.write(Path(args.write_go_sum), Path(to), summary.plan)
        print(f"airsync: wrote {args.write_go_sum} ({count(n, 'line')})", file=sys.stderr)
    print(progress.summary_text(summary))
    if inputs.problems:
        print(f"airsync: {len(inputs.problems)} input problem(s), see above", file=sys.stderr)
    ok = summary.ok and not inputs.problems
    if vulndb:
        ok = _mirror_vulndb(Path(to), vulndb, settings) == EXIT_OK and ok
    return EXIT_OK if ok else EXIT_FAILED


def _mirror_vulndb(to: Path, url: str, settings) -> int:
    """``mirror --vulndb``: bring MIRROR/vulndb/ up to the database at ``url``."""
    import trio

    from airsync.store import MirrorStore
    from airsync.vulndb import update

    store = MirrorStore(to)
    try:
        result = trio.run(update.update, store, url, settings)
    except AirsyncError as e:
        print(f"airsync: vulnerability database not updated (the previous one stays): {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    print(result.summary())
    return EXIT_OK


def _queue_heads(to: Path, db, path: str) -> None:
    from airsync.trust import heads

    if db is None:
        raise ConfigError("--prove-heads needs a checksum database (not --sumdb off)")
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    queued = heads.queue(to, db, text, path)
    print(f"airsync: {len(queued)} head(s) of {db.name} from {path} will be proved and carried", file=sys.stderr)


def cmd_sumdb_heads(args: argparse.Namespace) -> int:
    from airsync.trust import heads

    if args.mirror:
        _local_only(_target(args.mirror), "sumdb-heads --mirror")
        found, where = heads.mirror_heads(Path(args.mirror)), f"mirror {args.mirror}"
    else:
        gopath = args.gopath or os.environ.get("GOPATH", "").split(":")[0] or str(Path.home() / "go")
        found, where = heads.gopath_heads(Path(gopath)), f"{gopath}/pkg/sumdb"
    text = heads.heads_file(found, where)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from airsync.carry import doctor

    if args.mirror:
        _local_only(_target(args.mirror), "doctor --mirror")
    findings = doctor.diagnose(doctor.go_env(args.go), Path(args.mirror) if args.mirror else None)
    for f in findings:
        print(f.line if f.ok else f"airsync doctor: {f.line}")
    return EXIT_OK if all(f.ok for f in findings) else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    import trio

    from airsync.carry import serve

    root = _target(args.mirror, args.config)
    serve.parse_listen(args.listen)  # a bad address is a usage error before anything starts
    signer = _signer(args.signing_key) if args.signing_key else None
    if isinstance(root, Path):
        serve.check_root(root)  # a usage error before anything starts (the app itself opens a cache)
        if args.redirect_zips:
            raise ConfigError("--redirect-zips needs an object store (s3://BUCKET/PREFIX) to sign URLs for")
    else:
        from airsync.carry import storeserve

        if signer is not None:
            raise ConfigError(f"--signing-key is not available with an object store ({root}) yet")
        if args.cache_mb < 1 or args.list_ttl < 0:
            raise ConfigError("--cache-mb must be at least 1 and --list-ttl at least 0")
        bucket = storeserve.open_bucket(root)  # no such bucket, no access: said before listening

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if isinstance(root, Path):
                await nursery.start(serve.serve, root, args.listen, None, signer)
            else:
                opts = storeserve.Options(redirect_zips=args.redirect_zips, cache_mb=args.cache_mb,
                                          list_ttl=args.list_ttl)
                await nursery.start(storeserve.serve, root, args.listen, opts, None, bucket)
            # Said once the socket listens: a port in use is an error, never "serving" first.
            print(f"airsync: serving {root} at http://{args.listen}/ (GOPROXY=http://{args.listen})",
                  file=sys.stderr)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a foreground server is stopped
    except (OSError, BaseExceptionGroup) as e:
        err = first_of(e, OSError)
        if err is None:
            raise
        raise ConfigError(f"cannot listen on {args.listen}: {err.strerror or err}") from None
    return EXIT_OK


def _signer(keyfile: str):
    from airsync.carry import manifest

    try:
        return manifest.load_signer(Path(keyfile))
    except manifest.KeyFileError as e:
        raise ConfigError(str(e)) from None


def cmd_sync(args: argparse.Namespace) -> int:
    from airsync.carry.sync import sync

    mirror = _target(args.mirror, args.config)
    signer = _signer(args.signing_key)
    if not isinstance(mirror, Path):
        from airsync.objstore.mirror import local_copy_of

        mirror, n = local_copy_of(mirror)  # the store's files, read as a directory mirror
        print(f"airsync sync: {args.mirror}: {n} object(s) brought into its local copy {mirror}", file=sys.stderr)
    r = sync(mirror, Path(args.to), signer, verify=args.verify, only=args.only or "")
    from airsync.units import count, human_bytes

    print(
        f"airsync sync: wrote {count(len(r.written), 'file')} ({human_bytes(r.bytes_written)}"
        + (f", {human_bytes(r.resumed_bytes)} resumed" if r.resumed_bytes else "")
        + f"), {r.unchanged} unchanged, {len(r.removed)} removed; "
        + ("signed manifest written" if r.manifest_written else "already up to date, manifest left as it was")
    )
    for rel in r.unknown:
        print(f"  note: {rel} is on the target but not ours; left alone", file=sys.stderr)
    return EXIT_OK


def cmd_bundle(args: argparse.Namespace) -> int:
    from airsync.carry.bundlewrite import write_bundle

    max_size = config.parse_size(args.max_size, "--max-size") if args.max_size else 4 * 1024**3
    mirror = _target(args.mirror, args.config)
    signer = _signer(args.signing_key)
    if not isinstance(mirror, Path):
        from airsync.objstore.mirror import local_copy_of

        mirror, n = local_copy_of(mirror)  # the store's files, read as a directory mirror (as sync does)
        print(f"airsync bundle: {args.mirror}: {n} object(s) brought into its local copy {mirror}", file=sys.stderr)
    r = write_bundle(mirror, Path(args.out), signer,
                     since=Path(args.since) if args.since else None, max_size=max_size, only=args.only or "")
    print(r.summary())
    return EXIT_OK


def cmd_sbom(args: argparse.Namespace) -> int:
    from airsync.carry.bundleread import read_sbom

    if args.format != "cyclonedx-json":
        raise ConfigError(f"--format {args.format}: not supported; airsync writes CycloneDX 1.6 JSON only "
                          "(cyclonedx-json): no well-kept Python SPDX library builds it lightly")
    sys.stdout.buffer.write(read_sbom(Path(args.path), _verifier(args.key) if args.key else None))
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    from airsync.carry import manifest

    try:
        key, pub = manifest.keygen(Path(args.out), args.name)
    except manifest.KeyFileError as e:
        raise ConfigError(str(e)) from None
    print(f"wrote {key} (secret, mode 0600: keep it on the border host) and {pub} (give it to the inside)")
    return EXIT_OK


def _verifier(key: str):
    from airsync.carry import manifest

    try:
        return manifest.load_verifier(Path(key))
    except manifest.KeyFileError as e:
        raise ConfigError(str(e)) from None


def _medium_dir(path: str) -> None:
    if not Path(path).is_dir():
        raise ConfigError(f"{path}: no such directory (mount the medium first)")


def _print_report(report) -> None:
    for line in report.lines():
        print(line)
    print(report.summary())


def _policy(args: argparse.Namespace):
    """The anti-rollback policy of --allow-rollback and --max-age."""
    from airsync.carry import rollback

    try:
        max_age = rollback.parse_age(args.max_age) if args.max_age else None
    except ValueError as e:
        raise ConfigError(f"--max-age: {e}") from None
    return rollback.Policy(allow_rollback=args.allow_rollback, max_age=max_age)


def _add_rollback_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-rollback", action="store_true",
                   help="accept a manifest older than one already accepted from its key (a deliberate restore)")
    p.add_argument("--max-age", metavar="AGE", help="refuse a manifest created longer ago than AGE (e.g. 30d, 12h)")


def cmd_verify(args: argparse.Namespace) -> int:
    from airsync.carry import accepted, bundleread, verify

    _medium_dir(args.medium)
    policy = _policy(args)
    verifier = _verifier(args.key)
    if bundleread.is_bundle(Path(args.medium)):
        report, m = bundleread.verify_bundle([Path(args.medium)], verifier, args.sumdb or os.environ.get("GOSUMDB"))
    else:
        # The manifest the medium was verified against is the one the record of accepted manifests judges.
        report, m = verify.verify_medium_manifest(Path(args.medium), verifier,
                                                  args.sumdb or os.environ.get("GOSUMDB"))
    _print_report(report)
    if report.ok and args.into and m is not None:
        accepted.guard(Path(args.into), verifier, m, policy)
        print(f"manifest {m.sequence or '(unnumbered)'}: not older than what {args.into} accepted from this key")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_import(args: argparse.Namespace) -> int:
    from airsync.carry import bundleread, verify

    verifier = _verifier(args.key)
    policy = _policy(args)
    gosumdb = args.sumdb or os.environ.get("GOSUMDB")
    paths = [Path(a) for a in args.medium]
    if len(paths) == 1 and not paths[0].exists():
        _medium_dir(args.medium[0])  # a usage error: nothing there
    is_bundle = len(paths) > 1 or not paths[0].is_dir() or bundleread.is_bundle(paths[0])
    try:
        into = _target(args.into, args.config)
        if is_bundle:
            _local_only(into, "import of a bundle")
            result = bundleread.import_bundle(paths, into, verifier, gosumdb, policy,
                                              receipt=Path(args.receipt) if args.receipt else None)
        else:
            result = verify.import_medium(paths[0], into, verifier, gosumdb, policy)
    except verify.ImportRefused as e:
        _print_report(e.report)
        print(f"airsync: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(result.summary())
    if args.receipt and not is_bundle:
        _medium_receipt(paths[0], Path(args.receipt), verifier)
    return EXIT_OK


def _medium_receipt(medium: Path, receipt: Path, verifier) -> None:
    """The medium's manifest as the receipt (checked again: the medium may have changed since)."""
    from airsync.carry import bundleread, manifest
    from airsync.carry.medium import MANIFEST

    try:
        raw = (medium / MANIFEST).read_bytes()
        manifest.open_manifest(raw, verifier, str(medium / MANIFEST))
        bundleread.write_receipt(receipt, raw)
    except OSError as e:
        raise AirsyncError(f"{e.filename or receipt}: cannot write the receipt: {e.strerror or e}") from None


def cmd_pull(args: argparse.Namespace) -> int:
    import trio

    from airsync.carry import pull

    into = _target(args.into, args.config)
    verifier = _verifier(args.key)
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    store = None
    if not isinstance(into, Path):
        # Into a store: pulled into its local copy (brought up to date first), then published.
        from airsync.objstore.mirror import local_copy_of

        store, (into, _) = into, local_copy_of(into)
    try:
        result = trio.run(
            lambda: pull.pull(args.url, into, verifier, only=args.only or "", concurrency=args.concurrency,
                              policy=_policy(args))
        )
    except pull.PullRefused as e:
        _print_report(e.report)
        print(f"airsync: {e}", file=sys.stderr)
        return EXIT_FAILED
    for path, why in result.failures:
        print(f"airsync: {path}: {why}", file=sys.stderr)
    if store is not None:
        from airsync.objstore.mirror import push_copy

        n = push_copy(store, into)
        print(f"airsync pull: {n} object(s) published into {store}", file=sys.stderr)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_audit(args: argparse.Namespace) -> int:
    import json

    from airsync.vulndb import audit, ondisk

    given = [name for name in ("go_sum", "go_mod", "dir") if getattr(args, name)]
    if len(given) != 1:
        raise ConfigError("audit: give one of --go-sum FILE, --go-mod FILE or a mirror/medium DIR")
    where = args.db or args.dir
    if not where:
        raise ConfigError("audit: give --db DIR (the vulnerability database, or a mirror or medium holding vulndb/)")
    root = ondisk.find(Path(where))
    if root is None:
        raise ConfigError(f"{where}: no vulnerability database here (no index/db.json, nor vulndb/index/db.json): "
                          "mirror one with airsync mirror --vulndb")
    if args.dir:
        if not Path(args.dir).is_dir():
            raise ConfigError(f"{args.dir}: no such directory")
        versions, problems = ondisk.held_versions(Path(args.dir)), []
    else:
        name = args.go_sum or args.go_mod
        try:
            data = Path(name).read_bytes()
        except OSError as e:
            raise ConfigError(f"{name}: cannot read: {e.strerror or e}") from None
        versions, problems = (audit.from_gosum if args.go_sum else audit.from_gomod)(data, name)
    for p in problems:
        print(f"airsync: {p}", file=sys.stderr)
    index = ondisk.read_index(root)
    findings = audit.match(versions, index, ondisk.reader(root, index))
    from airsync.vulndb.db import format_time

    modified = format_time(index.db.modified)
    if args.json:
        print(json.dumps({"database": str(root), "modified": modified, "checked": len(versions),
                          "vulnerabilities": [f.as_json() for f in findings]}, indent=2))
    else:
        if findings:
            print(audit.table(findings), end="")
        print(f"{len(findings)} known vulnerabilit{'y' if len(findings) == 1 else 'ies'} in "
              f"{len(versions)} module version(s) (vulnerability database from {modified})")
    return EXIT_FAILED if findings else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="airsync", description="Verified, resumable Go module mirrors for air gaps.")
    p.add_argument("--version", action="version", version=f"airsync {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("mirror", help="fetch, verify and publish module files into a GOPROXY tree")
    m.add_argument("--go-sum", action="append", default=[], metavar="FILE", help="go.sum file (repeatable)")
    m.add_argument("--go-mod", action="append", default=[], metavar="FILE", help="go.mod file (repeatable)")
    m.add_argument("--module", action="append", default=[], metavar="PATH@VERSION",
                   help="a module version or query: PATH@v1.2.3, @latest, @v1, @v1.2, @<v1.4.0 (repeatable)")
    m.add_argument("--modules-file", action="append", default=[], metavar="FILE", help="file of PATH@VERSION lines")
    m.add_argument("--deps", action=argparse.BooleanOptionalAction, default=True,
                   help="resolve the module graph of each go.mod and --module and mirror it too, as the go "
                   "command loads it (default); --no-deps: only the versions named")
    m.add_argument("--latest", action="store_true",
                   help="also mirror the latest version of every module (as go get M@latest picks it), so that "
                   "go get -u and go list -m -u inside see what the outside sees, retractions and deprecations too")
    m.add_argument("--toolchain", action="append", default=[], metavar="GO1.X.Y",
                   help="also mirror this Go toolchain (golang.org/toolchain), e.g. go1.27.3, or go1.27 for its newest "
                   "release, so that GOTOOLCHAIN switching works inside (repeatable)")
    m.add_argument("--platform", metavar="GOOS/GOARCH,...",
                   help="platforms of the toolchains (default: this machine's); given, the go and toolchain lines "
                   "of the --go-mod files name toolchains to mirror too")
    m.add_argument("--write-go-sum", metavar="FILE",
                   help="write the go.sum of everything mirrored (to pin what was resolved)")
    m.add_argument("--to", metavar="MIRROR", help="mirror directory (created if missing), or s3://BUCKET/PREFIX")
    m.add_argument("--upstream", metavar="URL",
                   help=f"GOPROXY-style list (default: $GOPROXY without direct/off, else {DEFAULT_GOPROXY})")
    m.add_argument("--config", metavar="FILE", help="TOML config file ([mirror] table)")
    m.add_argument("--concurrency", type=int, help="files downloaded at once")
    m.add_argument("--per-host", type=int, help="requests in flight per upstream host")
    m.add_argument("--per-host-max", type=int,
                   help="most whole-file requests per host while latency is the limit (default 4 x --per-host)")
    m.add_argument("--chunk-size", help="parallel range size for large files (e.g. 8M)")
    m.add_argument("--split-threshold", help="files above this size are split into ranges")
    m.add_argument("--limit-rate", help="overall rate limit in bytes/s (e.g. 500k, 2M)")
    m.add_argument("--http2", action=argparse.BooleanOptionalAction, default=None, help="use HTTP/2 if offered")
    m.add_argument("--read-timeout", type=float, help="seconds a read may stall")
    m.add_argument("--file-deadline", type=float, help="seconds one file may take")
    m.add_argument("--retries", type=int, help="attempts per request")
    m.add_argument(
        "--sumdb",
        metavar="GOSUMDB",
        help="checksum database to carry and check: name+hash+key [URL], a known name, or off "
        "(default: $GOSUMDB, else sum.golang.org)",
    )
    m.add_argument(
        "--private",
        metavar="PATTERNS",
        help="comma-separated globs of module paths never looked up in the database "
        "(default: $GONOSUMDB or $GOPRIVATE)",
    )
    m.add_argument("--vulndb", nargs="?", const=VULNDB_URL, metavar="URL",
                   help="also mirror the Go vulnerability database into MIRROR/vulndb/ (URL default: "
                   f"{VULNDB_URL}; off unless given here or as mirror.vulndb); alone, only the database")
    m.add_argument("--prove-heads", metavar="FILE",
                   help="heads from 'airsync sumdb-heads' inside: prove them consistent and carry the tiles for them")
    m.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="live progress (default: on a terminal)"
    )
    m.set_defaults(func=cmd_mirror)

    sv = sub.add_parser("serve", help="serve a mirror over HTTP as a GOPROXY")
    sv.add_argument("mirror", metavar="MIRROR", help="mirror directory, or s3://BUCKET/PREFIX")
    sv.add_argument("--config", metavar="FILE", help="TOML config file (its [store] table)")
    sv.add_argument("--redirect-zips", action="store_true",
                    help="answer .zip requests with a redirect to a presigned store URL (s3:// only)")
    sv.add_argument("--cache-mb", type=int, default=256, metavar="MB",
                    help="memory for cached objects of an s3:// mirror (default 256)")
    sv.add_argument("--list-ttl", type=float, default=2.0, metavar="SECONDS",
                    help="how long an s3:// replica may answer @v/list and other index files from its cache "
                    "(default 2: a newly published version is visible within that)")
    sv.add_argument("--listen", default="127.0.0.1:8080", metavar="ADDR:PORT",
                    help="address to listen on (default 127.0.0.1:8080, this machine only)")
    sv.add_argument("--signing-key", metavar="KEYFILE",
                    help="PREFIX.key: serve a signed manifest of the mirror at /airsync-manifest for airsync pull")
    sv.set_defaults(func=cmd_serve)

    sy = sub.add_parser("sync", help="copy the mirror to a medium or directory, durably, with a signed manifest")
    sy.add_argument("--mirror", required=True, metavar="MIRROR", help="the mirror to copy (a directory, or s3://BUCKET/PREFIX)")
    sy.add_argument("--config", metavar="FILE", help="TOML config file (its [store] table)")
    sy.add_argument("--to", required=True, metavar="DIR", help="the target directory (a mounted medium)")
    sy.add_argument("--signing-key", required=True, metavar="KEYFILE", help="PREFIX.key from airsync keygen")
    sy.add_argument("--verify", action="store_true", help="re-hash the target's files instead of trusting stat")
    sy.add_argument("--only", metavar="PATTERNS",
                    help="copy only these modules: comma-separated globs of module paths (e.g. golang.org/x/*); "
                    "the checksum database always goes whole")
    sy.set_defaults(func=cmd_sync)

    bd = sub.add_parser("bundle", help="write the mirror (or what changed since a manifest) as a signed bundle of tar parts")
    bd.add_argument("--mirror", required=True, metavar="MIRROR", help="the mirror to bundle (a directory, or s3://BUCKET/PREFIX)")
    bd.add_argument("--config", metavar="FILE", help="TOML config file (its [store] table)")
    bd.add_argument("--out", required=True, metavar="DIR", help="the directory the bundle's files are written to")
    bd.add_argument("--signing-key", required=True, metavar="KEYFILE", help="PREFIX.key from airsync keygen")
    bd.add_argument("--since", metavar="MANIFEST",
                    help="a differential bundle: only what the inside lacks after this manifest (a receipt from "
                    "import --receipt, a bundle's or a medium's manifest, signed by the same key)")
    bd.add_argument("--max-size", metavar="SIZE",
                    help="largest part, e.g. 4480M for a DVD (default and most: 4 GiB less one byte, FAT32's limit)")
    bd.add_argument("--only", metavar="PATTERNS",
                    help="bundle only these modules: comma-separated globs of module paths; the checksum database "
                    "always goes whole")
    bd.set_defaults(func=cmd_bundle)

    sb = sub.add_parser("sbom", help="print the SBOM of a bundle or medium (CycloneDX 1.6 JSON)")
    sb.add_argument("path", metavar="DIR|MANIFEST", help="a bundle's directory or manifest, or a medium's directory")
    sb.add_argument("--format", default="cyclonedx-json", choices=["cyclonedx-json", "spdx-json"],
                    help="cyclonedx-json (the only one written; spdx-json is refused with a reason)")
    sb.add_argument("--key", metavar="PREFIX.pub", help="also check the manifest's signature with this verifier key")
    sb.set_defaults(func=cmd_sbom)

    kg = sub.add_parser("keygen", help="make the ed25519 key pair that signs media manifests")
    kg.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.key (0600) and PREFIX.pub")
    kg.add_argument("--name", default="airsync", help="key name shown in signatures (default: airsync)")
    kg.set_defaults(func=cmd_keygen)

    vf = sub.add_parser("verify", help="check a medium against its signed manifest")
    vf.add_argument("medium", metavar="DIR", help="the medium's root directory, or a bundle's directory")
    vf.add_argument("--key", required=True, metavar="PREFIX.pub", help="the border host's verifier key")
    vf.add_argument("--into", metavar="MIRROR", help="also check that the manifest is newer than any MIRROR accepted")
    _add_rollback_args(vf)
    vf.add_argument("--sumdb", metavar="GOSUMDB", help="the checksum database key the go command here trusts "
                    "(default: $GOSUMDB, else the built-in key of a known database, else the one carried)")
    vf.set_defaults(func=cmd_verify)

    im = sub.add_parser("import", help="verify a medium or bundle and merge it into the inside mirror")
    im.add_argument("medium", metavar="DIR|PART", nargs="+",
                    help="the medium's root directory, or a bundle: its directory, or its manifest and part files")
    im.add_argument("--into", required=True, metavar="MIRROR",
                    help="the inside mirror directory, or s3://BUCKET/PREFIX (media only)")
    im.add_argument("--config", metavar="FILE", help="TOML config file (its [store] table)")
    im.add_argument("--receipt", metavar="FILE",
                    help="also write the accepted manifest here (to send back as the next bundle's --since)")
    _add_rollback_args(im)
    im.add_argument("--key", required=True, metavar="PREFIX.pub", help="the border host's verifier key")
    im.add_argument("--sumdb", metavar="GOSUMDB", help="the checksum database key the go command here trusts "
                    "(default: $GOSUMDB, else the built-in key of a known database, else the one carried)")
    im.set_defaults(func=cmd_import)

    sh = sub.add_parser("sumdb-heads", help="print the checksum-database heads this machine (or a mirror) knows")
    sh.add_argument("--gopath", metavar="DIR", help="the GOPATH whose pkg/sumdb to read (default: $GOPATH or ~/go)")
    sh.add_argument("--mirror", metavar="MIRROR", help="list the heads a mirror knows instead")
    sh.add_argument("--out", metavar="FILE", help="write the file here instead of to stdout")
    sh.set_defaults(func=cmd_sumdb_heads)

    dr = sub.add_parser("doctor", help="will the go command here verify modules from the mirror? (reads go env)")
    dr.add_argument("--mirror", metavar="MIRROR", help="the inside mirror (default: GOPROXY's file:// entry)")
    dr.add_argument("--go", default="go", help="the go command to ask (default: go)")
    dr.set_defaults(func=cmd_doctor)

    pl = sub.add_parser("pull", help="bring a peer's mirror (airsync serve, or a served medium) into this one by delta")
    pl.add_argument("url", metavar="URL", help="the peer, e.g. http://border:8080 (its /airsync-manifest must be signed)")
    pl.add_argument("--into", required=True, metavar="MIRROR", help="the local mirror directory, or s3://BUCKET/PREFIX")
    pl.add_argument("--config", metavar="FILE", help="TOML config file (its [store] table)")
    pl.add_argument("--key", required=True, metavar="PREFIX.pub", help="the verifier key of the peer's signer")
    pl.add_argument("--only", metavar="PATTERNS", help="pull only these modules: comma-separated globs of module paths")
    pl.add_argument("--concurrency", type=int, default=8, help="files fetched at once (default 8)")
    _add_rollback_args(pl)
    pl.set_defaults(func=cmd_pull)

    au = sub.add_parser("audit", help="the known vulnerabilities of the module versions of a go.sum, a go.mod or "
                        "a mirror, from a carried vulnerability database (offline; exit 1 when any)")
    au.add_argument("dir", nargs="?", metavar="DIR", help="a mirror or medium: every module version it holds, "
                    "against its vulndb/")
    au.add_argument("--go-sum", metavar="FILE", help="the module versions this go.sum pins")
    au.add_argument("--go-mod", metavar="FILE", help="the module versions this go.mod requires")
    au.add_argument("--db", metavar="DIR", help="the vulnerability database (a directory with index/ and ID/, or "
                    "a mirror or medium holding vulndb/; default: DIR's)")
    au.add_argument("--json", action="store_true", help="print JSON instead of a table")
    au.set_defaults(func=cmd_audit)

    from airsync.service import commands

    commands.add_commands(sub)
    return p


def run() -> None:
    """The program: ``main`` with this process's arguments, then exit with its status."""
    code = main()
    # Every file is written and closed by now. Without this, the interpreter's last collections
    # walk every object the imports made (trio's alone are tens of thousands): 18 ms of a
    # closure mirror's 0.27 s, against 4 ms frozen. Only for the program: a caller of ``main``
    # (the tests) keeps its collector. Not when warnings are asked for (-X dev, -W): objects in
    # cycles are then never finalized, and a file left open in one would go unreported.
    if not (sys.flags.dev_mode or sys.warnoptions):
        gc.freeze()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "progress", False) is None:
        args.progress = sys.stderr.isatty()
    # With a live display on the terminal, only warnings and errors interrupt it.
    level = args.log_level if not getattr(args, "progress", False) or args.log_level != "info" else "warning"
    if args.command not in QUIET_COMMANDS:
        log.setup(level, args.log_format)
    try:
        return args.func(args)
    except AirsyncError as e:
        print(f"airsync: {e}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, ConfigError) else EXIT_FAILED
    except KeyboardInterrupt:
        print("airsync: interrupted; a rerun resumes where this stopped", file=sys.stderr)
        return 130
    except BaseExceptionGroup as g:  # Ctrl-C inside a trio nursery arrives wrapped
        if first_of(g, KeyboardInterrupt) is None:
            raise
        print("airsync: interrupted; a rerun resumes where this stopped", file=sys.stderr)
        return 130
