"""The service with its mirror in a store: a request file becomes a mirror job into the store."""

from __future__ import annotations

import tomli_w

from airsync import config, sample
from tests.helpers.daemonkit import drop_request, write_config
from tests.service.test_daemon import run_daemon, until


def test_service_mirrors_into_a_store(s3, tmp_path):
    upstream = tmp_path / "up"
    sample.build_proxy_tree(upstream, sample.demo_modules())
    path = write_config(tmp_path, upstream.as_uri())
    conf_data = __import__("tomllib").loads(path.read_text())
    conf_data["mirror"]["to"] = "s3://mirror/go"
    conf_data["store"] = {"state": str(tmp_path / "store-state")}
    path.write_text(tomli_w.dumps(conf_data))
    conf = config.load_daemon(path)
    assert str(conf.store) == "s3://mirror/go" and conf.mirror_dir == tmp_path / "store-state" / "tree"

    async def body(d):
        drop_request(conf.requests_dir, "go.sum", sample.gosum_lines(sample.demo_modules()))
        await until(lambda: any(j.state.value in ("done", "failed") for j in d.queue.jobs.values()))

    d = run_daemon(conf, body)
    (job,) = d.queue.jobs.values()
    assert job.error is None and job.result["fetched"] == 24, job.result
    assert job.target == "s3://mirror/go"
    assert (s3.root / "mirror" / "go" / "example.com/lib/strs/@v/list").exists()
