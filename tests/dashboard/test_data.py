"""Readers and statistics behind the pages, checked against direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboards.data import analysis, store
from dashboards.data.alerts import episodes, matchers_text
from dashboards.redact import redact, redact_tree


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HTTP 503 from https://hooks.slack.com/services/T0/B0/abc",
            "HTTP 503 from https://hooks.slack.com/***",
        ),
        ("Authorization: Bearer xoxb-123-abc", "Authorization: *** xox*-***"),
        ("POST https://user:pw@example.com/hook?token=abc failed", "POST https://example.com/*** failed"),
        ("api_key=s3cr3t, retry", "api_key=***, retry"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("slack-oncall", "slack-oncall"),
    ],
)
def test_redact_masks_secrets_and_keeps_the_rest(text, expected):
    assert redact(text) == expected


def test_redact_tree_masks_secret_keys_but_not_token_counts():
    config = {
        "api_key": "sk-live-123",
        "max_tokens": 256,
        "output_tokens": "128",
        "headers": {"Authorization": "Bearer abc", "X-Trace": "1"},
        "slack_webhook": "https://hooks.slack.com/services/T/B/secret",
        "target": "http://127.0.0.1:8000/v1?access_token=zzz",
        "receivers": [{"token": "t0k3n", "name": "oncall"}],
    }
    masked = {"api_key": "***", "slack_webhook": "***", "target": "http://127.0.0.1:8000/***"}
    assert redact_tree(config) == config | masked | {
        "headers": {"Authorization": "***", "X-Trace": "1"},
        "receivers": [{"token": "***", "name": "oncall"}],
    }


def test_pick_tier_takes_the_coarsest_tier_with_enough_points():
    assert store.pick_tier([0, 60, 600], 7 * 86400, 400) == 600
    assert store.pick_tier([0, 60, 600], 86400, 400) == 60
    assert store.pick_tier([0, 60, 600], 3600, 400) == 0
    assert store.pick_tier([5, 60], 600, 400) == 5  # nothing fine enough: the finest
    assert store.pick_tier([0, 60, 600], 7 * 86400, None) == 0  # baseline: raw
    assert store.pick_tier([], 3600, 400) is None


def test_bucketed_series_keeps_the_mean_and_bounds_the_points(sample_root):
    path = str(sample_root / "monitor.db")
    end = store.data_end(path)
    assert store.tiers(path, "request_rate") == [0, 60, 600]
    targets = tuple(store.targets(path)["target"])
    raw = store.series(path, ("request_rate",), targets, end - 6 * 3600, end, None)
    fast = store.series(path, ("request_rate",), targets, end - 6 * 3600, end, 400)
    assert fast.groupby("target").size().max() <= 400
    assert len(raw) > 4 * len(fast)
    for target in targets:
        assert fast[fast.target == target]["value"].mean() == pytest.approx(
            raw[raw.target == target]["value"].mean(), rel=0.02
        )


def test_cdf_points_are_exact_quantiles(sample_root):
    path = sample_root / "runs/20260102-chat-candidate/requests.parquet"
    cdf = analysis.latency_cdf(str(path), path.stat().st_mtime, 400)
    ttft = cdf[cdf.metric == "TTFT"]
    assert len(ttft) <= 400 and ttft["fraction"].is_monotonic_increasing
    values = pd.read_parquet(path)["ttft_ms"].dropna().to_numpy()
    at95 = ttft.iloc[(ttft["fraction"] - 0.95).abs().argmin()]
    assert at95["latency_ms"] == pytest.approx(np.quantile(values, at95["fraction"]))


def test_cliffs_delta_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(0.5, 1, 50)
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(b, a, alternative="two-sided").statistic
    pairwise = np.mean(np.sign(b[:, None] - a[None, :]))
    assert analysis.cliffs_delta(u, b.size, a.size) == pytest.approx(pairwise)


def test_episodes_follow_state_changes():
    changes = pd.DataFrame(
        [
            (1, 100.0, "fp", "R", "pending", "warning", '{"target": "t"}', 2.0, 1.0, 100.0, "s"),
            (2, 160.0, "fp", "R", "firing", "warning", '{"target": "t"}', 2.0, 1.0, 100.0, "s"),
            (3, 400.0, "fp", "R", "resolved", "warning", '{"target": "t"}', 0.5, 1.0, 100.0, "s"),
            (4, 500.0, "fp", "R", "pending", "warning", '{"target": "t"}', 2.0, 1.0, 500.0, "s"),
        ],
        columns=[
            "id",
            "ts",
            "fingerprint",
            "rule",
            "state",
            "severity",
            "labels",
            "value",
            "threshold",
            "active_since",
            "summary",
        ],
    )
    eps = episodes(changes, now=700.0)
    assert list(eps["state"]) == ["pending", "resolved"]  # newest first
    assert list(eps["duration_s"]) == [200.0, 300.0]
    assert eps.iloc[1]["firing_at"] == 160.0 and eps.iloc[1]["target"] == "t"


def test_matchers_in_both_formats():
    assert (
        matchers_text('[["alertname", "=~", "High.*"], ["target", "!=", "a"]]')
        == 'alertname=~"High.*", target!="a"'
    )
    assert (
        matchers_text('[{"name": "severity", "value": "critical", "isEqual": true}]') == 'severity="critical"'
    )


def test_raw_only_store_is_bucketed_in_sql(tmp_path):
    """A store the monitors just created has only the raw tier (resolution 0)."""
    import sqlite3

    from tollgate.contracts.monitor_store import DDL

    conn = sqlite3.connect(tmp_path / "monitor.db")
    conn.executescript(DDL)
    rows = [
        (1000.0 + i, "t", name, "{}", float(i % 7), 0) for name in ("up", "request_rate") for i in range(3600)
    ]
    conn.executemany("INSERT INTO series VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    path = str(tmp_path / "monitor.db")
    assert store.targets(path)["target"].tolist() == ["t"]  # from `up` samples: the targets table is empty
    assert store.data_end(path) == 4599.0
    out = store.series(path, ("request_rate",), ("t",), 1000.0, 4599.0, 400)
    assert len(out) == 400 and out["value"].mean() == pytest.approx(
        np.mean([i % 7 for i in range(3600)]), rel=0.01
    )


def test_requests_cut_off_by_the_end_of_a_run_are_not_errors(tmp_path):
    rows = pd.DataFrame(
        {
            "send_s": [1.0, 2.0, 3.0, 4.0],
            "end_s": [1.5, 2.5, 3.5, 4.5],
            "ok": [True, False, False, False],
            "error": [
                "",
                "HTTP 500",
                "HTTP 500",
                "incomplete: the run ended while the request was in flight",
            ],
        }
    )
    path = tmp_path / "requests.parquet"
    rows.to_parquet(path)
    errors = analysis.errors_by_reason(str(path), path.stat().st_mtime)
    assert errors["reason"].tolist() == ["HTTP 500"] and errors["requests"].tolist() == [2]
