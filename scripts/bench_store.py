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

    scripts/bench_store.py                   # all scenarios (~4 minutes; needs wrk and pip install -e '.[bench]')
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

from bench_mirror import machine_info, proc_cpu, write_section  # noqa: E402

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
        try:
            clients = [Obstore(s3.endpoint, "bench"), Boto3(s3.endpoint, "bench"), HttpxSigV4(s3.endpoint, "bench")]
        except ImportError as e:
            raise SystemExit(f"bench_store: {e.name} missing: .venv/bin/pip install -e '.[bench]'") from None
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
# mirror: a directory against the store
# --------------------------------------------------------------------------------------------

NGINX_CONF = """daemon off;
worker_processes {workers};
pid {t}/nginx.pid;
error_log {t}/error.log;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fcgi;
    uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


class Nginx:
    def __init__(self, root: Path, tmp: Path, workers: int = 1) -> None:
        self.root, self.tmp, self.workers = root, tmp, workers
        self.tmp.mkdir(parents=True, exist_ok=True)

    def __enter__(self):
        from tests.helpers.nginx import free_port, require_nginx

        self.port = free_port()
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=self.workers, t=self.tmp, port=self.port, root=self.root,
                                          user="user root root;" if os.geteuid() == 0 else ""))
        self.proc = subprocess.Popen([require_nginx(), "-p", str(self.tmp), "-c", str(conf), "-e",
                                      str(self.tmp / "error.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"http://127.0.0.1:{self.port}/", self.proc)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return [self.proc.pid, *_children(self.proc.pid)]

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _cpu(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (those that ended count nothing)."""
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu(pid)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer")
            time.sleep(0.1)


def _build_mix(args, upstream: Path) -> list[str]:
    from airsync.sample import big_module, build_proxy_tree, small_modules

    lines = []
    for i in range(args.big_count):
        m = big_module(f"example.com/big/b{i:02d}", "v1.0.0", args.big_mb * MB, 11 + i)
        build_proxy_tree(upstream, [m])
        lines.append(f"{m.path}@{m.version}")
    small = small_modules(args.mix_small, 5)
    build_proxy_tree(upstream, small)
    lines += [f"{m.path}@{m.version}" for m in small]
    return lines


def _airsync(*args, env: dict, timeout: float = 900) -> float:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "airsync", "--log-level", "warning", *map(str, args)],
                       env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"airsync {' '.join(map(str, args))} failed: {r.stderr[-2000:]}")
    return time.monotonic() - t0


_STATE: dict = {}


def _mix_world(args, work: Path):
    """The mix upstream, served by nginx, and a versitygw store: shared by the mirror and serve scenarios."""
    if "s3" not in _STATE:
        upstream = work / "upstream"
        log(f"building the mix: {args.big_count} x {args.big_mb} MiB + {args.mix_small} small modules")
        lines = _build_mix(args, upstream)
        (work / "modules.txt").write_text("\n".join(lines) + "\n")
        ngx = Nginx(upstream, work / "nginx-up", workers=2).__enter__()
        s3 = S3Server(work / "store").__enter__()
        s3.bucket("bench")
        env = s3.env(XDG_STATE_HOME=str(work / "state"))
        env.pop("PYTHONPATH", None)
        _STATE.update(s3=s3, ngx=ngx, env=env, upstream=upstream, lines=lines)
    return _STATE


def bench_mirror(args, work: Path) -> tuple[str, dict]:
    w = _mix_world(args, work)
    env, url = w["env"], w["ngx"].url
    common = ["mirror", "--modules-file", work / "modules.txt", "--upstream", url, "--sumdb", "off", "--no-progress"]
    times: dict[str, list[float]] = {"directory": [], "store": []}
    for r in range(args.rounds):
        order = ["directory", "store"] if r % 2 == 0 else ["store", "directory"]
        for kind in order:
            dest = work / f"mirror-{r}" if kind == "directory" else f"s3://bench/m{r}"
            if kind == "directory":
                shutil.rmtree(dest, ignore_errors=True)
            log(f"mirror round {r + 1}: {kind}")
            times[kind].append(_airsync(*common, "--to", dest, env=env))
        rerun = _airsync(*common, "--to", f"s3://bench/m{r}", env=env)
    w["dir"], w["store_url"] = work / f"mirror-{args.rounds - 1}", f"s3://bench/m{args.rounds - 1}"
    d, st = statistics.median(times["directory"]), statistics.median(times["store"])
    files = len(w["lines"]) * 3
    text = (
        f"`airsync mirror --modules-file` of a mix ({args.big_count} modules with {args.big_mb} MiB zips of "
        f"incompressible data + {args.mix_small} small modules: {files} files + lists), upstream nginx on "
        f"loopback, `--sumdb off`, into a fresh directory and into a fresh prefix of versitygw v1.8.0 (itself "
        f"writing to the same disk), alternating, {args.rounds} round(s), median wall time of the whole CLI run.\n\n"
        "| target | wall s | ratio |\n|---|---:|---:|\n"
        f"| directory | {d:.2f} | 1.00 |\n| s3:// (versitygw) | {st:.2f} | {st / d:.2f}x |\n\n"
        f"Target: <= 1.3x. A rerun into the store (nothing to fetch or write; one listing) took {rerun:.2f} s.\n"
    )
    return text, {"dir": d, "store": st}


# --------------------------------------------------------------------------------------------
# serve: requests per second with wrk
# --------------------------------------------------------------------------------------------

