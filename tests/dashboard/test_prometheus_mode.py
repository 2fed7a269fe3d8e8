"""The scale-out path end to end: the reference server scraped by both the embedded monitor and a real
Prometheus (exported config), alerts routed through a real Alertmanager (exported config) to a webhook
receiver. The dashboard in `--prometheus` mode must show the same figures as in embedded mode over the
same window, and the alert Prometheus fired must be on its Alerts page."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.settings import ALERTMANAGER_ENV, DATA_ENV, PROMETHEUS_ENV, WINDOW_ENV
from monitors.cli import main as monitor_cli
from tests.dashboard.conftest import APP, VIEWS, figures, page_text
from tests.dashboard.test_browser import CHROMIUM, SCREENSHOTS, browser  # noqa: F401 (a fixture)
from tests.monitors.test_rejections import SLOW_STEPS, Overload, figure_rules
from tests.support.processes import ROOT, free_port, receiver, stop, wait_http, wait_until
from tests.support.servers import start_reference_server

PROMETHEUS, ALERTMANAGER = shutil.which("prometheus"), shutil.which("prometheus-alertmanager")
WINDOW_S = 10
RULES = figure_rules(WINDOW_S, ("HighRejectionRate", "rejected_rate", 0.1))
# panel title -> (legend label, tolerance): absolute in the panel's unit (%) or relative (a fraction)
COMPARED = {
    "Error rate": {"failed": ("abs", 10.0), "refused": ("abs", 10.0)},
    "Request rate": {"value": ("rel", 0.25)},
    "TTFT percentiles": {"p50": ("rel", 0.35)},
    "E2E percentiles": {"p50": ("rel", 0.35)},
}

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        PROMETHEUS is None or ALERTMANAGER is None, reason="Debian prometheus/alertmanager missing"
    ),
]


def _array(value) -> np.ndarray:
    """A plotly spec array: a list, or plotly's typed-array form {"dtype", "bdata"}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).astype(float)
    return np.asarray(value, dtype=float)


def _panel_means(at: AppTest, since: float, until: float) -> dict[str, dict[str, float]]:
    """Mean of every line of the compared Live panels over [since, until] (epoch seconds)."""
    out: dict[str, dict[str, float]] = {}
    for fig in figures(at):
        title = fig["layout"].get("title", {}).get("text")
        if title not in COMPARED:
            continue
        for trace in fig["data"]:
            x, y = _array(trace["x"]) / 1000, _array(trace["y"])
            keep = (x >= since) & (x <= until) & ~np.isnan(y)
            out.setdefault(title, {})[trace["name"]] = float(y[keep].mean()) if keep.any() else float("nan")
    return out


def _page(
    monkeypatch, name: str, data, prometheus: str | None = None, alertmanager: str | None = None
) -> AppTest:
    monkeypatch.setenv(DATA_ENV, str(data))
    monkeypatch.setenv(WINDOW_ENV, str(WINDOW_S))
    for key, value in ((PROMETHEUS_ENV, prometheus), (ALERTMANAGER_ENV, alertmanager)):
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    at = AppTest.from_file(str(APP if name == "app" else VIEWS / f"{name}.py"), default_timeout=60)
    at.query_params["range"] = "15 min"
    return at.run()


