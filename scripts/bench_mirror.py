#!/usr/bin/env python3
"""Mirror benchmark: airsync against aria2c and ``go mod download``, over loopback only.

Scenarios (each pair of tools runs side by side in one run, alternating A B A B for --rounds):

  mix          a generated upstream of a few big (incompressible, stored) module zips and a few
               hundred small module versions, served by nginx; ``airsync mirror --modules-file``
               against ``aria2c -i urls.txt`` writing the same tree.
  closure      the go.sum closure of an app over a generated dependency graph (go.sum made once
               by ``go mod tidy`` against nginx); ``airsync mirror --go-sum --go-mod`` against
               ``go mod download`` (fresh GOMODCACHE each run).
  closure+service  the closure as a job of a running ``airsync run`` (a fresh service and mirror each
               round, warmed by one small job): the job's own time, from the service's record,
               against ``go mod download``'s whole run; reported beside the CLI row.
  mix+delay,     the same through a small delaying reverse proxy (part of this script) that adds
  closure+delay --delay-ms (50) before each response's headers, standing in for a WAN upstream.
  mix+tls      (--only http2) the mix from a second nginx on the same tree over HTTPS with HTTP/2 enabled
               (``listen ssl http2``, a self-signed certificate made with the openssl CLI at the start);
               ``airsync mirror --http2`` against ``airsync mirror --no-http2``, both trusting the
               certificate through SSL_CERT_FILE. nginx's log shows the protocol of every request, so
               the script checks that A spoke HTTP/2.0 and B HTTP/1.1. It decides airsync's default:
               HTTP/2 stays off unless it measures faster.
  kill         airsync on the mix, SIGKILLed at a random moment (20-80 % of its measured wall time),
               then rerun to completion; bytes re-fetched = bytes nginx served in both runs - bytes
               of the final files. The final mirror is compared with upstream by sha256.

Wall time is Python's monotonic clock around each child; peak RSS is ``ru_maxrss`` from
``os.wait4``. Bytes served are summed from nginx's access log ($body_bytes_sent). Every server
listens on 127.0.0.1 only, and every child gets a minimal environment (no proxy variables).
Results go to stdout and replace the ``## Mirror`` section of BENCHMARKS.md.

    scripts/bench_mirror.py                 # full run (~5-10 minutes)
    scripts/bench_mirror.py --only http2    # only the HTTP/2 against HTTP/1.1 comparison
    scripts/bench_mirror.py --quick         # small file set, 1 round (~1-2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MB = 1e6  # all MB in this benchmark are 10^6 bytes
MiB = 1 << 20


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# delaying reverse proxy (runs as a child process of this script: its own interpreter and GIL)
# ---------------------------------------------------------------------------------------------

class _UpstreamGone(Exception):
    pass


async def _copy_exact(r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await r.read(min(n, 1 << 18))
        if not data:
            raise _UpstreamGone("upstream closed mid-body")
        w.write(data)
        n -= len(data)
        await w.drain()


async def _copy_chunked(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    for _ in range(1 << 30):
        line = await r.readuntil(b"\r\n")
        w.write(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            for _ in range(1000):  # trailers, then the empty line
                t = await r.readuntil(b"\r\n")
                w.write(t)
                if t == b"\r\n":
                    break
            await w.drain()
            return
        await _copy_exact(r, w, size + 2)


async def _copy_to_eof(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while True:
        data = await r.read(1 << 18)
        if not data:
            return
        w.write(data)
        await w.drain()


def _parse_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    out = []
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        out.append((name.strip().lower(), value.strip(), ln))
    return lines[0], out


async def _proxy_conn(cr, cw, up_host: str, up_port: int, delay: float) -> None:
    ur = uw = None
    try:
        cw.transport.set_write_buffer_limits(high=1 << 20)
        while True:
            try:
                head = await cr.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            reqline, headers = _parse_head(head)
            parts = reqline.split(b" ")
            if len(parts) != 3:
                return
            method, target, version = parts
            close = version == b"HTTP/1.0"
            fwd = [method + b" " + target + b" HTTP/1.1"]
            body_len = 0
            for lname, value, raw in headers:
                if lname == b"connection":
                    toks = value.lower()
                    if b"close" in toks:
                        close = True
                    elif b"keep-alive" in toks:
                        close = False
                    continue
                if lname in (b"keep-alive", b"proxy-connection", b"te", b"upgrade"):
                    continue
                if lname == b"content-length":
                    body_len = int(value)
                fwd.append(raw)  # Range, If-Range, Accept-Encoding ... pass through untouched
            fwd.append(b"Connection: keep-alive")
            req = b"\r\n".join(fwd) + b"\r\n\r\n"
            if body_len:
                req += await cr.readexactly(body_len)
            rhead = None
            for attempt in range(2):  # a reused upstream connection may have been closed by nginx
                if uw is None:
                    ur, uw = await asyncio.open_connection(up_host, up_port, limit=1 << 20)
                try:
                    uw.write(req)
                    await uw.drain()
                    rhead = await ur.readuntil(b"\r\n\r\n")
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    uw.close()
                    ur = uw = None
                    if attempt:
                        return
            statusline, rheaders = _parse_head(rhead)
            status = int(statusline.split(b" ")[1])
            clen, chunked, up_close = None, False, False
            out = [statusline]
            for lname, value, raw in rheaders:
                if lname == b"connection":
                    up_close = up_close or b"close" in value.lower()
                    continue
                if lname == b"keep-alive":
                    continue
                if lname == b"content-length":
                    clen = int(value)
                if lname == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                out.append(raw)
            no_body = method == b"HEAD" or status in (204, 304) or status < 200
            until_eof = not no_body and clen is None and not chunked
            close = close or until_eof
            out.append(b"Connection: close" if close else b"Connection: keep-alive")
            await asyncio.sleep(delay)  # the WAN: every response's headers arrive `delay` late
            cw.write(b"\r\n".join(out) + b"\r\n\r\n")
            if no_body:
                pass
            elif clen is not None:
                await _copy_exact(ur, cw, clen)
            elif chunked:
                await _copy_chunked(ur, cw)
            else:
                await _copy_to_eof(ur, cw)
                up_close = True
            await cw.drain()
            if up_close:
                uw.close()
                ur = uw = None
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError, _UpstreamGone, OSError):
        return
    finally:
        for w in (uw, cw):
            if w is not None:
                try:
                    w.close()
                except Exception:
                    pass


def serve_delay_proxy(up_port: int, delay_ms: float) -> None:
    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _proxy_conn(r, w, "127.0.0.1", up_port, delay_ms / 1000.0),
            "127.0.0.1", 0, limit=1 << 20, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    wall: float
    rss_kb: int
    rc: int
    killed: bool
    stdout: str
    stderr: str
    utime: float = 0.0
    stime: float = 0.0


# The child that measures: a small interpreter (-S -I) spawns the tool with posix_spawn, times it
# with time.monotonic and reaps it with os.wait4. Linux's ru_maxrss of a process includes the
# peak RSS of the address space it was forked from (recorded at exec), so a tool spawned straight
# from this (large) benchmark process would report this process's peak; spawned from the small
# launcher it reports max(launcher's RSS, its own peak). The launcher's floor is measured with
# /bin/true and reported.
LAUNCHER = r"""
import os, signal, sys, time
res, out, err, cwd, limit = sys.argv[1:6]
cmd = sys.argv[6:]
state = {"pid": 0, "killed": 0}
def on_alarm(*_):
    try:
        os.kill(state["pid"], signal.SIGKILL)
        state["killed"] = 1
    except ProcessLookupError:
        pass
signal.signal(signal.SIGALRM, on_alarm)
if cwd != "-":
    os.chdir(cwd)
fi = os.open(os.devnull, os.O_RDONLY)
fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
acts = [(os.POSIX_SPAWN_DUP2, fi, 0), (os.POSIX_SPAWN_DUP2, fo, 1), (os.POSIX_SPAWN_DUP2, fe, 2)]
start = time.monotonic()
state["pid"] = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=acts)
signal.setitimer(signal.ITIMER_REAL, float(limit))
_, status, ru = os.wait4(state["pid"], 0)
wall = time.monotonic() - start
signal.setitimer(signal.ITIMER_REAL, 0)
with open(res, "w") as f:
    f.write(f"{wall!r} {ru.ru_maxrss} {os.waitstatus_to_exitcode(status)} {ru.ru_utime!r} {ru.ru_stime!r} {state['killed']}\n")
