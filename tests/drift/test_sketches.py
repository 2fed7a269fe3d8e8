"""Sketches merge like the data they summarise; profiles round-trip and refuse other schemas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drift.features import features_from_frame
from drift.profile import ProfileError, build_profile, load_profile, save_profile
from drift.sketches import QUANTILES, CategoricalSketch, NumericSketch


def test_numeric_merge_matches_whole_data() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.lognormal(size=30_000), rng.normal(5, 1, size=20_000)
    merged = NumericSketch.from_values(a).merge(NumericSketch.from_values(b))
    whole = np.concatenate([a, b])
    assert merged.n == whole.size and merged.std == pytest.approx(whole.std(), rel=1e-9)
    assert (merged.min, merged.max) == (whole.min(), whole.max())
    grid = np.quantile(whole, np.linspace(0.001, 0.999, 200))
    empirical = np.searchsorted(np.sort(whole), grid, side="right") / whole.size
    assert np.abs(merged.cdf(grid) - empirical).max() <= 2.0 / QUANTILES


def test_exact_mode_stays_exact_across_merge_and_handles_missing() -> None:
    a = NumericSketch.from_values(np.array([1.0, 2.0, 2.0, np.nan]))
    b = NumericSketch.from_values(np.array([2.0, 3.0, np.nan, np.nan]))
    m = a.merge(b)
    assert m.exact and m.values.tolist() == [1.0, 2.0, 3.0] and m.counts.tolist() == [1, 3, 1]
    assert (m.n, m.n_missing) == (5, 3)
    assert m.cdf(np.array([2.0]), "left")[0] == pytest.approx(0.2)
    assert m.cdf(np.array([2.0]))[0] == pytest.approx(0.8)


def test_categorical_merge_and_unseen_rate() -> None:
    a = CategoricalSketch.from_values(["x", "x", "y", None])
    b = CategoricalSketch.from_values(["y", "z"])
    m = a.merge(b)
    assert m.counts == {"x": 2, "y": 2, "z": 1} and m.n == 5 and m.n_missing == 1
    assert m.unseen_rate == pytest.approx(1 / 5)  # Good-Turing: one singleton in five rows


def test_sharded_profile_equals_whole_profile() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=4000), "c": rng.choice(list("abc"), 4000)})
    whole = build_profile(features_from_frame(df), reservoir_capacity=500)
    shards = build_profile(
        [features_from_frame(df.iloc[:1500]), features_from_frame(df.iloc[1500:])], reservoir_capacity=500
    )
    assert shards.n_rows == whole.n_rows == 4000
    assert shards.features["c"].counts == whole.features["c"].counts
    assert shards.features["x"].mean == pytest.approx(whole.features["x"].mean)
    assert shards.reservoir.size == 500 and shards.reservoir.n_seen == 4000


def test_profile_round_trip_and_schema_errors(tmp_path) -> None:
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {"x": rng.normal(size=3000), "sketch_0": rng.random(3000), "sketch_1": rng.random(3000)}
    )
    path = save_profile(build_profile(features_from_frame(df), reservoir_capacity=100), tmp_path / "p.json")
    loaded = load_profile(path)
    assert loaded.kinds() == {"x": "numeric", "prompt_sketch": "sketch"}
    assert loaded.reservoir.vectors.shape == (100, 2)
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="schema_version 99 is not supported.*tollgate drift profile"):
        load_profile(path)
    path.write_text("{not json")
    with pytest.raises(ProfileError, match="not a readable JSON profile"):
        load_profile(path)
    with pytest.raises(ProfileError, match="no such profile"):
        load_profile(tmp_path / "missing.json")


def test_profile_streams_files_in_chunks(tmp_path) -> None:
    from drift.features import iter_feature_chunks, load_features
    from drift.synthetic import capture_log

    rows = capture_log(700, seed=5)
    path = tmp_path / "capture.jsonl"
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in rows[:350])
        + "{oops\n"
        + "".join(json.dumps(r) + "\n" for r in rows[350:])
    )
    chunks = list(iter_feature_chunks(path, chunk_rows=200))
    assert [len(c) for c in chunks] == [200, 200, 200, 100] and sum(c.n_skipped for c in chunks) == 1
    streamed = build_profile(iter(chunks), reservoir_capacity=100)
    whole = build_profile(load_features(path), reservoir_capacity=100)
    assert streamed.features["system_fingerprint"].counts == whole.features["system_fingerprint"].counts
    assert streamed.features["max_tokens"].counts.tolist() == whole.features["max_tokens"].counts.tolist()
    assert streamed.n_rows == whole.n_rows == 700
    table = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(1000.0)}).to_csv(table, index=False)
    assert [len(c) for c in iter_feature_chunks(table, chunk_rows=400)] == [400, 400, 200]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ProfileError, match="no usable rows"):
        build_profile(iter_feature_chunks(empty))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_statistics_are_exact_for_an_exact_sketch(seed: int) -> None:
    """With value counts (ties, live values the reference never had) KS and Wasserstein equal scipy's."""
    from scipy import stats

    from drift.detectors import NumericGrid

    rng = np.random.default_rng(seed)
    ref = rng.poisson(30, 4000).astype(float)
    live = np.concatenate([rng.poisson(31, 500), rng.normal(31, 5, 100)])
    grid = NumericGrid.compute(NumericSketch.from_values(ref), np.sort(live))
    assert grid.ks == pytest.approx(stats.ks_2samp(ref, live).statistic, abs=1e-12)
    assert grid.wasserstein == pytest.approx(stats.wasserstein_distance(ref, live), rel=1e-9)


def test_streamed_tables_embed_like_whole_files(tmp_path) -> None:
    """--embeddings on a CSV: the chunked reader (profile building) embeds like the whole-file reader."""
    from drift.embeddings import EmbeddingsUnavailable
    from drift.features import iter_feature_chunks, load_features

    table = tmp_path / "prompts.csv"
    pd.DataFrame({"text": ["hello world", "another prompt here", "a third one"]}).to_csv(table, index=False)
    try:
        whole = load_features(table, embed=True)
    except EmbeddingsUnavailable:  # the optional extra is not installed: both must say so
        with pytest.raises(EmbeddingsUnavailable):
            list(iter_feature_chunks(table, chunk_rows=2, embed=True))
        return
    chunks = list(iter_feature_chunks(table, chunk_rows=2, embed=True))
    assert [c.vector_name for c in chunks] == [whole.vector_name] * 2
    # batches of 2 and of 3 pad differently: float32 noise only
    np.testing.assert_allclose(np.vstack([c.vectors for c in chunks]), whole.vectors, atol=1e-6)
