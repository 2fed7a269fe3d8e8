"""Monitors benchmark: scrape + parse + store cost for a 2,000-series endpoint (Prometheus' own scrape
of the same endpoint as baseline), alert latency from breach to webhook delivery (Prometheus +
Alertmanager with the exported config as baseline), and store size per target per day (tiered store vs
keeping every raw row).

    python -m bench monitors [--quick]     (--quick: fewer repetitions, no Prometheus/Alertmanager runs)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from bench.common import print_table, write_result
from monitors.alerting import Alerting
from monitors.cli import DEFAULT_RULES
from monitors.derive import History
from monitors.figures import derive, scrape_rows
from monitors.rules import load_rules
from monitors.scrape import Scrape, parse
from monitors.store import DEFAULT_TIERS, Store
from tests.support.processes import ROOT, free_port, receiver, stop, wait_http, wait_until

MODELS = 25  # x 80 series each = 2,000 series
BUCKETS = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160]


def big_endpoint() -> tuple[int, CollectorRegistry]:
    """A real prometheus_client endpoint with vLLM names: 25 models x (3 histograms x 22 + 14) series."""
    reg = CollectorRegistry()
    hists = [Histogram(n, n, ["model_name"], buckets=BUCKETS, registry=reg) for n in (
        "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds")]  # fmt: skip
    gauges = [Gauge(f"vllm:gauge_{i}", "g", ["model_name"], registry=reg) for i in range(10)]
    counters = [Counter(f"vllm:counter_{i}", "c", ["model_name"], registry=reg) for i in range(4)]
    for m in range(MODELS):
        for i, h in enumerate(hists):
            for k in range(40):
                h.labels(f"m{m}").observe(0.01 * (k + 1) * (i + 1))
        for g in gauges:
            g.labels(f"m{m}").set(m)
        for c in counters:
            c.labels(f"m{m}").inc(m)
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=reg)
    return port, reg


def scrape_cost(url: str, ticks: int, tmp: Path) -> dict:
    store = Store(tmp / "cost.db")
    alerting = Alerting(load_rules(DEFAULT_RULES), store)
    history = History(120)
    stages: dict[str, list[float]] = {k: [] for k in ("http", "parse", "derive", "store", "rules", "total")}
    with httpx.Client() as client:
        for tick in range(ticks):
            t0 = time.perf_counter()
            text = client.get(url).text
            t1 = time.perf_counter()
            samples, types = parse(text)
            t2 = time.perf_counter()
            s = Scrape(url, 5.0 * tick, True, t1 - t0, samples, types)  # as if scraped every 5 s
            history.add(s)
            rows = scrape_rows(s) + derive(history, 60)
            t3 = time.perf_counter()
            store.write_samples(s.ts, url, rows)
            t4 = time.perf_counter()
            alerting.evaluate({url: history}, {url: s}, now=s.ts)
            t5 = time.perf_counter()
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0), strict=True):
                stages[k].append(v)
            time.sleep(0.05)
    n_series = sum(len(v) for v in samples.values())
    return {"series": n_series, **{f"{k}_ms": statistics.median(v) * 1000 for k, v in stages.items()}}


def prometheus_scrape_ms(port: int, tmp: Path, seconds: float = 12.0) -> float | None:
    """Median scrape_duration_seconds of a real Prometheus scraping the same endpoint every 500 ms."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    cfg = tmp / "prom-cost.yml"
    cfg.write_text(
        "global: {scrape_interval: 500ms, scrape_timeout: 500ms}\n"
        f"scrape_configs: [{{job_name: big, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n"
    )
    web = free_port()
    proc = _spawn([binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb-cost'}",
                   f"--web.listen-address=127.0.0.1:{web}", "--log.level=error"])  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{web}/-/ready", 30, proc)
        time.sleep(seconds)
        q = "quantile_over_time(0.5, scrape_duration_seconds{job='big'}[1h])"
        res = httpx.get(f"http://127.0.0.1:{web}/api/v1/query", params={"query": q}).json()["data"]["result"]
        return float(res[0]["value"][1]) * 1000 if res else None
    finally:
        stop(proc)


