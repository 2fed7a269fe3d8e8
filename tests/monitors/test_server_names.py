"""Every name the monitor reads for the reference server exists in a real reference server's /metrics.

The monitor once read `tollgate:requests_rejected_total` while the server wrote
`tollgate_requests_rejected_total`, so every 429 was invisible. Both now take the name from
tollgate.contracts; this test scrapes the real server so a renamed family fails here, not in production.
"""

from __future__ import annotations

import time

import httpx

from monitors.cli import DEFAULT_RULES
from monitors.derive import History
from monitors.figures import derive
from monitors.rules import load_rules
from monitors.scrape import Scrape, parse
from tollgate.contracts.figures import FIGURES
from tollgate.contracts.monitor_store import SERIES_NAMES

# Figures a reference server must yield: all but GPU (no exporter), host (`tollgate monitor gpu`) and drift.
NOT_FROM_THE_SERVER = ("gpu_", "host_", "drift_")
REFERENCE_FIGURES = [f for f in FIGURES if not f.startswith(NOT_FROM_THE_SERVER)]


def _scrape(url: str) -> Scrape:
    response = httpx.get(url + "/metrics", timeout=10)
    response.raise_for_status()
    samples, types = parse(response.text, response.headers.get("content-type", "text/plain"))
    return Scrape(url, time.time(), True, 0.0, samples, types)


def test_every_figure_source_the_monitor_reads_exists_on_the_reference_server(reference_server):
    url = reference_server.url
    first = _scrape(url)
    body = {"model": "tiny", "prompt": "hello", "max_tokens": 3}
    assert httpx.post(url + "/v1/completions", json=body, timeout=60).status_code == 200
    assert httpx.post(url + "/v1/completions", json={**body, "n": 2}, timeout=60).status_code == 400
    second = _scrape(url)
    missing = []
    for name in REFERENCE_FIGURES:
        source = FIGURES[name][0]  # the vLLM / reference-server source is listed first
        metrics = [
            t.metric + ("_bucket" if source.kind == "quantile" else "") for t in source.terms + source.den
        ]
        missing += [f"{name}: {m}" for m in [source.present, *metrics] if m not in second.samples]
    assert not missing, "names the monitor reads but the reference server does not write: " + ", ".join(
        missing
    )

    history = History(keep_s=600)
    history.add(first)
    history.add(second)
    rows = {name: value for name, _labels, value in derive(history, 600)}
    assert set(REFERENCE_FIGURES) <= set(rows), sorted(set(REFERENCE_FIGURES) - set(rows))
    assert set(rows) <= set(SERIES_NAMES)
    assert rows["request_rate"] > 0 and rows["rejected_rate"] > 0  # the 400 is a refusal the monitor sees
    assert rows["error_rate"] >= rows["rejected_rate"]


def test_default_rules_read_names_the_reference_server_writes(reference_server):
    samples = _scrape(reference_server.url).samples
    skip = ("DCGM_", "tollgate_drift_")  # written by dcgm-exporter / `tollgate drift watch`, not the server
    missing = []
    for rule in load_rules(DEFAULT_RULES):
        for term in rule.terms + rule.denominator:
            name = term.metric + ("_bucket" if rule.kind == "quantile" else "")
            if rule.kind != "figure" and not name.startswith(skip) and name not in samples:
                missing.append(f"{rule.name}: {name}")
            if rule.kind == "figure":
                assert term.metric in REFERENCE_FIGURES, rule.name
    assert not missing, missing