"""


def run_measured(cmd: list[str], env: dict, cwd: Path | None = None, timeout: float = 600.0,
                 kill_after: float | None = None) -> RunResult:
    """Run cmd (absolute path first) under the launcher; see LAUNCHER.

    kill_after: SIGKILL the child after that many seconds (the kill -9 scenario).
    timeout: SIGKILL after that long in any case, so nothing hangs the benchmark.
    """
    with tempfile.TemporaryDirectory(prefix="run-") as d:
        res, out, err = Path(d, "res"), Path(d, "out"), Path(d, "err")
        limit = min(timeout, kill_after) if kill_after is not None else timeout
        p = subprocess.Popen([sys.executable, "-S", "-I", "-c", LAUNCHER, str(res), str(out), str(err),
                              str(cwd) if cwd else "-", repr(float(limit)), *cmd],
                             env=env, stdin=subprocess.DEVNULL)
        try:
            p.wait(limit + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        try:
            wall, rss, rc, ut, st, killed = res.read_text().split()
        except (FileNotFoundError, ValueError):
            raise RuntimeError(f"launcher failed (exit {p.returncode}) for {cmd}") from None
        so = out.read_text("utf-8", "replace")
        se = err.read_text("utf-8", "replace")
    return RunResult(float(wall), int(rss), int(rc), killed == "1", so, se, float(ut), float(st))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def rmtree(path: Path) -> None:
    """rm -rf that also removes the read-only trees the go command leaves in GOMODCACHE."""
    if not path.exists():
        return

    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
        except OSError:
            pass
        func(p)

    shutil.rmtree(path, onerror=onerror)


def retire(path: Path, work: Path) -> None:
    """Set a finished run's files aside, deleted with the whole work directory at the end, and
    drop them from the page cache.

    Deleting them between runs made the next run pay for it: on an ext4 without a journal (this
    machine's), creating a file skips every inode deleted in the last ~30 s, reading each one's
    inode block (``recently_deleted`` was a third of a mix run's CPU samples right after a
    deletion), and ``go mod download`` leaves thousands of files to delete. A rename frees nothing.

    Keeping them in the page cache made later runs pay too: on this VM (which hands free memory
    back to its host: virtio-balloon free page reporting), once some 4.5 GB of new page cache had
    piled up, every tool's writes into it cost about twice the CPU, from the fourth mix round on
    (the floor 0.7 -> 1.55 s, aria2c 1.4 -> 2.4 s, airsync 1.4 -> 2.1 s). With each run's files
    dropped after it (they were synced), eight rounds in a row stayed at the first rounds' figures."""
    dest = work / "retired"
    dest.mkdir(exist_ok=True)
    os.rename(path, dest / path.name)
    evict(dest / path.name)


def evict(root: Path) -> None:
    """Drop the page cache of every file under ``root`` (written back already: the caller synced)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def tool_version(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20,
                           env={"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": "/nonexistent"})
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"


# ---------------------------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------------------------

# nginx writes request bodies and proxied answers somewhere: under the benchmark's own prefix.
def add_output_args(ap: argparse.ArgumentParser) -> None:
    """The options every benchmark script has: where results and work files go."""
    ap.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not touch BENCHMARKS.md")
    ap.add_argument("--workdir", type=Path, help="parent of the temporary directory (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")


NGINX_TEMP_PATHS = """\
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
"""

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ application/zip zip; application/json info; text/plain mod; }}
    default_type text/plain;
    log_format bench '$msec $status $body_bytes_sent $request_time "$request" "$http_range" $connection';
    access_log {prefix}/access.log bench;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
""" + NGINX_TEMP_PATHS + """\
    server {{
        listen 127.0.0.1:{port}{listen_opts};
{tls}        root {root};
        location / {{ }}
    }}
}}
"""


class Nginx:
    def __init__(self, root: Path, prefix: Path, binary: str, tls: tuple[Path, Path] | None = None) -> None:
        """tls: (certificate, key) to serve HTTPS with HTTP/2 enabled (ALPN offers h2 and http/1.1)."""
        self.root, self.prefix, self.binary, self.tls = root, prefix, binary, tls
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.access = prefix / "access.log"

    def start(self) -> None:
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        for attempt in range(5):
            self.port = free_port()
            conf = NGINX_CONF.format(
                workers=max(1, min(4, os.cpu_count() or 1)),
                user="user root root;\n" if os.geteuid() == 0 else "",
                prefix=self.prefix, port=self.port, root=self.root,
                listen_opts=" ssl http2" if self.tls else "",
                tls=(f"        ssl_certificate {self.tls[0]};\n        ssl_certificate_key {self.tls[1]};\n"
                     if self.tls else ""))
            (self.prefix / "nginx.conf").write_text(conf)
            self.proc = subprocess.Popen(
                [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                 "-e", str(self.prefix / "error.log")],
                stdout=subprocess.DEVNULL, stderr=open(self.prefix / "stderr.log", "ab"),
                env={"PATH": "/usr/sbin:/usr/bin:/bin"})
            try:
                wait_port(self.port, 10)
                return
            except RuntimeError:
                self.stop()
        tail = ""
        for name in ("error.log", "stderr.log"):
            try:
                tail += (self.prefix / name).read_text("utf-8", "replace")[-1000:]
            except OSError:
                pass
        raise RuntimeError(f"nginx did not start ({self.prefix}/nginx.conf); its log ends:\n{tail.strip()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the log is complete
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def mark(self) -> int:
        return self.access.stat().st_size if self.access.exists() else 0

    def served_since(self, offset: int, settle: float = 0.3, limit: float = 10.0) -> tuple[int, int]:
        """(bytes served, requests) logged after offset, once the log has been still for `settle` s."""
        rows = self.rows_since(offset, settle, limit)
        return sum(r[2] for r in rows), len(rows)

    def rows_since(self, offset: int, settle: float = 0.3, limit: float = 10.0) -> list[tuple]:
        """(end time, status, body bytes, request seconds, path, protocol, connection serial) of each
        request logged after offset."""
        end = time.monotonic() + limit
        last, still_since = -1, time.monotonic()
        while time.monotonic() < end:
            size = self.mark()
            if size != last:
                last, still_since = size, time.monotonic()
            elif time.monotonic() - still_since >= settle:
                break
            time.sleep(0.05)
        with open(self.access, "rb") as f:
            f.seek(offset)
            data = f.read()
        rows = []
        for line in data.decode("utf-8", "replace").splitlines():
            fields = line.split(" ", 5)
            if len(fields) >= 5 and fields[2].isdigit():
                rest = fields[5].split(" ") if len(fields) > 5 else []
                path = rest[0] if rest else ""
                proto = rest[1].rstrip('"') if len(rest) > 1 else ""
                conn = rest[-1] if len(rest) > 3 else ""
                rows.append((float(fields[0]), int(fields[1]), int(fields[2]), float(fields[3]), path, proto, conn))
        return rows


def overlap(rows: list[tuple], big_marker: str = "/big/") -> float | None:
    """Share of the small files' requests that finished while big zips were being transferred."""
    big = [(r[0] - r[3], r[0]) for r in rows if big_marker in r[4] and r[4].endswith(".zip")]
    small = [r[0] for r in rows if big_marker not in r[4]]
    if not big or not small:
        return None
    lo, hi = min(b[0] for b in big), max(b[1] for b in big)
    return sum(1 for t in small if lo <= t <= hi) / len(small)


OPENSSL_REQ = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
               "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]


def make_cert(d: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI: (cert.pem, key.pem) in d."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("the http2 scenario needs the openssl command for its self-signed certificate, and "
                           "openssl is not on PATH: install it (Debian: apt-get install openssl) or leave http2 "
                           "out of --only")
    d.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([openssl, *OPENSSL_REQ], cwd=d, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(d)})
    if r.returncode != 0 or not (d / "cert.pem").is_file():
        raise RuntimeError(f"openssl req failed (exit {r.returncode}): {(r.stdout + r.stderr).strip()[-1000:]}")
    return d / "cert.pem", d / "key.pem"


class DelayProxy:
    def __init__(self, up_port: int, delay_ms: float) -> None:
        self.up_port, self.delay_ms = up_port, delay_ms
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.cpu = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-delay-proxy",
             str(self.up_port), str(self.delay_ms)],
            stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        line = b""
        end = time.monotonic() + 15
        import select
        while time.monotonic() < end and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 64)
                if not ch:
                    break
                line += ch
        m = re.match(rb"PORT (\d+)", line)
        if not m:
            raise RuntimeError("delay proxy did not start")
        self.port = int(m.group(1))
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            _, _, ru = os.wait4(self.proc.pid, 0)
            self.proc.returncode = 0
            self.cpu = ru.ru_utime + ru.ru_stime
            self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---------------------------------------------------------------------------------------------
# the file sets
# ---------------------------------------------------------------------------------------------

@dataclass
class FileSet:
    name: str
    files: dict[str, tuple[int, str]]  # relpath -> (size, sha256)

    @property
    def bytes(self) -> int:
        return sum(s for s, _ in self.files.values())

    @property
    def count(self) -> int:
        return len(self.files)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def describe_files(upstream: Path, relpaths: list[str], name: str) -> FileSet:
    return FileSet(name, {r: ((upstream / r).stat().st_size, sha256_file(upstream / r)) for r in relpaths})


def closure_graph(n: int, seed: int):
    """n module paths example.com/dep/dNNN forming a DAG; every 5th also has a v1.1.0.

    Modules require 0-3 later modules, sometimes at the older version of a two-version module,
    so that go.sum gets /go.mod-only lines (the version that minimal version selection drops).
    Every 4th module says go 1.16 (unpruned, as many older modules do), so the go command loads
    its requirements' go.mod files too. Each module carries 2-48 KiB of Go-ish text so zips are not trivially small.
    """
    from airsync.sample import library_module

    rng = random.Random(seed)
    paths = [f"example.com/dep/d{i:03d}" for i in range(n)]
    old_go = {i for i in range(n) if i % 4 == 1}  # go 1.16: unpruned, their go.mod graphs are loaded
    two = {i for i in range(n) if i % 5 == 3}
    reqs: dict[int, set[int]] = {i: set() for i in range(n)}
    for i in range(n):
        for j in rng.sample(range(i + 1, n), min(n - i - 1, rng.randint(0, 3))):
            reqs[i].add(j)
    n_roots = max(1, n // 8)
    for j in range(n_roots, n):  # everything below the roots is required by someone above it
        if not any(j in reqs[i] for i in range(j)):
            reqs[rng.randrange(0, j)].add(j)
    old_pref = {(i, j): rng.random() < 0.5 for i in range(n) for j in reqs[i] if j in two}

    def ver_of(i: int, j: int, v: str) -> str:
        old = (i in two and v == "v1.0.0") or old_pref.get((i, j), False)  # an older version requires older things
        return "v1.0.0" if j not in two or old else "v1.1.0"

    mods = []
    for i in range(n):
        versions = ["v1.0.0", "v1.1.0"] if i in two else ["v1.0.0"]
        for v in versions:
            req = [(paths[j], ver_of(i, j, v)) for j in sorted(reqs[i])]
            filler = "".join(f"// {rng.randbytes(30).hex()}\n" for _ in range(rng.randint(32, 768)))
            mods.append(library_module(paths[i], v, req, go="1.16" if i in old_go else "1.19", extra_files=[("filler.go", (
                f"package {paths[i].rsplit('/', 1)[1]}\n\n{filler}").encode())]))
    app_reqs = [(paths[i], "v1.1.0" if i in two else "v1.0.0") for i in range(n_roots)]
    return mods, app_reqs


def build_upstream(root: Path, args) -> tuple[list, list, list, list]:
    from airsync.sample import big_module, build_proxy_tree, small_modules

    big = [big_module(f"example.com/big/b{i:02d}", "v1.0.0", args.big_size_mb * MiB, args.seed_data + i)
           for i in range(args.big_count)]
    build_proxy_tree(root, big)
    del big  # 128 MiB each in memory: keep only the names
    big_keys = [(f"example.com/big/b{i:02d}", "v1.0.0") for i in range(args.big_count)]
    small = small_modules(args.small_count, args.seed_data)
    build_proxy_tree(root, small)
    dep_mods, app_reqs = closure_graph(args.closure_count, args.seed_data)
    build_proxy_tree(root, dep_mods)
    return big_keys, [m.key for m in small], dep_mods, app_reqs


def proxy_files(keys, exts=("info", "mod", "zip")) -> list[str]:
    from airsync.goproxy.modpath import ModuleVersion, proxy_file

    return [proxy_file(ModuleVersion(p, v), e) for p, v in keys for e in exts]


# ---------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------

def base_env(tmp: Path) -> dict:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(tmp)}


