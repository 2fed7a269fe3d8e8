"""`tollgate drift profile|check`: exit codes, result files per contract, bad input handled per feature."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drift.check import CheckSettings, run_check
from drift.cli import main
from drift.features import features_from_frame, load_features
from drift.profile import build_profile
from drift.synthetic import Mix, capture_log, dataset, write_capture_log
from tollgate.contracts.drift_result import DRIFT_SCHEMA_VERSION, FEATURE_FIELDS


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("drift")
    write_capture_log(d / "reference.jsonl", capture_log(2000, seed=1))
    _write_jsonl(d / "train.jsonl", dataset(800, seed=2))
    write_capture_log(d / "ok.jsonl", capture_log(600, seed=3))
    shifted = Mix(topics={"finance": 0.5, "medical": 0.5}, temperatures={1.0: 1.0})
    write_capture_log(d / "drift.jsonl", capture_log(600, shifted, seed=4))
    assert main(["profile", str(d / "reference.jsonl"), "-o", str(d / "profile.json")]) == 0
    return d


def _check(work: Path, live: str, *extra: str) -> tuple[int, dict]:
    out = work / f"out-{live}-{len(extra)}-{'_'.join(extra).replace('/', '')[-40:]}"
    code = main(
        [
            "check",
            "--profile",
            str(work / "profile.json"),
            "--live",
            str(work / live),
            "--out",
            str(out),
            "--permutations",
            "200",
            *extra,
        ]
    )
    files = sorted(out.glob("*.json")) if out.exists() else []
    return code, json.loads(files[-1].read_text()) if files else {}


def test_no_drift_exit_0_and_contract_fields(work: Path) -> None:
    code, result = _check(work, "ok.jsonl")
    assert code == 0 and result["drift_detected"] is False
    assert result["schema_version"] == DRIFT_SCHEMA_VERSION and result["check_id"]
    assert {
        "profile",
        "window",
        "settings",
        "features",
        "multivariate",
        "warnings",
        "evidently_report",
    } <= set(result)
    for row in result["features"]:
        assert set(FEATURE_FIELDS) <= set(row)
    assert result["multivariate"]["method"] == "mmd" and result["multivariate"]["drift"] is False
    assert result["window"]["n_live"] == 600


def test_drift_exit_1_names_the_features(work: Path) -> None:
    code, result = _check(work, "drift.jsonl", "--correction", "bonferroni")
    assert code == 1 and result["drift_detected"] is True
    drifted = {r["feature"] for r in result["features"] if r["drift"]}
    assert "temperature" in drifted and result["multivariate"]["drift"] is True
    assert "prompt_chars" not in drifted  # same length distribution: significance alone is not drift


@pytest.mark.parametrize(
    ("window", "seconds", "rows"), [("100s", 100, 100), ("1m40s", 100, 100), ("1h30m", 5400, 600)]
)
def test_window_selects_recent_rows(work: Path, window: str, seconds: float, rows: int) -> None:
    """Any duration of the shared grammar, compound ones included (`1h30m` was refused before)."""
    code, result = _check(work, "ok.jsonl", "--window", window)
    assert code == 0 and result["window"]["n_live"] == rows  # one request per second in the synthetic log
    assert result["window"]["end"] - result["window"]["start"] == pytest.approx(seconds)


def test_dataset_profile_against_request_bodies(work: Path, tmp_path: Path) -> None:
    """A chat dataset (messages only) vs gateway request bodies: parameters absent from the reference are
    undecided with a reason, text features are compared, and the Evidently report still renders."""
    assert main(["profile", str(work / "train.jsonl"), "-o", str(tmp_path / "p.json")]) == 0
    rng = np.random.default_rng(5)
    from drift.synthetic import request_body

    _write_jsonl(tmp_path / "bodies.jsonl", [request_body(rng, Mix()) for _ in range(400)])
    out = tmp_path / "out"
    code = main(
        [
            "check",
            "--profile",
            str(tmp_path / "p.json"),
            "--live",
            str(tmp_path / "bodies.jsonl"),
            "--out",
            str(out),
            "--evidently-report",
            str(tmp_path / "ev.html"),
        ]
    )
    result = json.loads(next(out.glob("*.json")).read_text())
    rows = {r["feature"]: r for r in result["features"]}
    assert code == 0
    # Evidently refuses columns empty on one side: they are left out of its report and named
    assert result["evidently_report"] == str(tmp_path / "ev.html")
    assert any("leaves out" in w and "temperature" in w for w in result["warnings"]), result["warnings"]
    assert (
        rows["temperature"]["status"] == "undecided"
        and "reference has no values" in rows["temperature"]["reason"]
    )
    assert rows["prompt_words"]["status"] == "decided" and rows["system_fingerprint"]["status"] == "decided"
    assert any("no timestamps" not in w for w in result["warnings"])


def test_corrupt_lines_are_named_and_skipped(work: Path, tmp_path: Path) -> None:
    lines = (work / "ok.jsonl").read_text().splitlines()[:200]
    lines[10] = '{"timestamp": 1, "prompt_tokens": '  # corrupt JSON
    lines[20] = json.dumps({**json.loads(lines[20]), "prompt_tokens": "many"})  # schema violation
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n" + '{"half a line')  # last line mid-write
    feats = load_features(tmp_path / "bad.jsonl")
    assert len(feats) == 198 and feats.n_skipped == 2
    assert any(":11: not valid JSON" in w for w in feats.warnings)
    assert any(":21: capture record: field 'prompt_tokens' must be int" in w for w in feats.warnings)


def test_bad_input_exit_2(work: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"schema_version": 7, "features": {}}))
    assert main(["check", "--profile", str(tmp_path / "p.json"), "--live", str(work / "ok.jsonl")]) == 2
    assert "schema_version 7 is not supported" in capsys.readouterr().err
    assert (
        main(["check", "--profile", str(work / "profile.json"), "--live", str(tmp_path / "nope.jsonl")]) == 2
    )
    assert "nope.jsonl: no such file" in capsys.readouterr().err
    assert (
        main(
            [
                "check",
                "--profile",
                str(work / "profile.json"),
                "--live",
                str(work / "ok.jsonl"),
                "--method",
                "temperature",
            ]
        )
        == 2
    )
    assert "must look like FEATURE=VALUE" in capsys.readouterr().err
    assert main(["check", "--profile", "x", "--live", "y", "--window", "soon"]) == 2


def test_degenerate_windows_are_undecided_not_fatal() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=2000),
            "constant": np.full(2000, 3.0),
            "nan_live": rng.normal(size=2000),
            "cat": rng.choice(["a", "b"], 2000),
        }
    )
    profile = build_profile(features_from_frame(ref))
    live = pd.DataFrame(
        {
            "x": rng.normal(size=300),
            "constant": np.full(300, 3.0),
            "nan_live": np.nan,
            "cat": rng.choice(["a", "zz"], 300),
        }
    )
    rows = {r["feature"]: r for r in run_check(profile, features_from_frame(live))["features"]}
    assert rows["constant"]["status"] == "decided" and rows["constant"]["drift"] is False
    assert (
        rows["nan_live"]["status"] == "undecided"
        and "window has 0 values of 'nan_live'" in rows["nan_live"]["reason"]
    )
    assert (
        rows["nan_live.missing_rate"]["drift"] is True and rows["nan_live.missing_rate"]["effect_size"] == 1.0
    )
    assert rows["cat.oov_rate"]["drift"] is True and rows["cat"]["details"]["unseen_categories"] == 1
    tiny = run_check(profile, features_from_frame(live.iloc[:5]))
    assert all(r["status"] == "undecided" for r in tiny["features"])
    assert any("ks needs at least 20" in w for w in tiny["warnings"])
    empty = run_check(profile, features_from_frame(live.iloc[:0]))
    assert empty["drift_detected"] is False and all(r["drift"] is None for r in empty["features"])


def test_every_method_selectable_per_feature() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(list("abc"), 3000)})
    live = pd.DataFrame(
        {"x": rng.normal(0.5, size=500), "c": rng.choice(list("abc"), 500, p=[0.6, 0.2, 0.2])}
    )
    profile = build_profile(features_from_frame(ref))
    from drift.decide import FeatureSpec

    for method in ("ks", "cvm", "anderson", "psi", "jensenshannon", "wasserstein"):
        res = run_check(profile, features_from_frame(live), CheckSettings(specs={"x": FeatureSpec(method)}))
        row = next(r for r in res["features"] if r["feature"] == "x")
        assert row["method"] == method and row["drift"] is True, method
    res = run_check(profile, features_from_frame(live), CheckSettings(specs={"c": FeatureSpec("ks")}))
    row = next(r for r in res["features"] if r["feature"] == "c")
    assert row["status"] == "undecided" and "does not apply to a categorical feature" in row["reason"]


def test_evidently_report_for_the_same_window(tmp_path: Path) -> None:
    """CSV feature tables in, the same window out as Evidently's DataDriftPreset report."""
    rng = np.random.default_rng(6)
    pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(list("ab"), 400)}).to_csv(
        tmp_path / "ref.csv", index=False
    )
    live = pd.DataFrame(
        {"x": rng.normal(1.0, size=300), "c": rng.choice(list("ab"), 300), "timestamp": np.arange(300.0)}
    )
    live.to_csv(tmp_path / "live.csv", index=False)
    assert main(["profile", str(tmp_path / "ref.csv"), "-o", str(tmp_path / "p.json")]) == 0
    html, out = tmp_path / "ev.html", tmp_path / "out"
    args = ["--live", str(tmp_path / "live.csv"), "--window", "100s", "--evidently-report", str(html)]
    assert main(["check", "--profile", str(tmp_path / "p.json"), *args, "--out", str(out)]) == 1
    result = json.loads(next(out.glob("*.json")).read_text())
    assert result["evidently_report"] == str(html) and result["window"]["n_live"] == 100
    assert "Drift" in html.read_text()


