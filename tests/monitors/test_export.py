"""`tollgate monitor export-prometheus`: configs accepted by promtool/amtool, and the generated PromQL
fires the same alerts in a `promtool test rules` unit test."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from monitors.cli import main
from tollgate.contracts import server_metrics as m
from tollgate.contracts.figures import FIGURES

PROMTOOL, AMTOOL = shutil.which("promtool"), shutil.which("amtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')"
)
needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed (Debian 'prometheus-alertmanager')"
)


@pytest.fixture
def exported(tmp_path):
    targets = [
        "--target",
        "127.0.0.1:8000",
        "--target",
        "http://127.0.0.1:9400/metrics",
        "--target",
        "https://h/x",
    ]
    assert (
        main(["export-prometheus", "--out", str(tmp_path), *targets, "--dashboard-url", "http://dash"]) == 0
    )
    return tmp_path


def _check(*cmd: str, cwd) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@needs_promtool
def test_promtool_accepts_config_and_rules(exported):
    assert "SUCCESS" in _check(PROMTOOL, "check", "config", "prometheus.yml", cwd=exported)
    rules = 10 + len(FIGURES)  # the default alert rules and one tollgate:<figure> recording rule each
    assert f"SUCCESS: {rules} rules found" in _check(PROMTOOL, "check", "rules", "rules.yml", cwd=exported)
    jobs = yaml.safe_load((exported / "prometheus.yml").read_text())["scrape_configs"]
    assert [(j["scheme"], j["metrics_path"], j["static_configs"][0]["targets"]) for j in jobs] == [
        ("http", "/metrics", ["127.0.0.1:8000", "127.0.0.1:9400"]),
        ("https", "/x", ["h"]),  # an explicit path is kept
    ]


@needs_amtool
def test_amtool_accepts_alertmanager_config_without_inlined_secrets(exported):
    assert "SUCCESS" in _check(AMTOOL, "check-config", "alertmanager.yml", cwd=exported)
    slack = yaml.safe_load((exported / "alertmanager.yml").read_text())["receivers"][0]["slack_configs"][0]
    assert slack["api_url_file"] and "api_url" not in slack and slack["send_resolved"] is True


def _series(name: str, values: str, **labels: str) -> dict:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


@needs_promtool
def test_generated_rules_fire_in_promtool_unit_test(exported):
    ttft = f"{m.VLLM_TTFT}_bucket"
    inst = {"job": "tollgate", "instance": "a:8000"}
    series = [
        _series(ttft, "0+0x20", le="1", **inst),  # every request slower than 1 s ...
        _series(ttft, "0+10x20", le="5", **inst),  # ... and under 5 s: p95 = 1 + 4 * 0.95
        _series(ttft, "0+10x20", le="+Inf", **inst),
        _series("up", "1 1 0x10", job="tollgate", instance="b:8000"),
        _series(m.DCGM_FB_USED, "79000x20", gpu="0", job="tollgate", instance="c:9400"),
        _series(m.DCGM_FB_FREE, "1000x20", gpu="0", job="tollgate", instance="c:9400"),
        # the reference server: 10 finished and 30 refused (429) requests a minute
        _series(m.VLLM_REQUEST_SUCCESS, "0+10x20", finished_reason="stop", job="tollgate", instance="d:8000"),
        _series(m.VLLM_REQUEST_SUCCESS, "0+0x20", finished_reason="abort", job="tollgate", instance="d:8000"),
        _series(m.REQUESTS_REJECTED, "0+30x20", reason="queue_full", job="tollgate", instance="d:8000"),
        # vLLM: 7 answered 2xx, 3 answered 503 by admission control; no abort series yet
        _series(m.HTTP_REQUESTS, "0+7x20", handler="/v1/completions", status="2xx", instance="e:8000"),
        _series(m.HTTP_REQUESTS, "0+3x20", handler="/v1/completions", status="5xx", instance="e:8000"),
        _series(m.HTTP_REQUESTS, "0+50x20", handler="/v1/models", status="2xx", instance="e:8000"),
        _series(m.VLLM_REQUEST_SUCCESS, "0+7x20", finished_reason="stop", instance="e:8000"),
        _series(m.VLLM_ADMISSION_REJECTIONS, "0+3x20", reason="max_num_queued_reqs", instance="e:8000"),
    ]
    alerts = [
        {"eval_time": "10m", "alertname": "TTFTP95OverSLO", "exp_alerts": [{
            "exp_labels": {"severity": "warning", "instance": "a:8000"},
            "exp_annotations": {
                "summary": "TTFT p95 is 4.8s on a:8000 (SLO 2s)",
                "description": "Time to first token p95 over 5 minutes is above the SLO: prefill is queueing or too slow.",
                "runbook_url": "https://github.com/tollgate/tollgate/blob/main/docs/guides/monitoring.md",
            }}]},
        {"eval_time": "2m", "alertname": "TargetDown", "exp_alerts": []},  # down since 2m, for 1m
        {"eval_time": "3m", "alertname": "TargetDown", "exp_alerts": [{
            "exp_labels": {"severity": "critical", "instance": "b:8000", "job": "tollgate"},
            "exp_annotations": {
                "summary": "b:8000 is down (scrape failed)",
                "description": "The metrics endpoint did not answer; the server may be dead or unreachable.",
            }}]},
        {"eval_time": "10m", "alertname": "GPUMemoryNearFull", "exp_alerts": [{
            "exp_labels": {"severity": "warning", "instance": "c:9400", "gpu": "0"},
            "exp_annotations": {
                "summary": "GPU 0 memory 0.9875 full on c:9400",
                "description": "GPU framebuffer nearly full: the next allocation may fail (OOM).",
            }}]},
        {"eval_time": "10m", "alertname": "HighErrorRate", "exp_alerts": [_fails("d:8000", "0.75"), _fails("e:8000", "0.3")]},
        {"eval_time": "10m", "alertname": "HighRejectionRate", "exp_alerts": [_refused("d:8000", "0.75"), _refused("e:8000", "0.3")]},
        {"eval_time": "1m", "alertname": "HighErrorRate", "exp_alerts": []},  # `for: 2m` not yet elapsed
    ]  # fmt: skip
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    }
    (exported / "rules_test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    assert "SUCCESS" in _check(PROMTOOL, "test", "rules", "rules_test.yml", cwd=exported)


ERRORS = "More than 5% of requests were refused (429/503/4xx), answered 5xx, or aborted/failed in the engine over 5 minutes."
REFUSALS = "More than 10% of requests were refused before reaching the engine (queue full, not ready): the server is over capacity."


def _expected(severity: str, instance: str, summary: str, description: str) -> dict:
    labels = {"severity": severity, "instance": instance}
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}


def _fails(instance: str, value: str) -> dict:
    return _expected("critical", instance, f"{value} of requests fail on {instance} (threshold 0.05)", ERRORS)


def _refused(instance: str, value: str) -> dict:
    summary = f"{value} of requests refused on {instance} (threshold 0.1)"
    return _expected("warning", instance, summary, REFUSALS)


def test_bad_rules_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - name: X\n    kind: gauge\n    op: '>'\n")
    assert main(["export-prometheus", "--out", str(tmp_path / "o"), "--rules", str(bad)]) == 2
    assert "rules[0].threshold: missing" in capsys.readouterr().err