def go_env(tmp: Path, goproxy: str) -> dict:
    go = shutil.which("go") or "/usr/bin/go"
    env = base_env(tmp)
    env["PATH"] = f"{Path(os.path.realpath(go)).parent}:/usr/bin:/bin"
    env.update({
        "GOPROXY": goproxy, "GOSUMDB": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod",
        "GOENV": "off", "GO111MODULE": "on", "GOPATH": str(tmp / "gopath"),
        "GOMODCACHE": str(tmp / "modcache"), "GOCACHE": str(tmp / "gocache"), "CGO_ENABLED": "0",
        "GONOSUMDB": "", "GONOPROXY": "", "GOPRIVATE": "", "GOINSECURE": "",
    })
    return env


@dataclass
class Measure:
    scenario: str
    tool: str
    round: int
    wall: float
    rss_mb: float
    served: int
    requests: int
    files: int
    bytes: int
    rc: int
    sync_after: float
    cpu: float
    note: str = ""
    busy_before: float = 0.0
    overlap: float | None = None  # mix: share of small-file requests done while big zips were in transfer
    connections: int = 0  # distinct connections in nginx's log ($connection)
    protocols: str = ""  # protocols in nginx's log, e.g. "HTTP/2.0" or "HTTP/1.1 x3, HTTP/2.0 x900"

    @property
    def mbps(self) -> float:
        return self.bytes / MB / self.wall

    @property
    def fps(self) -> float:
        return self.files / self.wall


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    upstream: Path
    nginx: Nginx
    mix: FileSet
    closure: FileSet
    closure_zips: int
    app_dir: Path
    modules_file: Path
    urls_file: Path
    measures: list[Measure] = field(default_factory=list)
    kills: list[dict] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    closure_gomod_only: int = 0
    quiet: QuietWaiter | None = None
    rss_floor_mb: float = 0.0
    notes_proxy_cpu: float = 0.0
    tls_nginx: Nginx | None = None  # the mix+tls scenario's server (HTTPS, HTTP/2 enabled)
    cert: Path | None = None
    floors: dict[int, list[float]] = field(default_factory=dict)  # mix round -> CPU s of every cpu_floor.py run in it
    big_closure: tuple | None = None  # (module paths, zips, files, Measure) of the closure-N run
    service: list[dict] = field(default_factory=list)  # closure+service rounds: job and drop-to-done times

    @property
    def floor(self) -> dict[int, float]:
        """Mix round -> the CPU floor that counts for it: the least of its runs (``scenario_mix``)."""
        return {rnd: min(runs) for rnd, runs in self.floors.items()}

    def airsync_cmd(self, dest: Path, url: str, inputs: list[str], flags: tuple[str, ...] = ()) -> list[str]:
        # aria2c and `go mod download` (GOSUMDB=off here) consult no checksum database, so neither
        # does airsync in these runs; the generated upstream carries none.
        return ([sys.executable, "-m", "airsync", "mirror", *inputs, "--to", str(dest), "--upstream", url,
                 "--no-progress", "--sumdb", "off", *flags] + shlex.split(self.args.airsync_extra))

    def verify_tree(self, dest: Path, fs: FileSet, deep: bool) -> str:
        bad = []
        for rel, (size, digest) in fs.files.items():
            p = dest / rel
            try:
                st = p.stat()
            except FileNotFoundError:
                bad.append(f"missing {rel}")
                continue
            if st.st_size != size or (deep and sha256_file(p) != digest):
                bad.append(f"differs {rel}")
        return "" if not bad else f"{len(bad)} bad ({'; '.join(bad[:3])})"


