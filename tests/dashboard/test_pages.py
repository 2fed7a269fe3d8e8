"""Every page through Streamlit's AppTest on generated fixture data."""

from __future__ import annotations

import json

import pytest

from dashboards.nav import PAGES
from dashboards.panels.live_specs import GPU_PANELS, PANELS
from dashboards.sample_store import SECRET_WEBHOOK
from tests.dashboard.conftest import figures, page_text

pytestmark = pytest.mark.timeout(120)


def _no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _axes_have_units(fig: dict) -> None:
    for axis in ("xaxis", "yaxis"):
        title = (fig["layout"].get(axis) or {}).get("title", {}).get("text")
        assert title, f"{axis} of {fig['layout'].get('title')} has no title"


def test_app_navigation_opens_overview(sample_root, open_page):
    at = open_page(sample_root, "app")
    _no_exception(at)
    assert [t.value for t in at.title] == ["Overview"]
    assert str(sample_root) in " ".join(c.value for c in at.sidebar.caption)


def test_navigation_reaches_every_page(sample_root, open_page):
    at = open_page(sample_root, "app")
    for name, (title, _icon) in PAGES.items():
        at.switch_page(f"views/{name}.py").run()
        _no_exception(at)
        assert [t.value for t in at.title] == [title]


def test_overview_shows_health_alerts_and_verdicts(sample_root, open_page):
    at = open_page(sample_root, "overview")
    _no_exception(at)
    health = at.dataframe[0].value
    assert set(health["target"]) == {
        "vllm-prod:8000",
        "vllm-canary:8000",
        "reference-cpu:8000",
        "tgi-staging:8080",
    }
    down = health.set_index("target").loc["tgi-staging:8080"]
    assert down["up"] == "DOWN" and down["last_error"] == "connection refused"
    assert all(len(trend) >= 50 and min(trend) >= 0 for trend in health["trend"])
    assert down["trend"][-1] == 0  # the request-rate sparkline drops while staging is down
    cpu = health.set_index("target").loc["reference-cpu:8000"]
    assert cpu["request_rate"] > 0 and json.dumps(cpu["gpu_util_pct"]) == "NaN"
    text = " ".join(m.value for m in at.markdown)
    assert "TargetDown" in text and "DriftDetected" in text
    assert text.count(":gray[silenced]") == 1  # DriftDetected is covered by the sample's active silence
    assert ":green[PASS]" in text or ":red[FAIL]" in text
    assert ":red[DRIFT]" in text
    links = [link.proto.page for link in at.get("page_link")]
    assert {"live", "alerts", "load-tests", "drift"} <= {
        p.rsplit("/", 1)[-1].removesuffix(".py").replace("_", "-") for p in links
    }


def test_runs_list_filters_by_scenario(sample_root, open_page):
    at = open_page(sample_root, "load_tests")
    _no_exception(at)
    assert len(at.dataframe[0].value) == 3
    at.multiselect[0].set_value(["rag"]).run()
    runs = at.dataframe[0].value
    assert list(runs["run_id"]) == ["20260102-rag-long"]


def test_selecting_a_run_in_the_list_opens_it_below(sample_root, open_page):
    at = open_page(sample_root, "load_tests")
    newest = at.dataframe[0].value["run_id"].iloc[0]
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert [h.value for h in at.subheader] == [newest]
    assert {m.label for m in at.metric} >= {"Completed", "Gate"}


def test_run_detail_has_figures_and_values(sample_root, open_page):
    at = open_page(sample_root, "load_tests", run="20260102-chat-candidate")
    _no_exception(at)
    summary = json.loads((sample_root / "runs/20260102-chat-candidate/summary.json").read_text())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Completed"] == f"{summary['requests']['completed']:,}"
    assert metrics["Gate"] in ("PASS", "FAIL")
    figs = figures(at)
    assert len(figs) == 5
    for fig in figs:
        _axes_have_units(fig)
    cdf = figs[0]
    assert {t["name"] for t in cdf["data"]} == {"TTFT", "TPOT", "ITL (mean per request)", "E2E"}
    assert all(len(t["x"]) <= 400 for t in cdf["data"])
    pct = at.dataframe[0].value.set_index("metric")
    assert pct.loc["ttft_ms", "p95"] == pytest.approx(summary["metrics"]["ttft_ms"]["p95"])
    assert any("Validity flags all clear" in s.value for s in at.success)