def _screenshot(driver, data, prom: str, am: str) -> int:
    """`tollgate dashboard --prometheus --alertmanager` in Chromium: the Live page draws its panels."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    cmd = [sys.executable, "-m", "tollgate", "dashboard", "--port", str(port), "--data", str(data),
           "--prometheus", prom, "--alertmanager", am, "--window", f"{WINDOW_S}s"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/_stcore/health", timeout=60, proc=proc)
        driver.get(url + "/live?range=15+min")
        wait = WebDriverWait(driver, 60)
        wait.until(ec.visibility_of_element_located((By.XPATH, "//h1[contains(., 'Live')]")))
        wait.until(
            lambda d: (
                len([e for e in d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot") if e.is_displayed()]) >= 8
            )
        )
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert "Prometheus at" in driver.page_source
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "live-prometheus.png"
        driver.save_screenshot(str(shot))
        return shot.stat().st_size
    finally:
        stop(proc)


def test_dashboard_on_prometheus_matches_the_embedded_monitor(tmp_path, monkeypatch, request):
    data, deploy = tmp_path / "data", tmp_path / "deploy"
    data.mkdir()
    (tmp_path / "rules.yaml").write_text(RULES)
    prom_port, am_port = free_port(), free_port()
    prom, am = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
    procs: list[subprocess.Popen] = []
    with (
        start_reference_server("--max-num-seqs", "2", "--max-waiting", "2", *SLOW_STEPS) as server,
        receiver(tmp_path / "slack.jsonl") as rx,
    ):
        (tmp_path / "slack_url").write_text(rx.url + "/services/T000/B000/SECRET")
        export = ["export-prometheus", "--out", str(deploy), "--target", server.url, "--interval", "1s",
                  "--rules", str(tmp_path / "rules.yaml"), "--alertmanager", f"127.0.0.1:{am_port}",
                  "--slack-url-file", str(tmp_path / "slack_url"), "--window", f"{WINDOW_S}s"]  # fmt: skip
        assert monitor_cli(export) == 0
        try:
            for cmd in (
                [ALERTMANAGER, f"--config.file={deploy / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=", "--log.level=warn"],
                [PROMETHEUS, f"--config.file={deploy / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                [sys.executable, "-m", "tollgate", "monitor", "--target", server.url, "--rules", str(tmp_path / "rules.yaml"),
                 "--interval", "1s", "--window", f"{WINDOW_S}s", "--store", str(data / "monitor.db")],
            ):  # fmt: skip
                procs.append(
                    subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
            wait_http(am + "/-/ready", timeout=30, proc=procs[0])
            wait_http(prom + "/-/ready", timeout=30, proc=procs[1])
            wait_until(lambda: _up(prom), 30, what="Prometheus scraping the server")
            load_start = time.time()
            load = Overload(server.url, clients=6, seconds=20)
            firing = wait_until(lambda: _firing(prom), 20, what="HighRejectionRate firing in Prometheus")
            wait_until(
                lambda: httpx.get(am + "/api/v2/alerts", timeout=5).json(), 15, what="Alertmanager alert"
            )
            alerts_page = _page(monkeypatch, "alerts", data, prom, am)  # while the load still runs
            overview = _page(monkeypatch, "overview", data, prom, am)
            statuses = load.join()
            load_end = time.time()
            since, until = load_start + WINDOW_S + 1, load_end - 1
            embedded = _panel_means(_page(monkeypatch, "live", data), since, until)
            remote = _panel_means(_page(monkeypatch, "live", data, prom), since, until)
            message = wait_until(rx.messages, 30, what="Alertmanager's notification at the webhook receiver")
            if CHROMIUM.exists():  # one real-browser look at the Prometheus-backed Live page
                assert _screenshot(request.getfixturevalue("browser"), data, prom, am) > 10_000
        finally:
            for proc in reversed(procs):
                stop(proc)
    assert 0.2 < statuses[429] / sum(statuses.values()) < 0.98, statuses
    assert firing[0]["labels"]["instance"] == server.url.split("//")[1]
    for title, lines in COMPARED.items():
        for label, (kind, tolerance) in lines.items():
            a, b = embedded[title][label], remote[title][label]
            gap = abs(a - b) if kind == "abs" else abs(a - b) / max(abs(a), 1e-9)
            assert gap <= tolerance, f"{title} {label}: embedded {a:.4g} vs Prometheus {b:.4g}"
    assert embedded["Error rate"]["refused"] > 10  # the comparison is about a visible refusal rate
    assert not alerts_page.exception and not overview.exception
    assert "HighRejectionRate" in page_text(alerts_page), page_text(alerts_page)
    assert "HighRejectionRate" in page_text(overview), page_text(overview)  # the firing-alerts list
    assert server.url.split("//")[1] in overview.dataframe[0].value["target"].tolist()
    assert "HighRejectionRate" in str(message)


def _up(prom: str) -> list:
    return httpx.get(prom + "/api/v1/query", params={"query": "up == 1"}, timeout=5).json()["data"]["result"]


def _firing(prom: str) -> list:
    alerts = httpx.get(prom + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["state"] == "firing" and a["labels"]["alertname"] == "HighRejectionRate"]
