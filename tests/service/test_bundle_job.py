"""The service writes bundles: ``airsync bundle-now`` (and ``daemon.bundle_interval``) queue a bundle
job; status shows it like a USB job; the bundle appears complete in bundle_dir/airsync-<id>/ and imports."""

from __future__ import annotations

from airsync import sample
from airsync.carry import manifest
from tests.helpers.daemonkit import Service, wait_for, write_config


def test_bundle_now_writes_a_bundle_status_shows_it(tmp_path):
    mirror = tmp_path / "mirror"
    sample.build_proxy_tree(mirror, sample.demo_modules())
    manifest.keygen(tmp_path / "k")
    bundles = tmp_path / "bundles"
    conf = write_config(tmp_path, "http://127.0.0.1:9/", bundle_dir=str(bundles), bundle_max_size="16k",
                        refresh_interval=0)
    svc = Service(tmp_path, conf)
    try:
        r = svc.airsync("bundle-now", "--socket", str(svc.socket))
        assert r.returncode == 0 and "bundle to" in r.stdout, r.stdout + r.stderr

        def done():
            r = svc.airsync("status", "--json", "--socket", str(svc.socket))
            import json

            jobs = [j for j in json.loads(r.stdout)["jobs"] if j["kind"] == "bundle"]
            return jobs and jobs[0]["state"] in ("done", "failed") and jobs[0]
        job = wait_for(done, 60, "the bundle job")
        assert job["state"] == "done", job
        assert job["result"]["parts"] >= 2
        text = svc.airsync("status", "--socket", str(svc.socket)).stdout
        assert "bundle" in text and "part(s)" in text, text
        (out,) = [p for p in bundles.iterdir() if not p.name.startswith(".")]
        assert out.name.startswith("airsync-") and not (bundles / ".pending").exists()
        r = svc.airsync("import", str(out), "--into", str(tmp_path / "inside"), "--key", str(tmp_path / "k.pub"))
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        svc.stop()


def test_bundle_now_without_a_bundle_dir_is_refused(tmp_path):
    manifest.keygen(tmp_path / "k")
    svc = Service(tmp_path, write_config(tmp_path, "http://127.0.0.1:9/", refresh_interval=0))
    try:
        r = svc.airsync("bundle-now", "--socket", str(svc.socket))
        assert r.returncode == 1 and "no daemon.bundle_dir" in r.stderr, r.stdout + r.stderr
    finally:
        svc.stop()
