"""`tollgate canary`: two reference servers, one slowed with --inject-latency-ms, loaded at the same time
by the load generator while the monitor scrapes both into a store; the judge reads the store."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from release.canary import METRICS, Judgement, judge
from release.canary_cli import build_parser, make_source
from release.webhook import create_app
from tests.release.helpers import front_door, front_door_out, serving
from tests.support.servers import ServerHandle, free_port
from tollgate.contracts.release import CANARY_EXIT

REPO = Path(__file__).resolve().parents[2]
TOLLGATE = [sys.executable, "-m", "tollgate"]


PROMETHEUS = shutil.which("prometheus")


@contextlib.contextmanager
def background(cmd: list[str], cwd: Path = REPO):
    """A process that runs for the block and is stopped with SIGINT (then killed) after it."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prometheus(tmp: Path, urls: list[str], port: int) -> list[str]:
    """A real Prometheus scraping both servers every second (when the Debian package is installed)."""
    hosts = ", ".join(f'"{u.split("//")[1]}"' for u in urls)
    config = f"global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: llm\n  static_configs: [{{targets: [{hosts}]}}]\n"
    (tmp / "prometheus.yml").write_text(config)
    return [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}"] + [
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]


def refused_requests(url: str, stop: threading.Event) -> None:
    """Requests the canary refuses (400 model_not_found, counted as rejected): a client still asking
    for a model name the new build no longer serves. Two a second while the load runs."""
    body = {"model": "renamed-away", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with httpx.Client(timeout=10) as client:
        while not stop.wait(0.5):
            assert client.post(url + "/v1/chat/completions", json=body).status_code == 400


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("canary")
    store = tmp / "monitor.db"
    one_thread = {"OMP_NUM_THREADS": "1"}  # two servers on a shared small box: no spinning torch thread pools
    with contextlib.ExitStack() as stack:
        handles = [ServerHandle((), one_thread), ServerHandle(("--inject-latency-ms", "300"), one_thread)]
        for handle in handles:
            stack.enter_context(handle)  # stopped on exit even if the other one fails to start
        with ThreadPoolExecutor(2) as pool:  # both start at once: half the wait
            base, slow = pool.map(lambda h: h.start(), handles)
        prom_url = None
        if PROMETHEUS:
            port = free_port()
            stack.enter_context(background(prometheus(tmp, [base.url, slow.url], port), cwd=tmp))
            prom_url = f"http://127.0.0.1:{port}"
        monitor = [*TOLLGATE, "monitor", "--target", base.url, "--target", slow.url, "--interval", "1s"]
        with background([*monitor, "--window", "4s", "--store", str(store)]):
            load = ["load", "--users", "2", "--duration", "15s", "--out", str(tmp / "runs"), "--seed", "3"]
            load += ["--output-tokens", "4", "--input-tokens", "8"]
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            loads = [
                subprocess.Popen([*TOLLGATE, *load, "--url", u], cwd=REPO, **quiet)
                for u in (base.url, slow.url)
            ]
            stop = threading.Event()
            refusals = threading.Thread(target=refused_requests, args=(slow.url, stop), daemon=True)
            refusals.start()
            try:
                for proc in loads:
                    assert proc.wait(timeout=120) == 0
            finally:
                stop.set()
                refusals.join(10)
        yield base.url, slow.url, store, prom_url


def _explain(result: dict, store: Path) -> str:
    lines = [f"{result['verdict']} score {result['score']:.0f}"]
    for name, r in result["metrics"].items():
        lines.append(
            f"{name}: {r['classification']} {r.get('median_a')} -> {r.get('median_b')} n={r['n_a']}/{r['n_b']}"
        )
    for summary in sorted(store.parent.glob("runs/*/summary.json")):
        s = json.loads(summary.read_text())
        lines.append(f"{s['config']['url']}: {s['requests']} e2e p50 {s['metrics']['e2e_ms']['p50']} ms")
    return "\n".join(lines)


def canary(capsys, *args: str) -> tuple[int, str, str]:
    """`tollgate canary ARGS` through the front door, in this process: (exit code, stdout, stderr)."""
    return front_door_out(["canary", *args], capsys)


def test_slowed_canary_fails_and_an_identical_one_passes(live, tmp_path, capsys):
    base, slow, store, _ = live
    code, out, _ = canary(
        capsys, "--baseline", base, "--canary", slow, "--store", str(store), "--window", "5m", "--json"
    )
    result = json.loads(out)
    assert code == CANARY_EXIT["fail"] == 1, _explain(result, store)
    assert result["verdict"] == "fail" and result["score"] < 75
    latency = {n: r for n, r in result["metrics"].items() if n.startswith(("ttft", "itl", "e2e"))}
    high = [n for n, r in latency.items() if r["classification"] == "High" and r["median_b"] > r["median_a"]]
    assert len(high) >= 2 and set(high) <= set(result["failing_metrics"]), _explain(result, store)
    assert not [n for n, r in latency.items() if r["classification"] == "Low"], _explain(result, store)
    assert result["metrics"]["drift_score"]["classification"] == "NoData"  # no drift check ran
    # the store's error_rate / rejected_rate series: the canary's refusals fail both, critically
    for name in ("rejected_rate", "error_rate"):
        r = result["metrics"][name]
        assert r["critical"] and r["classification"] == "High" and r["median_a"] == 0, _explain(result, store)
        assert 0 < r["median_b"] <= 1 and name in result["reason"], _explain(result, store)
    assert set(result["metrics"]) == {m.name for m in METRICS}

    code, out, err = canary(
        capsys,
        "--baseline",
        base,
        "--canary",
        base,
        "--store",
        str(store),
        "--window",
        "5m",
        "--out",
        str(tmp_path / "v.json"),
    )
    assert code == 0, out + err
    assert json.loads((tmp_path / "v.json").read_text())["verdict"] == "pass" and "pass" in out


def test_webhook_contracts_for_flagger_and_argo_rollouts(live):
    base, slow, store, _ = live
    args = build_parser().parse_args(
        ["--baseline", base, "--canary", slow, "--store", str(store), "--window", "5m"]
    )
    with serving(create_app(args, make_source(args))) as url:
        assert httpx.get(url + "/health", timeout=5).json() == {"status": "ok"}
        hook = {"name": "llm", "namespace": "prod", "phase": "Progressing", "metadata": {}}
        failing = httpx.post(url + "/flagger", json=hook, timeout=30)
        assert failing.status_code == 412 and failing.json()["verdict"] == "fail"
        assert failing.json()["rollout"] == {"name": "llm", "namespace": "prod", "phase": "Progressing"}
        passing = httpx.post(url + "/flagger", json={**hook, "metadata": {"canary": base}}, timeout=30)
        assert passing.status_code == 200 and passing.json()["verdict"] == "pass"
        assert httpx.post(url + "/flagger", json={"phase": "x"}, timeout=10).status_code == 400
        unknown = httpx.post(
            url + "/flagger", json={**hook, "metadata": {"canary": "http://nowhere:1"}}, timeout=10
        )
        assert unknown.status_code == 400 and "known targets" in unknown.json()["error"]
        # Argo Rollouts web metric: 200 with the verdict; jsonPath {$.pass} / {$.score} decides
        argo = httpx.get(url + "/analysis", timeout=30)
        assert argo.status_code == 200 and argo.json()["pass"] is False
        argo_ok = httpx.post(url + "/analysis", json={"canary": base, "window": "5m"}, timeout=30)
        assert argo_ok.status_code == 200 and argo_ok.json()["pass"] is True and argo_ok.json()["score"] >= 95


class BarrierSource:
    """Each judgement waits in check_target until a second one is inside too: two calls complete
    only if the webhook judges them at the same time, off the event loop."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)

    def check_target(self, target: str) -> str:
        if target == "b":
            self.barrier.wait()
        return target

    def samples(self, target, name, start, end, min_samples):
        return []


def test_two_concurrent_webhook_calls_are_judged_at_once():
    args = build_parser().parse_args(["--baseline", "b", "--canary", "c", "--window", "1m"])
    hook = {"name": "llm", "namespace": "prod", "phase": "Progressing"}
    with serving(create_app(args, BarrierSource())) as url, ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda path: httpx.post(url + path, json=hook, timeout=30), ("/flagger", "/analysis"))
        )
    assert [a.status_code for a in answers] == [503, 200], [a.text for a in answers]
    assert [a.json()["verdict"] for a in answers] == ["nodata", "nodata"]


class FixedSource:
    """Per-interval values given in the test (the judge's arithmetic, no servers)."""

    def __init__(self, data: dict[tuple[str, str], list[float]]) -> None:
        self.data = data

    def check_target(self, target: str) -> str:
        return target

    def samples(self, target, name, start, end, min_samples):
        return self.data.get((target, name), [])


def test_score_thresholds_critical_errors_and_nodata():
    base = [0.10, 0.11, 0.10, 0.12, 0.11, 0.10, 0.11, 0.12]
    latency = ("ttft_p50_s", "ttft_p95_s", "itl_p50_s", "itl_p95_s", "e2e_p50_s", "e2e_p95_s")

    def source(slow: set[str], errors: float = 0.0):
        data = {}
        for name in latency:
            data[("b", name)] = base
            data[("c", name)] = [v * 2 for v in base] if name in slow else base
        data[("b", "error_rate")] = [0.0] * 8
        data[("c", "error_rate")] = [errors + 0.001 * i for i in range(8)] if errors else [0.0] * 8
        return FixedSource(data)

    assert judge(source(set()), "b", "c", 600)["verdict"] == "pass"
    one = judge(source({"e2e_p95_s"}), "b", "c", 600)  # 6 of 7 metrics pass: 85.7
    assert one["verdict"] == "marginal" and one["exit_code"] == 3 and one["failing_metrics"] == ["e2e_p95_s"]
    assert judge(source({"e2e_p95_s"}), "b", "c", 600, Judgement(marginal_score=90))["verdict"] == "fail"
    errors = judge(source(set(), errors=0.2), "b", "c", 600)
    assert errors["verdict"] == "fail" and "critical" in errors["reason"]
    refusing = source(set())
    refusing.data[("b", "rejected_rate")] = [0.0] * 8
    refusing.data[("c", "rejected_rate")] = [0.2 + 0.001 * i for i in range(8)]
    refused = judge(refusing, "b", "c", 600)  # 7 of 8 metrics pass, but a refusing canary fails
    assert refused["verdict"] == "fail" and refused["reason"] == "critical metric failed: rejected_rate"
    faster = judge(
        FixedSource({("b", "e2e_p50_s"): base, ("c", "e2e_p50_s"): [v / 2 for v in base]}), "b", "c", 600
    )
    assert faster["metrics"]["e2e_p50_s"]["classification"] == "Low" and faster["verdict"] == "pass"
    assert judge(FixedSource({}), "b", "c", 600)["verdict"] == "nodata"


def test_bad_inputs_exit_2_with_a_clear_message(tmp_path, capsys):
    code, err = front_door(
        ["canary", "--baseline", "a", "--canary", "b", "--store", str(tmp_path / "none.db")], capsys
    )
    assert code == 2 and "no such file" in err and "tollgate monitor" in err
    code, err = front_door(["canary", "--baseline", "a", "--canary", "b", "--confidence", "95"], capsys)
    assert code == 2 and "--confidence" in err
    code, err = front_door(
        ["canary", "--baseline", "a", "--canary", "b", "--prometheus", "prom:9090"], capsys
    )
    assert code == 2 and "must look like http://HOST:9090" in err


@pytest.mark.prometheus
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian package 'prometheus')")
def test_the_same_judgement_from_a_real_prometheus(live, capsys):
    """The PromQL behind each figure, evaluated by Prometheus itself over the same run."""
    base, slow, _, prom = live
    args = ["--prometheus", prom, "--window", "2m", "--step", "1s", "--rate-window", "4s", "--json"]
    code, out, err = canary(
        capsys, "--baseline", base, "--canary", f'job="llm",instance="{slow.split("//")[1]}"', *args
    )
    assert code in (0, 1, 3), err
    result = json.loads(out)
    for name in ("ttft_p50_s", "e2e_p50_s", "itl_p50_s", "request_rate", "generation_tokens_per_s"):
        assert result["metrics"][name]["classification"] != "NoData", name
    e2e = result["metrics"]["e2e_p50_s"]
    assert e2e["median_b"] > e2e["median_a"] and result["verdict"] == "fail", result["failing_metrics"]
    for name in ("rejected_rate", "error_rate"):  # the contracts' PromQL for the monitor's figures
        assert result["metrics"][name]["classification"] == "High", (name, result["metrics"][name])
    code, _, err = canary(capsys, "--baseline", base, "--canary", 'job="nope"', *args)
    assert code == 2 and 'no series matching {job="nope"}' in err