def cpu_busy(interval: float = 0.5) -> float:
    """Fraction of all CPUs busy (anything: other users of a shared machine) over `interval` s."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t1, i1 = sample()
        time.sleep(interval)
        t2, i2 = sample()
        return 1.0 - (i2 - i1) / max(1, t2 - t1)
    except (OSError, ValueError, IndexError):
        return 0.0


class QuietWaiter:
    """Before each run, wait (bounded) until the machine is mostly idle; others may share it."""

    def __init__(self, threshold: float, budget: float) -> None:
        self.threshold, self.budget, self.waited = threshold, budget, 0.0
        self.seen: list[float] = []

    def __call__(self) -> float:
        busy = cpu_busy()
        while busy > self.threshold and self.waited < self.budget:
            time.sleep(1.0)
            self.waited += 1.5
            busy = cpu_busy()
        self.seen.append(busy)
        return busy


def timed_sync() -> float:
    t = time.monotonic()
    os.sync()
    return time.monotonic() - t


def run_airsync(b: Bench, scenario: str, rnd: int, fs: FileSet, url: str, inputs: list[str],
                deep: bool, cwd: Path | None = None, flags: tuple[str, ...] = (), tool: str = "airsync",
                server: Nginx | None = None, env_extra: dict | None = None,
                expect_proto: str | None = None) -> Measure:
    tmp = Path(tempfile.mkdtemp(prefix="as-", dir=b.work))
    dest = tmp / "mirror"
    return measure_download(b, scenario, tool, rnd, fs, b.airsync_cmd(dest, url, inputs, flags), tmp, dest, deep,
                            cwd, server, env_extra, expect_proto)


def run_aria2c(b: Bench, scenario: str, rnd: int, url: str, deep: bool) -> Measure:
    tmp = Path(tempfile.mkdtemp(prefix="ar-", dir=b.work))
    dest = tmp / "mirror"
    dest.mkdir()
    urls = tmp / "urls.txt"
    urls.write_text(b.urls_file.read_text().replace("@UPSTREAM@", url))
    cmd = [shutil.which("aria2c") or "aria2c", "-j16", "-x4", "-s4", "-i", str(urls), "-d", str(dest),
           "--allow-overwrite=true", "--auto-file-renaming=false", "--console-log-level=warn",
           "--summary-interval=0", "-q"]
    return measure_download(b, scenario, "aria2c", rnd, b.mix, cmd, tmp, dest, deep, None)


def protocols_of(rows: list[tuple]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[5]] = counts.get(r[5], 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{p or '?'} x{n}" for p, n in sorted(counts.items()))


def measure_download(b: Bench, scenario: str, tool: str, rnd: int, fs: FileSet, cmd: list[str], tmp: Path,
                     dest: Path, deep: bool, cwd: Path | None, server: Nginx | None = None,
                     env_extra: dict | None = None, expect_proto: str | None = None) -> Measure:
    """Run one download into ``dest``, check the tree, record and log the measure.

    server: the nginx whose log counts the bytes (default b.nginx); env_extra: added to the child's
    environment; expect_proto: the protocol every request must have used (else a note).
    """
    server = server or b.nginx
    env = base_env(tmp)
    env.update(env_extra or {})
    busy = b.quiet()
    mark = server.mark()
    r = run_measured(cmd, env, cwd=cwd, timeout=b.args.run_timeout)
    sync = timed_sync()
    rows = server.rows_since(mark)
    served, reqs = sum(x[2] for x in rows), len(rows)
    protos = protocols_of(rows)
    note = b.verify_tree(dest, fs, deep)
    if r.rc != 0:
        note = (note + "; " if note else "") + f"exit {r.rc}: {(r.stdout + r.stderr).strip()[-300:]}"
    if expect_proto and protos != expect_proto:
        note = (note + "; " if note else "") + f"expected every request over {expect_proto}, nginx logged {protos}"
    retire(tmp, b.work)
    m = Measure(scenario, tool, rnd, r.wall, r.rss_kb * 1024 / MB, served, reqs, fs.count, fs.bytes,
                r.rc, sync, r.utime + r.stime, note, busy, overlap(rows) if fs is b.mix else None,
                len({x[6] for x in rows}), protos)
    b.measures.append(m)
    log(f"  {scenario:13s} {tool:8s} round {rnd}: {m.wall:7.2f} s  {m.mbps:8.1f} MB/s  {m.fps:7.1f} files/s  "
        f"RSS {m.rss_mb:6.1f} MB  cpu {m.cpu:5.2f} s  served {served / MB:.1f} MB / {reqs} req / "
        f"{m.connections} conn  sync {sync:.2f} s  busy-before {busy:.0%}"
        + (f"  small-during-big {m.overlap:.0%}" if m.overlap is not None else "")
        + (f"  {protos}" if expect_proto else "")
        + (f"  !! {note}" if note else ""))
    return m


def run_go(b: Bench, scenario: str, rnd: int, url: str) -> Measure:
    tmp = Path(tempfile.mkdtemp(prefix="go-", dir=b.work))
    app = tmp / "app"
    shutil.copytree(b.app_dir, app)
    env = go_env(tmp, url)
    cmd = [shutil.which("go") or "/usr/bin/go", "mod", "download"]
    busy = b.quiet()
    mark = b.nginx.mark()
    r = run_measured(cmd, env, cwd=app, timeout=b.args.run_timeout)
    sync = timed_sync()
    rows = b.nginx.rows_since(mark)
    served, reqs = sum(x[2] for x in rows), len(rows)
    zips = list((tmp / "modcache" / "cache" / "download").rglob("*.zip"))
    note = "" if len(zips) == b.closure_zips else f"{len(zips)} zips in GOMODCACHE, expected {b.closure_zips}"
    if r.rc != 0:
        note = (note + "; " if note else "") + f"exit {r.rc}: {(r.stdout + r.stderr).strip()[-300:]}"
    retire(tmp, b.work)
    fs = b.closure
    m = Measure(scenario, "go", rnd, r.wall, r.rss_kb * 1024 / MB, served, reqs, fs.count, fs.bytes,
                r.rc, sync, r.utime + r.stime, note, busy, None, len({x[6] for x in rows}), protocols_of(rows))
    b.measures.append(m)
    log(f"  {scenario:13s} go       round {rnd}: {m.wall:7.2f} s  {m.fps:7.1f} files/s  RSS {m.rss_mb:6.1f} MB  "
        f"cpu {m.cpu:5.2f} s  served {served / MB:.2f} MB / {reqs} req  sync {sync:.2f} s  busy-before {busy:.0%}"
        + (f"  !! {note}" if note else ""))
    return m


def scenario_mix(b: Bench, name: str, url: str, floor: bool = False) -> None:
    """``floor``: each round also measures the CPU floor, before and after the two tools, and
    keeps the lesser: this VM's cost of writing into the page cache moves by up to 2x within a
    minute (BENCHMARKS.md, issue 11's fifth and seventh passes), so airsync's CPU is held against
    the floor of its own round, and a floor that happened to pay for the VM's memory is not taken."""
    log(f"scenario {name}: airsync vs aria2c, {b.args.rounds} rounds" + (", each with the CPU floor" if floor else ""))
    for rnd in range(1, b.args.rounds + 1):
        deep = rnd == 1
        if floor:
            measure_floor(b, rnd)
        run_airsync(b, name, rnd, b.mix, url, ["--modules-file", str(b.modules_file)], deep)
        run_aria2c(b, name, rnd, url, deep)
        if floor:
            measure_floor(b, rnd)


def scenario_closure(b: Bench, name: str, url: str) -> None:
    log(f"scenario {name}: airsync vs go mod download, {b.args.rounds} rounds")
    inputs = ["--go-sum", str(b.app_dir / "go.sum"), "--go-mod", str(b.app_dir / "go.mod")]
    for rnd in range(1, b.args.rounds + 1):
        run_airsync(b, name, rnd, b.closure, url, inputs, deep=rnd == 1)
        run_go(b, name, rnd, url)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    return 0.0


def wait_request_done(requests: Path, name: str, limit: float) -> None:
    """Until request file ``name`` has left the requests directory (to ``.done/`` or ``.failed/``,
    which the service does after it records the job's end), by ``stat`` every 5 ms: polling the
    control API instead would put requests on the event loop the job runs on."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if (requests / ".done" / name).exists() or (requests / ".failed" / name).exists():
            return
        time.sleep(0.005)
    raise RuntimeError(f"the service did not finish the job of {name} within {limit:g} s")


def job_of(sock: Path, label: str) -> dict:
    from tests.helpers.daemonkit import job_states

    jobs = list(job_states(sock).values())
    for j in jobs:
        if j.get("label") == label and j.get("finished"):
            return j
    raise RuntimeError(f"the service has no finished job for {label}: {jobs}")


def run_service_closure(b: Bench, scenario: str, rnd: int, url: str) -> Measure | None:
    """The closure as a job of a running service (``airsync run``), fresh mirror and service each
    round. The service first mirrors one module of the mix (a warm-up, not counted: a long-running
    service has imported its code and run jobs before); then the closure's go.sum is dropped into its
    requests directory. Wall is the job's own time (started -> finished, from the service's job
    record); the time from the drop includes the requests directory's watch and settle ticks. A
    round that fails is a note, not the end of the benchmark."""
    from tests.helpers.daemonkit import drop_request, write_config  # the service tests' own

    tmp = Path(tempfile.mkdtemp(prefix="sv-", dir=b.work))
    conf = write_config(tmp, url, debounce=0, refresh_interval=0)  # sumdb off, every path under tmp
    dest, requests, sock = tmp / "mirror", tmp / "requests", tmp / "run" / "control.sock"
    warm = next(rel for rel in b.mix.files if "/small/" in rel and rel.endswith(".mod"))
    warm_module = warm.replace("/@v/", "@").removesuffix(".mod")
    service_log = tmp / "service.log"
    with open(service_log, "wb") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "airsync", "--log-format", "json", "run", "--config", str(conf)],
                                cwd=REPO, env=base_env(tmp), stdout=logf, stderr=subprocess.STDOUT)
    from airsync.errors import AirsyncError
    from airsync.service.controlclient import Client, DaemonNotRunning

    try:
        for _ in range(3000):
            try:
                with Client(sock) as c:
                    c.status()
                break
            except DaemonNotRunning:
                if proc.poll() is not None:
                    raise RuntimeError(f"airsync run exited {proc.returncode}") from None
                time.sleep(0.01)
        else:
            raise RuntimeError("airsync run did not answer on its control socket within 30 s")
        drop_request(requests, "warmup.txt", warm_module + "\n")
        wait_request_done(requests, "warmup.txt", 60)
        warm_job = job_of(sock, "warmup.txt")
        timed_sync()
        busy = b.quiet()
        mark = b.nginx.mark()
        cpu0 = proc_cpu(proc.pid)
        drop_request(requests, "closure.sum", (b.app_dir / "go.sum").read_text())
        dropped = time.time()  # just after the rename
        wait_request_done(requests, "closure.sum", b.args.run_timeout)
        cpu = proc_cpu(proc.pid) - cpu0
        rss = proc_peak_rss_mb(proc.pid)
        job = job_of(sock, "closure.sum")
    except (RuntimeError, OSError, AirsyncError) as e:
        tail = service_log.read_text(errors="replace")[-600:] if service_log.exists() else ""
        b.notes.append(f"{scenario} round {rnd}: no measure: {e}; the service's log ends: {tail!r}")
        log(f"  {scenario:13s} service  round {rnd}: FAILED: {e}")
        return None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        timed_sync()
    note = "" if job["state"] == "done" and warm_job["state"] == "done" \
        else f"job {job['state']}: {job.get('error') or job.get('result')}"
    rows = b.nginx.rows_since(mark)
    served, reqs = sum(x[2] for x in rows), len(rows)
    bad = b.verify_tree(dest, b.closure, rnd == 1)
    note = "; ".join(x for x in (note, bad) if x)
    retire(tmp, b.work)
    wall = job["finished"] - job["started"]
    fs = b.closure
    m = Measure(scenario, "airsync run (job)", rnd, wall, rss, served, reqs, fs.count, fs.bytes, 0 if not note else 1,
                0.0, cpu, note, busy, None, len({x[6] for x in rows}), protocols_of(rows))
    b.measures.append(m)
    b.service.append({"round": rnd, "job": wall, "from_drop": job["finished"] - dropped})
    log(f"  {scenario:13s} service  round {rnd}: job {wall:7.3f} s, from the drop {job['finished'] - dropped:.3f} s  "
        f"RSS {rss:6.1f} MB  cpu {cpu:5.2f} s  served {served / MB:.2f} MB / {reqs} req  busy-before {busy:.0%}"
        + (f"  !! {note}" if note else ""))
    return m


def scenario_service_closure(b: Bench, name: str, url: str) -> None:
    log(f"scenario {name}: a running airsync service's job vs go mod download, {b.args.rounds} rounds")
    for rnd in range(1, b.args.rounds + 1):
        if run_service_closure(b, name, rnd, url) is not None:
            run_go(b, name, rnd, url)  # in pairs: the ratio is taken round by round


def measure_floor(b: Bench, rnd: int) -> None:
    """The CPU floor of the mix (scripts/cpu_floor.py: one write, h1, one chunking pass per file),
    for round ``rnd``, into a fresh directory on the same disk."""
    listing = b.work / "mix-files.txt"
    if not listing.exists():
        listing.write_text("".join(rel + "\n" for rel in b.mix.files))
    tmp = Path(tempfile.mkdtemp(prefix="fl-", dir=b.work))
    b.quiet()
    r = run_measured([sys.executable, str(REPO / "scripts" / "cpu_floor.py"), str(b.upstream), str(tmp / "out"), str(listing)],
                     base_env(tmp), cwd=REPO, timeout=b.args.run_timeout)
    sync = timed_sync()
    retire(tmp, b.work)
    if r.rc != 0:
        raise RuntimeError(f"cpu_floor.py failed: {r.stderr[-2000:]}")
    cpu = r.utime + r.stime
    b.floors.setdefault(rnd, []).append(cpu)
    log(f"  floor (mix)           round {rnd}: cpu {cpu:5.2f} s (user {r.utime:.2f}, system {r.stime:.2f})  "
        f"wall {r.wall:.2f} s  sync {sync:.2f} s")


def floor_ratios(b: Bench) -> list[float]:
    """airsync's CPU on the mix over the floor's, round by round (the floor ran in the same round)."""
    mine = {m.round: m.cpu for m in b.measures if m.scenario == "mix" and m.tool == "airsync"}
    return [mine[rnd] / f for rnd, f in b.floor.items() if rnd in mine and f > 0]


def scenario_big_closure(b: Bench, n: int) -> None:
    """Peak RSS of airsync on a go.sum closure of n module paths, from a second nginx (one run)."""
    from airsync.sample import app_gosum, build_proxy_tree, write_main_module

    log(f"scenario closure-{n}: airsync alone, 1 run (peak RSS)")
    root = b.work / f"upstream-{n}"
    dep_mods, app_reqs = closure_graph(n, b.args.seed_data)
    build_proxy_tree(root, dep_mods)
    app = b.work / f"app-{n}"
    write_main_module(app, app_reqs)
    gosum = app_gosum(dep_mods, app_reqs)
    (app / "go.sum").write_text(gosum)
    zips, mods = set(), set()
    for line in gosum.splitlines():
        p, v, _ = line.split()
        (mods if v.endswith("/go.mod") else zips).add((p, v.removesuffix("/go.mod")))
    files = proxy_files(sorted(zips)) + proxy_files(sorted(mods - zips), ("info", "mod"))
    fs = describe_files(root, files, f"closure-{n}")
    server = Nginx(root, b.work / f"nginx-{n}", b.nginx.binary)
    server.start()
    try:
        m = run_airsync(b, f"closure-{n}", 1, fs, server.url,
                        ["--go-sum", str(app / "go.sum"), "--go-mod", str(app / "go.mod")], deep=True, server=server)
    finally:
        server.stop()
    b.big_closure = (n, len(zips), fs.count, m)


H2_TOOLS = ("airsync --http2", "airsync --no-http2")


def scenario_http2(b: Bench, name: str) -> None:
    """The mix over HTTPS from the TLS nginx: airsync --http2 (A) against airsync --no-http2 (B)."""
    srv = b.tls_nginx
    log(f"scenario {name}: {H2_TOOLS[0]} vs {H2_TOOLS[1]} over TLS ({srv.url}), {b.args.rounds} rounds")
    env = {"SSL_CERT_FILE": str(b.cert)}
    inputs = ["--modules-file", str(b.modules_file)]
    for rnd in range(1, b.args.rounds + 1):
        deep = rnd == 1
        for tool, flag, proto in ((H2_TOOLS[0], "--http2", "HTTP/2.0"), (H2_TOOLS[1], "--no-http2", "HTTP/1.1")):
            run_airsync(b, name, rnd, b.mix, srv.url, inputs, deep, flags=(flag,), tool=tool, server=srv,
                        env_extra=env, expect_proto=proto)


def durable_bytes(dest: Path, fs: FileSet, upstream: Path) -> dict:
    """What a killed airsync run left: published bytes, recorded spans of unpublished files, and bytes on disk.

    ``on_disk`` counts bytes of the partial files (those the state database names) that already
    equal the upstream file at the same offset (4 KiB granularity; the big payloads are random, so
    an unwritten block of zeros never matches). It tells bytes that reached the file from bytes
    that nginx sent but the process never wrote (socket buffers, memory).
    """
    out = {"published": sum(s for rel, (s, _) in fs.files.items() if (dest / rel).is_file()),
           "spans": 0, "on_disk": 0, "partials": 0, "worst_file_loss": 0.0}
    per_file_spans: dict[str, int] = {}
    db = dest / ".airsync" / "state.db"
    if not db.exists():
        return out
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        # Only files not yet published: airsync lands a file before it deletes the file's spans, so a
        # kill in between leaves spans of a published file, which "published" already counts.
        per_file_spans = {rel: n for rel, n in con.execute("SELECT relpath, SUM(end - start) FROM spans GROUP BY relpath")
                          if not (dest / rel).is_file()}
        out["spans"] = sum(per_file_spans.values())
        durable_rows = {(rel, a): b for rel, a, b in con.execute("SELECT relpath, start, end FROM spans")}
        try:  # write notes (checked by hash on resume): kept when their bytes are the upstream's
            note_rows = list(con.execute("SELECT relpath, start, end FROM written"))
        except sqlite3.Error:
            note_rows = []
        relpaths = [r[0] for r in con.execute("SELECT relpath FROM downloads")]
    except sqlite3.Error:
        out["spans"], relpaths = -1, []
    finally:
        con.close()
    from airsync.store import MirrorStore

    store = MirrorStore.__new__(MirrorStore)  # only for its partial file naming; no side effects
    store.partial_dir = dest / ".airsync" / "partial"
    for rel in relpaths:
        part = store.partial_path(rel)
        if not part.is_file() or not (upstream / rel).is_file() or (dest / rel).is_file():
            continue
        out["partials"] += 1
        here = 0
        with open(part, "rb") as a, open(upstream / rel, "rb") as b:
            while True:
                x, y = a.read(1 << 20), b.read(1 << 20)
                if not x or not y:
                    break
                if x == y[: len(x)]:
                    here += len(x)
                    continue
                for i in range(0, min(len(x), len(y)), 4096):
                    if x[i:i + 4096] == y[i:i + 4096]:
                        here += len(x[i:i + 4096])
        out["on_disk"] += here
        # This file's own loss: bytes in its partial file that neither a recorded span nor a write
        # note whose bytes match the upstream (what a rerun keeps) covers.
        kept = per_file_spans.get(rel, 0)
        for r, a, b in note_rows:
            if r == rel and b > durable_rows.get((rel, a), a) and _same_bytes(part, upstream / rel, a, b):
                kept += b - durable_rows.get((rel, a), a)
        size = fs.files[rel][0] if rel in fs.files else (upstream / rel).stat().st_size
        out["worst_file_loss"] = max(out["worst_file_loss"], (here - kept) / size * 100)
        out["noted"] = out.get("noted", 0) + kept - per_file_spans.get(rel, 0)
    return out


def _same_bytes(a: Path, b: Path, start: int, end: int) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        fa.seek(start)
        fb.seek(start)
        return fa.read(end - start) == fb.read(end - start)


def socket_queues(port: int) -> tuple[int, int]:
    """Bytes queued in the kernel on TCP connections to 127.0.0.1:port: (nginx's Send-Q, the
    client's Recv-Q); (-1, -1) when /proc/net/tcp cannot be read."""
    send = recv = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, tx_rx = fields[1], fields[2], fields[4]
                tx, rx = (int(x, 16) for x in tx_rx.split(":"))
                if int(local.split(":")[1], 16) == port and fields[3] == "01":
                    send += tx  # nginx's side: sent by sendfile, not yet taken by the client
                elif int(remote.split(":")[1], 16) == port and fields[3] == "01":
                    recv += rx  # the client's side: arrived, not yet read
    except (OSError, ValueError, IndexError, StopIteration):
        return -1, -1
    return send, recv


def scenario_kill(b: Bench, airsync_wall: float, seed: int) -> None:
    rng = random.Random(seed)
    log(f"scenario kill: {b.args.kills} x SIGKILL at 20-80 % of {airsync_wall:.2f} s (seed {seed})")
    fs = b.mix
    for k in range(1, b.args.kills + 1):
        at = rng.uniform(0.2, 0.8) * airsync_wall
        b.quiet()
        tmp = Path(tempfile.mkdtemp(prefix="kill-", dir=b.work))
        dest = tmp / "mirror"
        cmd = b.airsync_cmd(dest, b.nginx.url, ["--modules-file", str(b.modules_file)])
        mark = b.nginx.mark()
        queued: list[tuple[int, int]] = []
        snap = threading.Timer(max(0.0, at - 0.01), lambda: queued.append(socket_queues(b.nginx.port)))
        snap.daemon = True
        snap.start()
        r1 = run_measured(cmd, base_env(tmp), timeout=b.args.run_timeout, kill_after=at)
        snap.cancel()
        served1, reqs1 = b.nginx.served_since(mark)
        left = durable_bytes(dest, fs, b.upstream)
        published, spans = left["published"], left["spans"]
        mark = b.nginx.mark()
        r2 = run_measured(cmd, base_env(tmp), timeout=b.args.run_timeout)
        served2, reqs2 = b.nginx.served_since(mark)
        bad = b.verify_tree(dest, fs, deep=True)
        lists_ok = all((dest / rel).read_bytes() == (b.upstream / rel).read_bytes()
                       for rel in {r.rsplit("/@v/", 1)[0] + "/@v/list" for r in fs.files}
                       if (dest / rel).exists()) if not bad else False
        leftovers = sorted(p.name for p in (dest / ".airsync" / "partial").glob("*")) \
            if (dest / ".airsync" / "partial").exists() else []
        m = re.search(r"resumed ([0-9.]+ \w+)", r2.stdout)
        refetched = served1 + served2 - fs.bytes
        rec = {
            "n": k, "kill_at": at, "killed": r1.killed, "rc1": r1.rc, "rc2": r2.rc,
            "served1": served1, "reqs1": reqs1, "published": published, "spans": spans,
            "served2": served2, "reqs2": reqs2, "wall2": r2.wall, "rss2_mb": r2.rss_kb * 1024 / MB,
            "rss1_mb": r1.rss_kb * 1024 / MB,
            "refetched": refetched, "pct": 100.0 * refetched / fs.bytes,
            "lost_at_kill": served1 - published - max(spans, 0),
            "on_disk": left["on_disk"], "partials_at_kill": left["partials"],
            "socket_queues": sum(queued[0]) if queued and queued[0][0] >= 0 else -1,
            "server_send_q": queued[0][0] if queued else -1, "client_recv_q": queued[0][1] if queued else -1,
            "never_written": served1 - published - left["on_disk"],
            "written_not_recorded": left["on_disk"] - max(spans, 0) - left.get("noted", 0),
            "worst_file_loss": left["worst_file_loss"],
            "resumed_text": m.group(1) if m else "0",
            "verified": not bad and lists_ok and r2.rc == 0, "problem": bad or ("" if lists_ok else "list differs"),
            "leftover_partials": len(leftovers), "leftover_names": leftovers[:5],
        }
        b.kills.append(rec)
        log(f"  kill {k}: SIGKILL at {at:.2f} s (killed={r1.killed}, rc {r1.rc}); run 1 served "
            f"{served1 / MB:.1f} MB, durable at kill {(published + max(spans, 0)) / MB:.1f} MB "
            f"(published {published / MB:.1f} + spans {spans / MB:.1f}); in {left['partials']} partial files "
            f"{left['on_disk'] / MB:.1f} MB already equal upstream, so {rec['never_written'] / MB:.1f} MB sent by "
            f"nginx never reached a file (kernel socket queues 10 ms before the kill: {rec['socket_queues'] / MB:.1f} MB, "
            f"of which nginx's send buffers {rec['server_send_q'] / MB:.1f} MB) "
            f"and {rec['written_not_recorded'] / MB:.1f} MB were written but not recorded; rerun {r2.wall:.2f} s rc {r2.rc} "
            f"served {served2 / MB:.1f} MB; re-fetched {refetched} B = {rec['pct']:.3f} %; "
            f"verified sha256: {rec['verified']} {rec['problem']}; leftover in .airsync/partial: {leftovers[:5]}")
        if r2.rc != 0:
            log("    rerun output: " + (r2.stdout + r2.stderr).strip()[-500:])
        timed_sync()
        retire(tmp, b.work)


# ---------------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_range(xs, f="{:.2f}"):
    if not xs:
        return "-"
    return f"{f.format(med(xs))} ({f.format(min(xs))}-{f.format(max(xs))})"


def source_digest() -> str:
    h = hashlib.sha256()
    src = REPO / "airsync"
    for f in sorted(src.rglob("*.py")):
        h.update(f.relative_to(src).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def fmt_pct(xs) -> str:
    return f"{med(xs):.0%} ({min(xs):.0%}-{max(xs):.0%})" if xs else "-"


def machine_info() -> dict:
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "none"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "airsync"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit, dirty = "unknown", ""
    from airsync import __version__
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "python": platform.python_version(),
        "aria2c": tool_version(["aria2c", "--version"]),
        "go": tool_version([shutil.which("go") or "/usr/bin/go", "version"]),
        "nginx": tool_version([shutil.which("nginx") or "/usr/sbin/nginx", "-v"]),
        "airsync": f"{__version__} (git {commit}{', with uncommitted changes in airsync/' if dirty else ''}; "
                   f"sha256 of airsync/**/*.py {source_digest()})",
    }


def summarize(b: Bench) -> tuple[list[str], dict]:
    scen_order = []
    for m in b.measures:
        if m.scenario not in scen_order:
            scen_order.append(m.scenario)
    rows = ["| scenario | tool | wall s, median (min-max) | MB/s | files/s | peak RSS MB, median (max) "
            "| CPU s | served MB | requests | connections | sync after s | small files done during big transfers |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = ["| scenario | A / B wall time, median of per-round ratios | per round | "
              "A / B peak RSS | A / B CPU |", "|---|---|---|---|---|"]
    result = {}
    for sc in scen_order:
        tools = []
        for m in b.measures:
            if m.scenario == sc and m.tool not in tools:
                tools.append(m.tool)
        by_tool = {t: [m for m in b.measures if m.scenario == sc and m.tool == t] for t in tools}
        for t in tools:
            ms = by_tool[t]
            walls = [m.wall for m in ms]
            rows.append(
                f"| {sc} | {t} | {fmt_range(walls)} | {med([m.mbps for m in ms]):.1f} | {med([m.fps for m in ms]):.0f} "
                f"| {med([m.rss_mb for m in ms]):.1f} ({max(m.rss_mb for m in ms):.1f}) | {med([m.cpu for m in ms]):.2f} "
                f"| {med([m.served for m in ms]) / MB:.1f} | {med([m.requests for m in ms]):.0f} "
                f"| {med([m.connections for m in ms]):.0f} | {med([m.sync_after for m in ms]):.2f} "
                f"| {fmt_pct([m.overlap for m in ms if m.overlap is not None])} |")
        if len(tools) >= 2:  # A is the tool each round ran first (airsync, or airsync --http2), B the other
            a_tool, other = tools[0], tools[1]
            pairs = list(zip(by_tool[a_tool], by_tool[other]))
            rs = [a.wall / o.wall for a, o in pairs]
            rr = [a.rss_mb / o.rss_mb for a, o in pairs]
            rc = [a.cpu / o.cpu for a, o in pairs if o.cpu > 0]
            result[sc] = {"ratio": med(rs), "a": a_tool, "other": other, "ratios": rs,
                          "a_wall": med([m.wall for m in by_tool[a_tool]]),
                          "cpu_ratio": med(rc), "rss_ratio": med(rr),
                          "protocols": {t: sorted({m.protocols for m in by_tool[t]}) for t in tools}}
            ratios.append(f"| {sc} | **{med(rs):.2f}** ({a_tool} / {other}) | {', '.join(f'{x:.2f}' for x in rs)} "
                          f"| {med(rr):.2f} | {med(rc):.2f} |")
    return rows + [""] + ratios, result


def targets(b: Bench, result: dict) -> list[tuple[str, str, str]]:
    out = []
    for sc, limit, what in (("mix", 1.0, "aria2c on the mix"), ("closure", 1.0, "go mod download on the closure"),
                            ("mix+delay", 0.5, "aria2c on the mix, 50 ms per request"),
                            ("closure+delay", 0.15, "go mod download on the closure, 50 ms per request")):
        if sc in result:
            r = result[sc]["ratio"]
            out.append((f"airsync <= {limit:g}x {what}", f"ratio {r:.2f}", "met" if r <= limit else "NOT met"))
    if "closure+service" in result:
        r = result["closure+service"]["ratio"]
        out.append(("a running service's closure job <= 1x go mod download (reported beside the CLI row: the "
                    "job's own time, without the interpreter's start-up)", f"ratio {r:.2f}",
                    "met" if r <= 1.0 else "NOT met"))
    if ratios := floor_ratios(b):
        a = med([m.cpu for m in b.measures if m.scenario == "mix" and m.tool == "airsync"])
        f = med(list(b.floor.values()))
        r = med(ratios)
        out.append(("airsync's CPU per GB on the mix within 1.5x of the floor (one write, h1, one chunking pass), "
                    "median of per-round ratios",
                    f"{a / (b.mix.bytes / 1e9):.2f} s/GB against {f / (b.mix.bytes / 1e9):.2f} s/GB: {r:.2f}x "
                    f"(per round {', '.join(f'{x:.2f}' for x in ratios)})",
                    "met" if r <= 1.5 else "NOT met"))
    if "mix+tls" in result:
        r = result["mix+tls"]
        protos = r["protocols"]
        valid = protos.get(H2_TOOLS[0]) == ["HTTP/2.0"] and protos.get(H2_TOOLS[1]) == ["HTTP/1.1"]
        status = ("INVALID: nginx logged other protocols than HTTP/2.0 for A and HTTP/1.1 for B (see notes)"
                  if not valid else "met: HTTP/2 may become the default" if r["ratio"] < 1
                  else "NOT met: the default stays --no-http2")
        out.append(("HTTP/2 faster than HTTP/1.1 over TLS on the mix (airsync --http2 / --no-http2, ratio < 1); "
                    "if not met, the default stays off", f"ratio {r['ratio']:.2f} (CPU {r['cpu_ratio']:.2f})",
                    status))
    rss = [m.rss_mb for m in b.measures if m.tool.startswith("airsync")]
    rss += [k["rss1_mb"] for k in b.kills] + [k["rss2_mb"] for k in b.kills]
    if rss:
        out.append(("airsync peak RSS < 150 MB (every run" + (f", the closure of {b.big_closure[0]} included)"
                                                           if b.big_closure else ")"),
                    f"max {max(rss):.1f} MB", "met" if max(rss) < 150 else "NOT met"))
    if b.kills:
        mx = max(k["pct"] for k in b.kills)
        out.append(("re-fetched < 1 % of the mix after kill -9 (max of runs)", f"max {mx:.3f} %",
                    "met" if mx < 1 else "NOT met"))
        own = max(k["worst_file_loss"] for k in b.kills)
        out.append(("airsync's own loss after kill -9 < 1 % of a large file (bytes in one file's partial file "
                    "that neither its recorded spans nor its write notes covered; worst file of every run)",
                    f"max {own:.2f} % of {b.args.big_size_mb} MiB", "met" if own < 1 else "NOT met"))
        ok = all(k["verified"] for k in b.kills)
        out.append(("final mirror equals upstream byte for byte after resume", "sha256 of every file",
                    "met" if ok else "NOT met"))
    return out


def markdown(b: Bench, info: dict, started: str, elapsed: float, table: list[str], tg) -> str:
    a = b.args
    L = ["## Mirror", "",
         f"Measured {started} by `scripts/bench_mirror.py {' '.join(a.argv)}`".rstrip() +
         f" (whole run {elapsed / 60:.1f} min; seed {a.seed}, data seed {a.seed_data}).", "",
         f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['mem']} RAM, Linux {info['kernel']}; "
         f"Python {info['python']}; {info['aria2c']}; {info['go']}; {info['nginx']}; airsync {info['airsync']}. "
         f"The machine was shared with other work during the run: {info['load']}.", "",
         "Method: one nginx (sendfile, keep-alive, 127.0.0.1 only) serves a generated GOPROXY tree from the page "
         "cache; every run writes into a fresh directory on the same disk, set aside (not deleted) until the "
         "benchmark ends: on this ext4 without a journal, files created soon after thousands were deleted cost "
         "a scan of the recently deleted inodes, which fell on whichever tool ran next. Once synced, a run's files "
         "are dropped from the page cache (`posix_fadvise(DONTNEED)`): on this VM, with some 4.5 GB of new page "
         "cache piled up, every tool's writes cost about twice the CPU from then on. Tools alternate A B A B for "
         f"{a.rounds} round(s). Wall time is Python's `time.monotonic()` around the child, peak RSS is `ru_maxrss` "
         "from `os.wait4` (each tool is spawned by a small launcher interpreter, because Linux folds the "
         f"forking process's RSS into the child's ru_maxrss; the floor this leaves, /bin/true's reported peak, "
         f"is {b.rss_floor_mb:.1f} MB), CPU is the child's user+system time. After every run the script calls `sync` "
         "(not timed; its duration is the last column: writeback that a tool left behind, e.g. because "
         "it does not fsync). Bytes and requests served come from nginx's access log (`$body_bytes_sent`). "
         "MB = 10^6 bytes. The `+delay` scenarios go through a small asyncio reverse proxy in the script "
         f"that adds {a.delay_ms:g} ms before every response's headers (keep-alive, Range/If-Range passed "
         f"through); it used {b.notes_proxy_cpu:.1f} s CPU over the delay scenarios."
         + (" The `mix+tls` scenario (`--only http2`) uses a second nginx on the same tree, same settings, "
            "with `listen 127.0.0.1:<port> ssl http2` (nginx's default TLS settings; ALPN offers h2 and http/1.1; "
            "sendfile does not apply to TLS) and a self-signed RSA 2048 certificate for IP 127.0.0.1 made with "
            "the openssl CLI at the start; airsync trusts it through `SSL_CERT_FILE`. A is `airsync --http2`, B "
            "`airsync --no-http2`; every request's protocol is taken from nginx's log and checked (A: HTTP/2.0, "
            "B: HTTP/1.1). `connections` counts distinct `$connection` values in nginx's log."
            if b.tls_nginx else ""), "",
         "### File sets", "",
         f"- **mix**: {a.big_count} big modules `example.com/big/bNN@v1.0.0` with {a.big_size_mb} MiB of "
         f"incompressible data (stored zip) + {a.small_count} small modules `example.com/small/mNNNN@v1.0.0` "
         f"(airsync.sample); .info, .mod and .zip of each: {b.mix.count} files, {b.mix.bytes / MB:.1f} MB.",
         f"- **closure**: an app (`write_main_module`) over a generated DAG of {a.closure_count} module paths "
         f"`example.com/dep/dNNN` (every 5th also at v1.1.0, every 4th a go 1.16 module, 2-48 KiB of source each); go.mod/go.sum written once "
         f"by `go mod tidy` against nginx: {b.closure_zips} modules with zips + "
         f"{b.closure_gomod_only} /go.mod-only lines; airsync fetches {b.closure.count} files "
         f"({b.closure.bytes / MB:.2f} MB).", "",
         "### Commands", "", "```"]
    for k, v in b.commands.items():
        L.append(f"# {k}")
        L.append(v)
    L += ["```", "", "### Results", ""]
    L += table
    if b.floor:
        gb = b.mix.bytes / 1e9
        cpu = {t: med([m.cpu for m in b.measures if m.scenario == "mix" and m.tool == t]) for t in ("airsync", "aria2c")}
        L += ["", f"CPU per GB on the mix (median of {len(b.floor)} round(s)): airsync {cpu['airsync'] / gb:.2f} s/GB, "
              f"aria2c {cpu['aria2c'] / gb:.2f} s/GB, the floor {med(list(b.floor.values())) / gb:.2f} s/GB "
              f"({fmt_range(list(b.floor.values()))} s per round; every run: "
              f"{', '.join('/'.join(f'{x:.2f}' for x in v) for v in b.floors.values())} s); airsync over the floor "
              f"of its own round, median {med(floor_ratios(b)):.2f}x. The floor is `scripts/cpu_floor.py`, run in "
              "each mix round before and after the two tools (the lesser counts: on this VM, writing into memory "
              "the host has just taken back costs a run up to twice the system time), on the same files from the same "
              "page cache: each file copied once in 1 MiB pieces (a single write of 2 MiB or more costs this "
              "kernel 12x the CPU), the h1 of every zip (each entry inflated and SHA-256'd) and .mod, "
              "and one FastCDC pass with airsync's chunk sizes hashing each chunk with xxh3; no network, no "
              "fsync, one thread: the work a verifying, delta-ready mirror cannot skip."]
    if b.big_closure:
        n, zips, files, m = b.big_closure
        L += ["", f"closure-{n}: a generated graph of {n} module paths (as the closure, go.sum from "
              f"`airsync.sample.app_gosum`), {zips} modules with zips, {files} files, from a second nginx; "
              f"airsync once: peak RSS {m.rss_mb:.1f} MB, {m.wall:.2f} s, CPU {m.cpu:.2f} s"
              + (f" ({m.note})" if m.note else "") + "."]
    if b.service:
        L += ["", "closure+service: the closure as a job of a running `airsync run` (a fresh service and mirror "
              "each round, which first ran one small module's job: a service in use has imported its code). "
              "Wall is the job's time in the service's record, from its start to its end: reading the request "
              "file and the mirror job. From the rename of the request file to the "
              f"job's end: {fmt_range([s['from_drop'] for s in b.service], '{:.3f}')} s; the difference is the "
              "requests directory's watch (file events grouped for 50 ms) and settle tick (50 ms at debounce = 0; "
              "the default debounce of 1 s holds a file that long). CPU is the service process's from the rename "
              "until the request file is in `.done/` (/proc, 10 ms ticks; the script waits by `stat`, never "
              "through the control API, which shares the job's event loop): the job and the idle ticks "
              "before it; peak RSS is its VmHWM."]
    if b.kills:
        L += ["", "### kill -9 and resume (mix)", "",
              "| # | SIGKILL at s | served before kill MB (requests) | durable at kill MB (published + recorded spans) "
              "| in partial files at kill MB | sent but never written MB | kernel socket queues 10 ms before the kill MB "
              "(nginx's Send-Q + airsync's Recv-Q) "
              "| written, not recorded MB "
              "| served by rerun MB | re-fetched bytes | % of total | rerun s | sha256 verified | left in .airsync/partial |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for k in b.kills:
            L.append(f"| {k['n']} | {k['kill_at']:.2f}{'' if k['killed'] else ' (finished first)'} "
                     f"| {k['served1'] / MB:.2f} ({k['reqs1']}) | {(k['published'] + max(k['spans'], 0)) / MB:.1f} "
                     f"({k['published'] / MB:.1f} + {k['spans'] / MB:.1f}) | {k['on_disk'] / MB:.1f} "
                     f"| {k['never_written'] / MB:.1f} | {k['socket_queues'] / MB:.1f} ({k['server_send_q'] / MB:.1f} + "
                     f"{k['client_recv_q'] / MB:.1f}) "
                     f"| {k['written_not_recorded'] / MB:.1f} | {k['served2'] / MB:.1f} "
                     f"| {k['refetched']} | {k['pct']:.3f} | {k['wall2']:.2f} | {'yes' if k['verified'] else 'NO ' + k['problem']} "
                     f"| {k['leftover_partials']} |")
        L.append(f"\nMax re-fetched: {max(k['refetched'] for k in b.kills)} bytes "
                 f"({max(k['pct'] for k in b.kills):.3f} % of {b.mix.bytes} bytes). \"Sent but never written\" "
                 "is what nginx counted as sent (sendfile returned) minus what was published or already in a "
                 "partial file at the kill; it matches the bytes queued in the kernel's TCP buffers of the "
                 "loopback connections, which no client checkpoint can keep: most of them wait in nginx's send "
                 "buffers (autotuned up to tcp_wmem's maximum per connection), beyond any setting of the client's. \"Written, not recorded\" is "
                 "airsync's own loss: bytes in its partial files that neither a recorded (fsynced) span nor a "
                 "write note (checked by hash on the rerun) covered.")
    L += ["", "### Targets", "", "| target | result | |", "|---|---|---|"]
    L += [f"| {t} | {r} | {s} |" for t, r, s in tg]
    if b.notes:
        L += ["", "### Notes", ""] + [f"- {n}" for n in b.notes]
    return "\n".join(L) + "\n"


def write_section(path: Path, section: str, heading: str = "## Mirror") -> None:
    """Replace (or append) the ``heading`` section of BENCHMARKS.md, leaving the others alone, and say so."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(new)
    os.replace(tmp, path)
    log(f"wrote the {heading} section of {path}")


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small file set and 1 round (2 x 32 MiB + 60 small, closure of 30, 1 kill): ~1-2 min")
    ap.add_argument("--big-count", type=int, help="big modules in the mix (default 3)")
    ap.add_argument("--big-size-mb", type=int, help="MiB of data per big module (default 128)")
    ap.add_argument("--small-count", type=int, help="small module versions in the mix (default 300)")
    ap.add_argument("--closure-count", type=int, help="module paths in the closure graph (default 80)")
    ap.add_argument("--rounds", type=int, help="A B rounds per scenario (default 3)")
    ap.add_argument("--kills", type=int, help="kill -9 repetitions (default 3)")
    ap.add_argument("--delay-ms", type=float, default=50.0, help="added latency per request (default 50)")
    ap.add_argument("--seed", type=int, help="seed for the kill moments (default: from the clock, printed)")
    ap.add_argument("--seed-data", type=int, default=1, help="seed of the generated modules")
    ap.add_argument("--only", default="mix,closure,service,delay,http2,bigclosure,kill",
                    help="comma list of scenarios: mix (and the CPU floor), closure, service (the closure as a "
                         "running service's job), delay, http2 (mix+tls), bigclosure (peak RSS on a "
                         "--big-closure closure), kill (default all)")
    ap.add_argument("--big-closure", type=int, help="module paths of the bigclosure scenario (default 1000)")
    ap.add_argument("--airsync-extra", default="", help="extra airsync mirror options (for experiments)")
    ap.add_argument("--quiet-threshold", type=float, default=0.4,
                    help="before each run wait until at most this fraction of the CPUs is busy (default 0.4)")
    ap.add_argument("--quiet-budget", type=float, default=120.0,
                    help="give up waiting for a quiet machine after this many seconds in total (default 120)")
    ap.add_argument("--run-timeout", type=float, default=300.0, help="seconds before any one run is killed")
    add_output_args(ap)
    ap.add_argument("--json", type=Path, help="also write raw measurements as JSON here")
    ap.add_argument("--serve-delay-proxy", nargs=2, metavar=("UPSTREAM_PORT", "DELAY_MS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.argv = list(argv)
    q = args.quick
    defaults = dict(big_count=(2, 3), big_size_mb=(32, 128), small_count=(60, 300), closure_count=(30, 80),
                    rounds=(1, 3), kills=(1, 3), big_closure=(200, 1000))
    for k, (quick, full) in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, quick if q else full)
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.only - {"mix", "closure", "service", "delay", "http2", "bigclosure", "kill"}
    if unknown:
        ap.error(f"unknown scenario(s) in --only: {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.serve_delay_proxy:
        serve_delay_proxy(int(args.serve_delay_proxy[0]), float(args.serve_delay_proxy[1]))
        return 0
    for tool in ("aria2c", "go"):
        if not shutil.which(tool):
            print(f"bench_mirror: {tool} not found on PATH", file=sys.stderr)
            return 2
    nginx_bin = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx_bin:
        print("bench_mirror: nginx not found", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    digest_start = source_digest()
    started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    log(f"bench_mirror {' '.join(argv)}: seed {args.seed} (kill moments), data seed {args.seed_data}")
    work = Path(tempfile.mkdtemp(prefix="airsync-bench-", dir=args.workdir))
    os.chmod(work, 0o755)
    nginx = None
    tls_nginx = None
    proxy = None
    try:
        cert = key = None
        if "http2" in args.only:  # first, so that a missing openssl fails the run at once
            cert, key = make_cert(work / "tls")
            log(f"self-signed certificate for 127.0.0.1: {cert}")
        upstream = work / "upstream"
        log(f"building upstream in {upstream}: {args.big_count} x {args.big_size_mb} MiB + "
            f"{args.small_count} small + closure graph of {args.closure_count}")
        tb = time.monotonic()
        big_keys, small_keys, dep_mods, app_reqs = build_upstream(upstream, args)
        log(f"  built in {time.monotonic() - tb:.1f} s")
        nginx = Nginx(upstream, work / "nginx", nginx_bin)
        nginx.start()
        log(f"nginx on {nginx.url}")

        # The closure: go mod tidy once, against nginx.
        from airsync.sample import app_gosum, write_main_module
        app_dir = work / "app"
        write_main_module(app_dir, app_reqs)
        gtmp = work / "tidy"
        gtmp.mkdir()
        r = run_measured([shutil.which("go"), "mod", "tidy"], go_env(gtmp, nginx.url), cwd=app_dir, timeout=300)
        if r.rc != 0:
            raise RuntimeError(f"go mod tidy failed: {r.stderr[-2000:]}")
        timed_sync()
        retire(gtmp, work)
        gosum = (app_dir / "go.sum").read_text()
        expect = app_gosum(dep_mods, app_reqs)
        zip_keys, mod_only = [], []
        for line in gosum.splitlines():
            p, v, _ = line.split()
            (mod_only if v.endswith("/go.mod") else zip_keys).append((p, v.removesuffix("/go.mod")))
        zip_set = set(zip_keys)
        mod_only = sorted(set(mod_only) - zip_set)
        closure_files = proxy_files(sorted(zip_set)) + proxy_files(mod_only, ("info", "mod"))
        log(f"closure: go mod tidy took {r.wall:.2f} s; go.sum has {len(zip_set)} zip lines and "
            f"{len(mod_only)} go.mod-only versions; matches airsync.sample.app_gosum: {gosum == expect}")

        modules_file = work / "modules.txt"
        modules_file.write_text("".join(f"{p}@{v}\n" for p, v in big_keys + small_keys))
        mix_rel = proxy_files(big_keys + small_keys)
        urls_file = work / "urls.template.txt"
        urls_file.write_text("".join(f"@UPSTREAM@/{rel}\n  out={rel}\n" for rel in mix_rel))
        log("hashing the file sets")
        mix = describe_files(upstream, mix_rel, "mix")
        closure = describe_files(upstream, closure_files, "closure")
        log(f"mix: {mix.count} files, {mix.bytes / MB:.1f} MB; closure: {closure.count} files, "
            f"{closure.bytes / MB:.2f} MB")

        b = Bench(args, work, upstream, nginx, mix, closure, len(zip_set), app_dir, modules_file, urls_file)
        b.closure_gomod_only = len(mod_only)
        if cert:
            tls_nginx = Nginx(upstream, work / "nginx-tls", nginx_bin, tls=(cert, key))
            tls_nginx.start()
            log(f"nginx (TLS, HTTP/2 enabled) on {tls_nginx.url}")
            b.tls_nginx, b.cert = tls_nginx, cert
        b.quiet = QuietWaiter(args.quiet_threshold, args.quiet_budget)
        load_start = os.getloadavg()
        true = shutil.which("true") or "/bin/true"
        b.rss_floor_mb = max(run_measured([true], base_env(work)).rss_kb for _ in range(3)) * 1024 / MB
        log(f"RSS floor of the launcher (peak RSS reported for /bin/true): {b.rss_floor_mb:.1f} MB")
        py = "python"
        extra = (" " + args.airsync_extra) if args.airsync_extra else ""
        b.commands = {
            "mix, airsync": f"{py} -m airsync mirror --modules-file modules.txt --to $FRESH --upstream $UPSTREAM "
                            f"--no-progress --sumdb off{extra}",
            "mix, aria2c (urls.txt: one URL per file, each followed by '  out=<relative path>')":
                "aria2c -j16 -x4 -s4 -i urls.txt -d $FRESH --allow-overwrite=true --auto-file-renaming=false "
                "--console-log-level=warn --summary-interval=0 -q",
            "closure, airsync": f"{py} -m airsync mirror --go-sum app/go.sum --go-mod app/go.mod --to $FRESH "
                                f"--upstream $UPSTREAM --no-progress --sumdb off{extra}",
            "closure, go (in a fresh copy of app/, fresh GOPATH/GOMODCACHE/GOCACHE/HOME each run)":
                "env -i PATH=... GOPROXY=$UPSTREAM GOSUMDB=off GOTOOLCHAIN=local GOFLAGS=-mod=mod GOENV=off "
                "GO111MODULE=on CGO_ENABLED=0 GOPATH=$T/gopath GOMODCACHE=$T/modcache GOCACHE=$T/gocache "
                "go mod download",
            "the closure's go.mod/go.sum, made once (same env)": "go mod tidy",
            "closure+service, airsync (a fresh service and mirror each round; debounce = 0, refresh_interval = 0, "
            "sumdb = off in its config; --airsync-extra does not apply)":
                f"{py} -m airsync run --config airsync.toml; a request file warmup.txt (one small module of the "
                "mix) and its job; then closure.sum (app/go.sum) renamed into the requests directory; once it is "
                "in .done/, the job's times from its record (GET /v1/status on the control socket)",
            "mix+tls (http2), A": f"env SSL_CERT_FILE=cert.pem {py} -m airsync mirror --modules-file modules.txt "
                                  f"--to $FRESH --upstream https://127.0.0.1:<tls nginx port> --no-progress --http2{extra}",
            "mix+tls (http2), B": "the same with --no-http2",
            "mix+tls (http2), the certificate, made once": "openssl " + " ".join(OPENSSL_REQ),
            "kill -9": "the mix airsync command; SIGKILL after uniform(0.2, 0.8) x median mix airsync wall time; "
                       "then the same command again to completion",
            "$UPSTREAM": "http://127.0.0.1:<nginx port>  (+delay: http://127.0.0.1:<proxy port>, proxy -> nginx)",
        }
        if "http2" not in args.only:
            for k in [k for k in b.commands if k.startswith("mix+tls")]:
                del b.commands[k]

        # Warm the page cache so the first run does not pay for reading the upstream from disk, and
        # write the freshly generated upstream back so its writeback does not slow the first runs.
        for rel in list(mix.files) + list(closure.files):
            with open(upstream / rel, "rb") as f:
                while f.read(1 << 20):
                    pass
        log(f"sync after building: {timed_sync():.2f} s")

        if "mix" in args.only:
            scenario_mix(b, "mix", nginx.url, floor=True)
        if "closure" in args.only:
            scenario_closure(b, "closure", nginx.url)
        if "service" in args.only:
            scenario_service_closure(b, "closure+service", nginx.url)
        if "delay" in args.only:
            proxy = DelayProxy(nginx.port, args.delay_ms)
            proxy.start()
            log(f"delay proxy on {proxy.url} (+{args.delay_ms:g} ms per response)")
            scenario_mix(b, "mix+delay", proxy.url)
            scenario_closure(b, "closure+delay", proxy.url)
            proxy.stop()
            b.notes_proxy_cpu = proxy.cpu
            proxy = None
        if "http2" in args.only:
            scenario_http2(b, "mix+tls")
            tls_nginx.stop()
            tls_nginx = None
        if "bigclosure" in args.only and args.big_closure:
            scenario_big_closure(b, args.big_closure)
        if "kill" in args.only:
            walls = [m.wall for m in b.measures if m.scenario == "mix" and m.tool == "airsync"]
            if not walls:
                log("measuring one airsync mix run for the kill moments")
                walls = [run_airsync(b, "mix-ref", 1, mix, nginx.url,
                                     ["--modules-file", str(modules_file)], False).wall]
            scenario_kill(b, med(walls), args.seed)

        for m in b.measures:
            if m.note:
                b.notes.append(f"{m.scenario} {m.tool} round {m.round}: {m.note}")
        table, result = summarize(b)
        tg = targets(b, result)
        info = machine_info()
        elapsed = time.monotonic() - t0
        if source_digest() != digest_start:
            b.notes.append(f"airsync's sources changed during this run (sha256 of airsync/**/*.py {digest_start} at "
                           f"the start, {source_digest()} at the end): the runs may mix two versions.")
        info["load"] = (f"load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
                        f"CPU busy just before each run (0.5 s sample; the script waits up to "
                        f"{args.quiet_budget:g} s in total for <= {args.quiet_threshold:.0%} busy): median "
                        f"{med(b.quiet.seen):.0%}, max {max(b.quiet.seen, default=0):.0%}; waited {b.quiet.waited:.0f} s")
        section = markdown(b, info, started, elapsed, table, tg)
        print()
        print(section)
        if args.json:
            args.json.write_text(json.dumps({
                "measures": [dict(vars(m), mbps=m.mbps, fps=m.fps) for m in b.measures],
                "kills": b.kills, "machine": info, "args": args.argv}, indent=1, default=str))
        if not args.no_write:
            write_section(args.output, section)
        return 0
    finally:
        if proxy:
            proxy.stop()
        if tls_nginx:
            tls_nginx.stop()
        if nginx:
            nginx.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