def test_compare_highlights_significant_differences(sample_root, open_page):
    at = open_page(sample_root, "load_tests", view="Compare")
    _no_exception(at)
    assert at.selectbox(key="cmp_a").value == "20260101-chat-baseline"
    assert at.selectbox(key="cmp_b").value == "20260102-chat-candidate"
    tests = next(df.value for df in at.dataframe if "cliffs_delta" in df.value.columns)
    ttft = tests.set_index("metric").loc["TTFT"]
    assert ttft["significant"] and ttft["cliffs_delta"] > 0 and ttft["p_adjusted"] < 0.01
    assert any("Significant differences" in w.value and "TTFT" in w.value for w in at.warning)
    assert any("Gate verdict for B" in m.value for m in at.markdown)
    assert len(figures(at)) == 1


def test_sweep_marks_the_knee(sample_root, open_page):
    at = open_page(sample_root, "load_tests", view="Sweeps")
    _no_exception(at)
    (fig,) = figures(at)
    _axes_have_units(fig)
    knee = next(t for t in fig["data"] if t["name"] == "knee")
    sweep = json.loads(next((sample_root / "sweeps").glob("*/sweep.json")).read_text())
    assert knee["x"] == [sweep["knee"]["requests_per_s"]]
    assert [p["load"] for p in sweep["points"] if p["run_id"] == sweep["knee"]["run_id"]] == [
        sweep["knee"]["load"]
    ]
    steps = next(t for t in fig["data"] if t["name"] == "sweep step")
    assert steps["marker"]["color"].count("#d62728") == sum(not p["passed"] for p in sweep["points"]) > 0
    assert at.metric[0].label == "Capacity at the knee"
    plan = {m.label: m.value for m in at.metric}
    assert plan["Replicas needed"] == str(sweep["capacity"]["replicas"])
    assert plan["Cost per 1M output tokens"] == f"{sweep['capacity']['cost_per_million_output_tokens']:.4f}"
    assert any("Assumes linear scaling" in c.value for c in at.caption)


def test_live_series_with_units_and_gpus(sample_root, open_page):
    at = open_page(sample_root, "live", range="6 h")
    _no_exception(at)
    figs = figures(at)
    titles = [f["layout"]["title"]["text"] for f in figs]
    assert set(titles) == set(PANELS) | set(GPU_PANELS)
    for fig in figs:
        _axes_have_units(fig)
        assert all(len(t["x"]) <= 400 for t in fig["data"])
    gpu_names = {t["name"] for f in figs if f["layout"]["title"]["text"] == "GPU power" for t in f["data"]}
    assert gpu_names == {
        "vllm-prod:8000 gpu 0",
        "vllm-prod:8000 gpu 1",
        "vllm-canary:8000 gpu 0",
        "tgi-staging:8080 gpu 0",
    }


def test_live_cpu_host_says_no_gpu(sample_root, open_page):
    at = open_page(sample_root, "live")
    at.multiselect[0].set_value(["reference-cpu:8000"]).run()
    _no_exception(at)
    assert any("No GPU on these targets" in i.value for i in at.info)
    assert not any(f["layout"]["title"]["text"].startswith("GPU") for f in figures(at))
    assert len(figures(at)) == 11


def test_drift_page(sample_root, open_page):
    at = open_page(sample_root, "drift")
    _no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Verdict"] == "DRIFT" and metrics["Method"] == "classifier_auc"
    table = at.dataframe[0].value.set_index("feature")
    assert table.loc["prompt_tokens", "decision"] == "drift"
    assert table.loc["n_messages", "decision"].startswith("undecided: fewer than 30")
    scores, overlay = figures(at)
    _axes_have_units(scores)
    _axes_have_units(overlay)
    assert {t["name"] for t in overlay["data"]} == {"reference", "live"}
    assert at.get("download_button")[0].proto.label == "Open the Evidently report (HTML)"


def test_alerts_page_states_silences_delivery_and_no_secrets(sample_root, open_page):
    at = open_page(sample_root, "alerts")
    _no_exception(at)
    metrics = [(m.label, m.value) for m in at.metric]
    assert ("Firing", "2") in metrics and ("Failed", "1") in metrics and ("Retrying", "1") in metrics
    history = at.dataframe[0].value
    assert {"firing", "resolved"} <= set(history["state"]) and history["duration"].str.len().gt(0).all()
    silences = at.dataframe[1].value
    assert sorted(silences["status"]) == ["active", "expired"]
    assert silences.loc[silences["status"] == "active", "matchers"].iloc[0] == 'alertname="DriftDetected"'
    assert ("Silenced now", "1") in metrics
    text = page_text(at)
    token = SECRET_WEBHOOK.rsplit("/", 1)[-1]
    assert token not in text and "xoxb-sample-token" not in text
    assert "hooks.slack.com/***" in text