class _Serve:
    def __init__(self, target: str, env: dict, *extra: str) -> None:
        from tests.helpers.nginx import free_port

        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "airsync", "--log-level", "warning", "serve", target,
                                      "--listen", f"127.0.0.1:{self.port}", *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.url + "/", self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _wrk(urls: list[str], conns: int, seconds: float) -> tuple[float, float]:
    """Requests/s and MB/s summed over one wrk per URL (all at once), ``conns`` connections in all."""
    per = max(1, conns // len(urls))
    procs = [subprocess.Popen(["wrk", "-t2" if per >= 2 else "-t1", f"-c{per}", f"-d{seconds}s", u],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for u in urls]
    rps = mbps = 0.0
    for p in procs:
        out, err = p.communicate(timeout=seconds + 60)
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        t = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if not m or bad:
            raise RuntimeError(f"wrk failed: {out}{err}")
        rps += float(m.group(1))
        if t:
            mbps += float(t.group(1)) * {"B": 1e-6, "KB": 1024 / 1e6, "MB": MB / 1e6, "GB": 1024 * MB / 1e6}[t.group(2)]
    return rps, mbps


def bench_serve(args, work: Path) -> tuple[str, dict]:
    w = _mix_world(args, work)
    if "dir" not in w:
        env, url = w["env"], w["ngx"].url
        common = ["mirror", "--modules-file", work / "modules.txt", "--upstream", url, "--sumdb", "off", "--no-progress"]
        w["dir"], w["store_url"] = work / "mirror-serve", "s3://bench/serve"
        _airsync(*common, "--to", w["dir"], env=env)
        _airsync(*common, "--to", w["store_url"], env=env)
    env = w["env"]
    small = w["lines"][args.big_count].split("@")
    big = w["lines"][0].split("@")
    paths = {
        ".mod": f"{small[0]}/@v/{small[1]}.mod",
        ".info": f"{small[0]}/@v/{small[1]}.info",
        "@v/list": f"{small[0]}/@v/list",
        "small .zip": f"{small[0]}/@v/{small[1]}.zip",
        f"{args.big_mb} MiB .zip": f"{big[0]}/@v/{big[1]}.zip",
    }
    rows: dict[str, dict[str, tuple[float, float, float]]] = {}
    servers = [("nginx (1 worker, sendfile)", "nginx"), ("airsync serve DIR", "dir"),
               ("airsync serve s3:// (1 replica)", "s3"), ("airsync serve s3:// (2 replicas)", "s3x2")]
    for name, kind in servers:
        if kind == "nginx":
            srv = [Nginx(w["dir"], work / "nginx-serve", workers=1).__enter__()]
        elif kind == "dir":
            srv = [_Serve(str(w["dir"]), env)]
        else:
            srv = [_Serve(w["store_url"], env, "--cache-mb", str(args.cache_mb))
                   for _ in range(2 if kind == "s3x2" else 1)]
        try:
            rows[name] = {}
            for what, rel in paths.items():
                urls = [f"{x.url}/{rel}" for x in srv]
                conns = 8 if "MiB" in what else args.conns
                _wrk(urls, conns, 1)  # warm: caches, connections
                pids = [p for x in srv for p in x.pids()]
                c0 = _cpu(pids)
                rps, mbps = _wrk(urls, conns, args.seconds)
                cpu = _cpu(pids) - c0
                rows[name][what] = (rps, mbps, cpu / max(1.0, rps * args.seconds) * 1000)
                log(f"serve {name} {what}: {rps:.0f} req/s, {mbps:.0f} MB/s")
        finally:
            for x in srv:
                x.__exit__() if isinstance(x, Nginx) else x.stop()
    nginx = rows[servers[0][0]]
    lines = [
        f"`wrk -d{args.seconds}s` on loopback with {args.conns} connections (8 for the {args.big_mb} MiB zip), one URL "
        "per row, each server warmed for 1 s first; two replicas: one wrk per replica at once with half the "
        "connections each, summed. The tree is the mix mirrored above (in a directory for nginx and `airsync serve "
        f"DIR`, in versitygw for the replicas, `--cache-mb {args.cache_mb}`, so the big zip is streamed from the "
        "store on every request and the small files come from the cache). CPU is user+system seconds of the "
        "server processes (not versitygw's) per 1,000 requests. wrk, the servers and versitygw share the 2 cores.\n",
        "| server | " + " | ".join(f"{w_} req/s (x nginx)" for w_ in paths if "MiB" not in w_)
        + f" | {args.big_mb} MiB .zip MB/s | CPU s / 1,000 .mod |",
        "|---|" + "---:|" * (len(paths) + 1),
    ]
    for name, r in rows.items():
        cells = [f"{r[w_][0]:.0f} ({r[w_][0] / nginx[w_][0]:.2f}x)" for w_ in paths if "MiB" not in w_]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r[list(paths)[-1]][1]:.0f} | {r['.mod'][2]:.3f} |")
    lines.append("\nTarget: one replica >= 0.25x nginx's requests per second for small files.\n")
    return "\n".join(lines) + "\n", rows


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

SCENARIOS = ("clients", "mirror", "serve")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=SCENARIOS, action="append")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small-count", type=int, default=1000)
    ap.add_argument("--large-mb", type=int, default=100)
    ap.add_argument("--big-count", type=int, default=2)
    ap.add_argument("--big-mb", type=int, default=32)
    ap.add_argument("--mix-small", type=int, default=300)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--cache-mb", type=int, default=256)
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
    finally:
        for key in ("s3", "ngx"):
            if key in _STATE:
                _STATE[key].__exit__(None, None, None) if key == "ngx" else _STATE[key].stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
