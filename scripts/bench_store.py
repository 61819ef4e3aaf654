#!/usr/bin/env python3
"""Object-store benchmark: which S3 client airsync uses, and what a store costs a mirror and serve.

Scenarios (every server on 127.0.0.1; the store is versitygw over a directory, built by
``scripts/setup --test``; ``--only NAME`` runs one):

  clients   each candidate S3 client puts then gets --small-count small objects (1-4 KiB, as .mod/.info
            files are) at 16 in flight, then puts and gets one --large-mb object (a zip stand-in of
            random bytes), from trio as airsync would call it: obstore's sync API and boto3 through
            ``trio.to_thread`` (16 worker threads), httpx with httpx-auth's SigV4 class natively on
            trio. Each client must also pass the conditional-write checks against the server: a
            create-only put (``If-None-Match: *``) of an existing key is refused (412), a
            compare-and-swap put (``If-Match``) with a stale ETag is refused and with the current one
            accepted. Rounds alternate the clients; the median is reported.
  mirror    ``airsync mirror`` of a generated mix (bench_mirror's sample tree served by nginx) into a
            directory and into ``s3://`` on versitygw, alternating; wall time ratio.
  serve     requests per second with ``wrk -t2 -c64 -d DURATION`` for one ``.mod``, one ``.info`` and one
            ``@v/list``, and MB/s for one zip, from nginx, ``airsync serve DIR``, one and two
            ``airsync serve s3://`` replicas (two: wrk against each at once, summed); CPU seconds of the
            server processes per 1,000 requests.

Results go to stdout and replace each scenario's section of BENCHMARKS.md (``## Store: S3 client``,
``## Store: mirror``, ``## Serve``).

    scripts/bench_store.py                   # all scenarios (~3 minutes)
    scripts/bench_store.py --only clients
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (str(REPO), str(REPO / "scripts")):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_mirror import machine_info, write_section  # noqa: E402

from tests.helpers.s3server import ACCESS_KEY, SECRET_KEY, S3Server  # noqa: E402

SECTIONS = {"clients": "## Store: S3 client", "mirror": "## Store: mirror", "serve": "## Serve"}
MB = 1 << 20


def log(msg: str) -> None:
    print(f"[bench_store] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------------------------

class Obstore:
    name = "obstore (sync API, trio.to_thread)"

    def __init__(self, endpoint: str, bucket: str) -> None:
        from obstore.store import S3Store

        self.store = S3Store(
            bucket, endpoint=endpoint, region="us-east-1", access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY, virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )

    def put(self, key: str, data: bytes, mode=None) -> str:
        import obstore

        return obstore.put(self.store, key, data, mode=mode)["e_tag"]

    def get(self, key: str) -> bytes:
        import obstore

        return bytes(obstore.get(self.store, key).bytes())

    def put_create(self, key, data) -> bool:
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            self.put(key, data, mode="create")
            return True
        except (AlreadyExistsError, PreconditionError):
            return False

    def put_cas(self, key, data, etag) -> bool:
        from obstore.exceptions import PreconditionError

        try:
            self.put(key, data, mode={"e_tag": etag})
            return True
        except PreconditionError:
            return False

    threaded = True


class Boto3:
    name = "boto3 (trio.to_thread)"

    def __init__(self, endpoint: str, bucket: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", max_pool_connections=32),
        )

    def put(self, key, data, **kw) -> str:
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **kw)["ETag"]

    def get(self, key) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _cond(self, key, data, **kw) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.put(key, data, **kw)
            return True
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                return False
            raise

    def put_create(self, key, data) -> bool:
        return self._cond(key, data, IfNoneMatch="*")

    def put_cas(self, key, data, etag) -> bool:
        return self._cond(key, data, IfMatch=etag)

    threaded = True


class HttpxSigV4:
    name = "httpx + httpx-auth AWS4Auth (native trio)"
    threaded = False

    def __init__(self, endpoint: str, bucket: str) -> None:
        import httpx
        from httpx_auth import AWS4Auth

        self.base = f"{endpoint}/{bucket}/"
        self.client = httpx.AsyncClient(
            auth=AWS4Auth(access_id=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1", service="s3"),
            limits=httpx.Limits(max_connections=32), timeout=60,
        )

    async def put(self, key, data, headers=None) -> str:
        r = await self.client.put(self.base + key, content=data, headers=headers or {})
        if r.status_code in (409, 412):
            raise KeyError(key)
        r.raise_for_status()
        return r.headers["etag"]

    async def get(self, key) -> bytes:
        r = await self.client.get(self.base + key)
        r.raise_for_status()
        return r.content

    async def put_create(self, key, data) -> bool:
        try:
            await self.put(key, data, {"If-None-Match": "*"})
            return True
        except KeyError:
            return False

    async def put_cas(self, key, data, etag) -> bool:
        try:
            await self.put(key, data, {"If-Match": etag})
            return True
        except KeyError:
            return False


async def _call(client, fn, *args):
    import trio

    if client.threaded:
        return await trio.to_thread.run_sync(getattr(client, fn), *args)
    return await getattr(client, fn)(*args)


async def _client_round(client, tag: str, small: list[bytes], large: bytes) -> dict:
    import trio

    limiter = trio.CapacityLimiter(16)
    out = {}

    async def each(fn, i):
        async with limiter:
            if fn == "put":
                await _call(client, "put", f"{tag}/s/{i:05d}.mod", small[i])
            else:
                got = await _call(client, "get", f"{tag}/s/{i:05d}.mod")
                assert got == small[i], "get returned other bytes"

    for fn in ("put", "get"):
        t0 = time.monotonic()
        async with trio.open_nursery() as n:
            for i in range(len(small)):
                n.start_soon(each, fn, i)
        out[f"small {fn}"] = time.monotonic() - t0
    t0 = time.monotonic()
    await _call(client, "put", f"{tag}/large.zip", large)
    out["large put"] = time.monotonic() - t0
    t0 = time.monotonic()
    got = await _call(client, "get", f"{tag}/large.zip")
    out["large get"] = time.monotonic() - t0
    assert got == large
    # Conditional writes, against the server.
    k = f"{tag}/cond/list"
    assert await _call(client, "put_create", k, b"a\n"), "create-only put of a new key refused"
    assert not await _call(client, "put_create", k, b"b\n"), "create-only put overwrote an existing key"
    etag = await _call(client, "put", k + "2", b"x\n")
    assert await _call(client, "put_cas", k + "2", b"y\n", etag), "compare-and-swap with the current ETag refused"
    assert not await _call(client, "put_cas", k + "2", b"z\n", etag), "compare-and-swap with a stale ETag accepted"
    assert await _call(client, "get", k + "2") == b"y\n"
    out["conditional"] = True
    return out


def bench_clients(args, work: Path) -> tuple[str, dict]:
    import trio

    rnd = __import__("random").Random(7)
    small = [rnd.randbytes(rnd.randint(1024, 4096)) for _ in range(args.small_count)]
    large = os.urandom(args.large_mb * MB)
    results: dict[str, list[dict]] = {}
    with S3Server(work / "clients") as s3:
        s3.bucket("bench")
        clients = [Obstore(s3.endpoint, "bench"), Boto3(s3.endpoint, "bench"), HttpxSigV4(s3.endpoint, "bench")]
        for r in range(args.rounds):
            order = clients if r % 2 == 0 else list(reversed(clients))
            for c in order:
                log(f"clients round {r + 1}: {c.name}")
                res = trio.run(_client_round, c, f"r{r}-{type(c).__name__}", small, large)
                results.setdefault(c.name, []).append(res)
                shutil.rmtree(s3.root / "bench" / f"r{r}-{type(c).__name__}", ignore_errors=True)
    cols = ["small put", "small get", "large put", "large get"]
    lines = [
                f"{args.small_count} small objects (1-4 KiB, 16 in flight) and one {args.large_mb} MiB object, put then get, "
        f"against versitygw v1.8.0 on loopback; median of {args.rounds} rounds, clients alternating. "
        f"({args.large_mb} MiB rather than the 500 MiB of a largest module zip: the machine is 2 shared cores; "
        "a single PUT is streamed the same way at any size.) Objects per second for the small ones, MB/s for the large one.\n",
        "| client | small put /s | small get /s | large put MB/s | large get MB/s | If-None-Match / If-Match |",
        "|---|---:|---:|---:|---:|---|",
    ]
    summary = {}
    for name, rs in results.items():
        med = {c: statistics.median(r[c] for r in rs) for c in cols}
        summary[name] = med
        lines.append(
            f"| {name} | {args.small_count / med['small put']:.0f} | {args.small_count / med['small get']:.0f} | "
            f"{args.large_mb * MB / 1e6 / med['large put']:.0f} | {args.large_mb * MB / 1e6 / med['large get']:.0f} | "
            f"{'atomic, refused as expected' if all(r['conditional'] for r in rs) else 'FAILED'} |"
        )
    return "\n".join(lines) + "\n", summary


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

SCENARIOS = ("clients",)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=SCENARIOS, action="append")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small-count", type=int, default=1000)
    ap.add_argument("--large-mb", type=int, default=100)
    ap.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    info = machine_info()
    shown = " ".join(["scripts/bench_store.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        for name in args.only or SCENARIOS:
            t0 = time.monotonic()
            text, _ = globals()[f"bench_{name}"](args, work)
            heading = SECTIONS[name]
            section = (
                f"{heading}\n\nMeasured {started:%Y-%m-%d %H:%M} UTC by `{shown}` ({(time.monotonic() - t0) / 60:.1f} min). "
                f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, shared with other work "
                f"(load average {os.getloadavg()[0]:.1f} after it); Python {info['python']}.\n\n" + text
            )
            print(section)
            if not args.no_write:
                write_section(args.output, section, heading)
                log(f"wrote the {heading} section of {args.output}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