def _spawn(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


BREACH_RULES = """rules:
  - name: BenchBreach
    kind: gauge
    metric: bench_breach
    op: ">"
    threshold: 0.5
    for: {for_s}s
    summary: "breach on {{{{ target }}}}"
"""


def alert_latency(trials: int, interval_s: float, for_s: float, tmp: Path, baseline: bool) -> dict:
    """Seconds from setting the breach gauge to the webhook receiving the firing message."""
    reg = CollectorRegistry()
    gauge = Gauge("bench_breach", "1 while breached", registry=reg)
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=reg)
    target = f"http://127.0.0.1:{port}/metrics"
    rules = tmp / "breach.yaml"
    rules.write_text(BREACH_RULES.format(for_s=for_s))
    out = {"tollgate": _latencies(gauge, trials, tmp / "rx-tollgate.jsonl", lambda hook: _spawn(
        [sys.executable, "-m", "tollgate", "monitor", "--target", target, "--rules", str(rules),
         "--interval", f"{interval_s}s", "--store", str(tmp / "latency.db"), "--slack-webhook", hook]))}  # fmt: skip
    if baseline and shutil.which("prometheus") and shutil.which("prometheus-alertmanager"):
        out["prometheus_alertmanager"] = _latencies(gauge, 1, tmp / "rx-am.jsonl", lambda hook: _prom_am(
            hook, target, rules, interval_s, tmp), timeout=90)  # fmt: skip
    return out


def _latencies(gauge: Gauge, trials: int, record: Path, start, timeout: float = 30.0) -> list[float]:
    gauge.set(0)
    with receiver(record) as rx:
        procs = start(rx.url + "/services/bench")
        procs = procs if isinstance(procs, list) else [procs]
        try:
            time.sleep(3.0)  # let the monitor start and scrape the healthy state
            latencies = []
            for _ in range(trials):
                n = len(rx.messages())
                t0 = time.time()
                gauge.set(1)
                wait_until(lambda n=n: len(rx.messages()) > n, timeout, what="firing message")
                latencies.append(rx.messages()[n]["received_at"] - t0)
                gauge.set(0)
                wait_until(lambda n=n: len(rx.messages()) > n + 1, timeout, what="resolved message")
            return latencies
        finally:
            for p in procs:
                stop(p)