def test_sequential_state_between_cron_runs(work: Path, tmp_path: Path) -> None:
    state = tmp_path / "seq.json"
    code, result = _check(work, "drift.jsonl", "--sequential-state", str(state), "--arl", "100")
    assert code == 1 and result["settings"]["sequential"] is True and result["sequential"]["alarm"] is True
    code, result = _check(work, "ok.jsonl", "--sequential-state", str(state), "--arl", "100")
    assert code == 0 and result["sequential"]["windows"] == 2 and result["sequential"]["alarms"] == 1
    state.write_text("{}")
    assert _check(work, "ok.jsonl", "--sequential-state", str(state))[0] == 2


def test_non_numeric_values_in_a_numeric_feature_count_as_missing() -> None:
    rng = np.random.default_rng(8)
    profile = build_profile(features_from_frame(pd.DataFrame({"x": rng.normal(size=500)})))
    live = pd.DataFrame(
        {"x": [*rng.normal(size=95).tolist(), "n/a", "n/a", "oops", None, "1e3"]}, dtype=object
    )
    result = run_check(profile, features_from_frame(live))
    rows = {r["feature"]: r for r in result["features"]}
    assert rows["x"]["n_live"] == 96 and rows["x.missing_rate"]["details"]["rate"] == pytest.approx(0.04)
    assert any("3 live values of 'x' are not numbers" in w for w in result["warnings"])


def test_unwritable_outputs_exit_2_naming_the_path(work: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be\n")
    code, _ = _check(work, "ok.jsonl", "--out", str(blocker / "reports"))
    err = capsys.readouterr().err
    assert code == 2 and "cannot write drift results under" in err and "not-a-dir" in err
    assert main(["profile", str(work / "ok.jsonl"), "-o", str(blocker / "p.json")]) == 2
    assert "cannot write the profile" in capsys.readouterr().err
