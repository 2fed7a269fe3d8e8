"""A real Prometheus 2.x (Debian) runs the exported config against the reference server: it scrapes the
vLLM-named metrics and loads the generated alerting rules."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from monitors.cli import main
from tests.support.processes import free_port, stop, wait_http, wait_until
from tollgate.contracts.server_metrics import VLLM_RUNNING, VLLM_TTFT

PROMETHEUS = shutil.which("prometheus")


@pytest.mark.prometheus
@pytest.mark.timeout(120)
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian package 'prometheus')")
def test_prometheus_scrapes_reference_server_with_exported_config(tmp_path, reference_server):
    am_port, port = free_port(), free_port()  # nothing listens on am_port: no alert is expected to fire
    args = ["export-prometheus", "--out", str(tmp_path), "--target", reference_server.url, "--interval", "1s"]
    assert main([*args, "--alertmanager", f"127.0.0.1:{am_port}"]) == 0
    cmd = [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
           f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30, proc=proc)

        def query(q: str) -> list:
            return httpx.get(api + "/query", params={"query": q}, timeout=5).json()["data"]["result"]

        up = wait_until(lambda: query('up{job="tollgate"} == 1'), 30, what="Prometheus scraping the server")
        assert up[0]["metric"]["instance"] == reference_server.url.split("//")[1]
        running = query(VLLM_RUNNING)
        assert running and running[0]["metric"]["model_name"]
        assert query(f"{VLLM_TTFT}_bucket")
        groups = httpx.get(api + "/rules", timeout=5).json()["data"]["groups"]
        rules = {r["name"]: r for r in groups[0]["rules"]}
        assert len(rules) == 10 and all(r["health"] != "err" for r in rules.values())
    finally:
        stop(proc)