def _prom_am(hook: str, target: str, rules: Path, interval_s: float, tmp: Path) -> list[subprocess.Popen]:
    from monitors.export import write_all

    am_port, web = free_port(), free_port()
    out = tmp / "prom-am"
    (tmp / "slack_url").write_text(hook)
    write_all(out, load_rules(rules), [target], interval_s, f"127.0.0.1:{am_port}", str(tmp / "slack_url"))
    am = _spawn([shutil.which("prometheus-alertmanager"), f"--config.file={out / 'alertmanager.yml'}",
                 f"--storage.path={tmp / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                 "--cluster.listen-address="])  # fmt: skip
    prom = _spawn([shutil.which("prometheus"), f"--config.file={out / 'prometheus.yml'}",
                   f"--storage.tsdb.path={tmp / 'tsdb-am'}", f"--web.listen-address=127.0.0.1:{web}"])  # fmt: skip
    wait_http(f"http://127.0.0.1:{am_port}/-/ready", 30, am)
    wait_http(f"http://127.0.0.1:{web}/-/ready", 30, prom)
    return [prom, am]


def store_size(days: float, tmp: Path) -> dict:
    """Simulate `days` of 5 s scrapes of one vLLM-like target (its real figure set) through the store."""
    fixtures = ROOT / "tests/monitors/fixtures"
    h = History(600)
    for i, name in enumerate(("vllm_t0.txt", "vllm_t1.txt")):
        samples, types = parse((fixtures / name).read_text())
        h.add(Scrape("t", 1000.0 + 10 * i, True, 0.01, samples, types))
    rows = [("up", {}, 1.0), ("scrape_duration_s", {}, 0.01), *derive(h, 60)]
    sizes = {}
    for name, compact in (("tiered", True), ("raw_only", False)):
        store = Store(tmp / f"size-{name}.db", DEFAULT_TIERS)
        t, end = 0.0, days * 86400
        while t < end:
            store.write_samples(t, "http://server:8000/metrics", [(n, lab, v + t % 7) for n, lab, v in rows])
            t += 5.0
            if compact and t % 300 == 0:
                store.compact(now=t)
        store.query("PRAGMA wal_checkpoint(TRUNCATE)")
        store.vacuum()
        sizes[name] = os.path.getsize(store.path)
        count = store.query("SELECT COUNT(*) FROM series")[0][0]
        sizes[f"{name}_rows"] = count
        store.close()
    per_row = sizes["tiered"] / max(1, sizes["tiered_rows"])
    per_tick = len(rows)
    week_rows = per_tick * sum(min(7 * 86400, t.retention_s) / (t.resolution or 5) for t in DEFAULT_TIERS)
    return {
        "series_per_target": per_tick,
        "days": days,
        **sizes,
        "week_steady_bytes_estimate": week_rows * per_row,
    }


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    with tempfile.TemporaryDirectory(prefix="bench-monitors-") as d:
        tmp = Path(d)
        port, _reg = big_endpoint()
        url = f"http://127.0.0.1:{port}/metrics"
        cost = scrape_cost(url, 10 if quick else 40, tmp)
        prom_ms = None if quick else prometheus_scrape_ms(port, tmp)
        interval, for_s = 0.5, 2.0
        latency = alert_latency(2 if quick else 5, interval, for_s, tmp, baseline=not quick)
        size = store_size(0.25 if quick else 1.0, tmp)
    ours = statistics.median(latency["tollgate"])
    base = (
        statistics.median(latency["prometheus_alertmanager"])
        if "prometheus_alertmanager" in latency
        else None
    )
    day_factor = 1.0 / size["days"]
    rows = [
        ["scrape+parse+derive+store, 2,000 series (ms, median)", cost["total_ms"] - cost["rules_ms"],
         prom_ms if prom_ms is not None else "-", _ratio(cost["total_ms"] - cost["rules_ms"], prom_ms)],
        ["  of which HTTP / parse / derive / store (ms)",
         f"{cost['http_ms']:.1f} / {cost['parse_ms']:.1f} / {cost['derive_ms']:.1f} / {cost['store_ms']:.1f}", "-", "-"],
        ["rule evaluation, 9 default rules (ms)", cost["rules_ms"], "-", "-"],
        [f"alert latency breach->webhook (s), for={for_s:g}s, interval={interval:g}s", ours,
         base if base is not None else "-", _ratio(ours, base)],
        ["  target: for + 2 intervals (s)", for_s + 2 * interval, "-", "-"],
        ["store MB per target per day (tiered vs raw rows kept)", size["tiered"] * day_factor / 1e6,
         size["raw_only"] * day_factor / 1e6, _ratio(size["tiered"], size["raw_only"])],
        ["store MB per target, steady week (estimate)", size["week_steady_bytes_estimate"] / 1e6, "-", "-"],
    ]  # fmt: skip
    print_table("monitors: Tollgate vs baseline", ["measure", "tollgate", "baseline", "ratio"], rows)
    path = write_result("monitors", {
        "quick": quick,
        "scrape_cost": {**cost, "prometheus_scrape_ms_median": prom_ms},
        "alert_latency_s": {**latency, "for_s": for_s, "interval_s": interval, "target_s": for_s + 2 * interval,
                            "tollgate_median": ours, "baseline_median": base,
                            "baseline_note": "Prometheus + Alertmanager from the exported config (group_wait 10s)"},
        "store": size,
    })  # fmt: skip
    print(f"wrote {path}")
    return 0 if ours <= for_s + 2 * interval else 1


def _ratio(a: float, b: float | None) -> str:
    return "-" if not b else f"{a / b:.2f}x"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
