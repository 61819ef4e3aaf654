#!/usr/bin/env python3
"""The store checks against SeaweedFS ``weed mini`` (run by scripts/store-compat, which builds weed).

1. Conditional writes through airsync's client: a create-only put of an existing key is refused, a
   compare-and-swap with a stale ETag is refused and with the current one accepted.
2. 32 threads add one version each to one ``@v/list`` by compare-and-swap: all 32 are listed.
3. ``airsync mirror`` of the demo modules (with their checksum database) into ``s3://`` on weed and
   into a directory: every object equals the directory's file; a rerun fetches nothing.
4. Two ``airsync serve s3://`` replicas: the go command builds the demo app through each, offline.
Prints one line per check and exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airsync import sample  # noqa: E402
from tests.helpers.faultserver import FaultServer  # noqa: E402
from tests.helpers.gotool import build_demo_app  # noqa: E402
from tests.helpers.nginx import free_port  # noqa: E402
from tests.helpers.serving import airsync_serve  # noqa: E402

KEY, SECRET = "compat-key", "compat-secret-0123456789"


def say(msg: str) -> None:
    print(f"store-compat: {msg}", flush=True)


def start_weed(weed: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, S3_BUCKET="mirror")
    cmd = [weed, "mini", f"-dir={tmp / 'weed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
           f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
           f"-s3.port={ports['s3']}", "-webdav=false", "-admin.ui=false"]
    (tmp / "weed").mkdir()
    log = open(tmp / "weed.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{ports['s3']}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weed", required=True)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="store-compat-"))
    proc, endpoint = start_weed(args.weed, tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, XDG_STATE_HOME=str(tmp / "state"))
    os.environ.update(env)
    try:
        from airsync.objstore.client import Bucket, Conflict, ObjectStoreError
        from airsync.objstore.mirror import ObjectMirrorStore, target

        t = target("s3://mirror/compat")
        deadline = time.monotonic() + 120
        while True:  # weed takes a few seconds, and creates the bucket once it is up
            try:
                Bucket(t.url, t.settings, retries=0).check()
                break
            except ObjectStoreError as e:
                if time.monotonic() > deadline or proc.poll() is not None:
                    say(f"FAILED: weed mini did not come up: {e} (log: {tmp / 'weed.log'})")
                    return 1
                time.sleep(1)
        say(f"weed mini answers at {endpoint}")

        b = Bucket(t.url, t.settings)
        b.put_create("compat/x", b"1")
        try:
            b.put_create("compat/x", b"2")
            say("FAILED: a create-only put overwrote an existing key")
            return 1
        except Conflict:
            pass
        etag = b.put("compat/y", b"a")
        b.put_swap("compat/y", b"b", etag)
        try:
            b.put_swap("compat/y", b"c", etag)
            say("FAILED: a compare-and-swap with a stale ETag was accepted")
            return 1
        except Conflict:
            pass
        say("ok: create-only and compare-and-swap puts")

        store = ObjectMirrorStore(t)
        try:
            versions = [f"v1.{i}.0" for i in range(32)]
            threads = [threading.Thread(target=store.add_to_list, args=("example.com/m/@v/list", v)) for v in versions]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            listed = store.read_bytes("example.com/m/@v/list").decode().split()
        finally:
            store.close()
        if sorted(listed) != sorted(versions):
            say(f"FAILED: 32 racing list updates left {len(listed)} versions")
            return 1
        say("ok: 32 racing compare-and-swap list updates, none lost")

        modules = sample.demo_modules()
        up = tmp / "up"
        sample.build_proxy_tree(up, modules)
        db = sample.build_sumdb(up, modules, padding=300)
        with FaultServer(up) as srv:
            base = [sys.executable, "-m", "airsync", "mirror", *[f"--module={m.path}@{m.version}" for m in modules],
                    "--upstream", srv.url, "--sumdb", db.vkey, "--no-progress"]
            for dest in (str(tmp / "dir"), "s3://mirror/go", "s3://mirror/go"):
                r = subprocess.run([*base, "--to", dest], env=env, capture_output=True, text=True, timeout=300)
                if r.returncode != 0:
                    say(f"FAILED: airsync mirror --to {dest}: {r.stderr.strip().splitlines()[-1:]}")
                    return 1
            if "fetched 0 files" not in r.stdout:
                say(f"FAILED: a rerun into the store fetched again: {r.stdout.strip()}")
                return 1
        files = {p.relative_to(tmp / "dir").as_posix(): p.read_bytes() for p in (tmp / "dir").rglob("*")
                 if p.is_file() and ".airsync" not in p.parts}
        got = ObjectMirrorStore(target("s3://mirror/go"), shared=True)
        try:
            keys = got.published()
            diff = [rel for rel, data in files.items() if rel not in keys or got.read_bytes(rel) != data]
            extra = sorted(set(keys) - set(files))
        finally:
            got.close()
        if diff or extra:
            say(f"FAILED: the store differs from the directory mirror: {diff[:3]} {extra[:3]}")
            return 1
        say(f"ok: mirror into the store = the directory mirror, {len(files)} files byte for byte; a rerun fetched nothing")

        with airsync_serve("s3://mirror/go") as a, airsync_serve("s3://mirror/go") as b2:
            for name, url in (("a", a), ("b", b2)):
                app = build_demo_app(tmp / f"go-{name}", url, db.vkey)
                if (app / "go.sum").read_text() != sample.app_gosum(modules, sample.demo_app_requires()):
                    say("FAILED: the go command's go.sum differs")
                    return 1
        say("ok: the go command built offline through two airsync serve replicas of the store")
        say("all checks passed")
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
