"""`tollgate ab`: interleaving in time is what keeps a machine's slow period from reading as a difference.

Two identical mock servers on loopback; halfway through each experiment (counted in requests the
two servers have received together) the machine "degrades": both servers slow down alike, as
co-located servers do under a CPU hog. The degradation is a shared slow period (POST /mock/config
to both) rather than a real hog, because on a shared 2-core test box a hog's effect is neither
deterministic nor confined to this test. Run sequentially, all of B lands in the slow period and
B looks worse (a false difference); run concurrently, each side gets the same half of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from loadgen.mock_server import start_mock_server
from release.ab import compare_runs, verdict
from release.stats import compare_samples, correct
from tests.release.helpers import front_door

REPO = Path(__file__).resolve().parents[2]
FAST = {"ttft_ms": 20.0, "itl_ms": 2.0}
SLOW = {"ttft_ms": 150.0, "itl_ms": 10.0}
PER_SIDE = 40


@pytest.fixture(scope="module")
def twins():
    with (
        start_mock_server("--ttft-ms", "20", "--itl-ms", "2") as a,
        start_mock_server("--ttft-ms", "20", "--itl-ms", "2") as b,
    ):
        yield a, b


class SlowPeriod:
    """Slows every server once they have received `after` requests together, until stopped."""

    def __init__(self, servers, after: int) -> None:
        self.servers, self.after = servers, after
        self.stop = threading.Event()
        self.started = False
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _set(self, figures: dict) -> None:
        for s in self.servers:
            httpx.post(s.url + "/mock/config", json=figures, timeout=5).raise_for_status()

    def _watch(self) -> None:
        while not self.stop.wait(0.02):
            seen = sum(httpx.get(s.url + "/mock/truth", timeout=5).json()["requests"] for s in self.servers)
            if seen >= self.after:
                self._set(SLOW)
                self.started = True
                return

    def __enter__(self) -> SlowPeriod:
        for s in self.servers:
            httpx.post(s.url + "/mock/reset", timeout=5).raise_for_status()
        self._set(FAST)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        self._set(FAST)


def ab(a, b, out: Path, *extra: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tollgate", "ab", "--url-a", a.url, "--url-b", b.url, "--ab-out", str(out)]
        + ["--rate", "10", "--requests", str(PER_SIDE), "--output-tokens", "8", "--input-tokens", "16"]
        + ["--seed", "7", "--start-delay", "6s", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    folder = Path(proc.stdout.strip().splitlines()[-1])
    return proc.returncode, json.loads((folder / "ab.json").read_text()), proc.stdout + proc.stderr


def test_sequential_flags_a_false_difference_that_the_interleaved_run_does_not(twins, tmp_path):
    a, b = twins
    with SlowPeriod(twins, after=PER_SIDE) as slow:
        code, seq, log = ab(a, b, tmp_path, "--order", "sequential")
    assert slow.started, log
    assert (code, seq["verdict"]) == (1, "a-better"), log
    assert seq["metrics"]["ttft_ms"]["better"] == "a" and seq["metrics"]["ttft_ms"]["cliffs_delta"] > 0.9

    with SlowPeriod(twins, after=PER_SIDE) as slow:
        code, conc, log = ab(a, b, tmp_path)
    assert slow.started, log
    assert (code, conc["verdict"]) == (0, "no-difference"), log
    ttft = conc["metrics"]["ttft_ms"]
    # both sides really saw the slow period: a bimodal TTFT on each side, and no shift between them
    frames = {s: pd.read_parquet(Path(conc[f"run_{s}"]) / "requests.parquet") for s in "ab"}
    split = (FAST["ttft_ms"] + SLOW["ttft_ms"]) / 2
    for frame in frames.values():
        slow_share = (frame["ttft_ms"] > split).mean()
        assert 0.25 <= slow_share <= 0.75, log
    assert abs(ttft["relative_shift"]) < 0.05 and not ttft["significant"], log
    # the same seeded workload on both sides: request i has the same prompt and output lengths
    key = ["request_id", "prompt_tokens", "output_tokens"]
    by_index = {
        s: f[key].assign(i=f["request_id"].str.rsplit("-", n=1).str[-1]).set_index("i")
        for s, f in frames.items()
    }
    joined = by_index["a"].join(by_index["b"], lsuffix="_a", rsuffix="_b", how="inner")
    assert len(joined) == PER_SIDE, log
    assert (joined["prompt_tokens_a"] == joined["prompt_tokens_b"]).all()


def test_ab_refuses_flags_it_sets_and_unreachable_servers(tmp_path, capsys):
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    base = [
        "ab",
        "--url-a",
        dead,
        "--url-b",
        dead,
        "--ab-out",
        str(tmp_path),
        "--rate",
        "1",
        "--requests",
        "1",
    ]
    code, err = front_door([*base, "--url", dead], capsys)
    assert code == 2 and "--url is set by tollgate ab" in err
    code, err = front_door(base, capsys)
    assert code == 2 and "server A at http://127.0.0.1:9 is unreachable" in err and "Traceback" not in err
    code, err = front_door([*base, "--start-delay", "1m"], capsys)
    assert code == 2 and "--start-delay must be between 0 and 20s" in err
    code, err = front_door([*base, "--min-samples", "0"], capsys)
    assert code == 2 and "--min-samples 0 must be at least 1" in err


def _frame(ttft, ok=None):
    n = len(ttft)
    ok = np.ones(n, bool) if ok is None else ok
    t = np.arange(n, dtype=float) * 0.1
    return pd.DataFrame(
        {
            "ttft_ms": ttft,
            "itl_mean_ms": np.full(n, 2.0),
            "tpot_ms": np.full(n, 2.0),
            "e2e_ms": np.asarray(ttft) + 14,
            "send_s": t,
            "end_s": t + 0.05,
            "output_tokens": np.full(n, 8),
            "ok": ok,
            "error": np.where(ok, "", "HTTP 500"),
            "request_id": [f"run-{i}" for i in range(n)],
        }
    )


def test_verdicts_from_per_metric_results():
    rng = np.random.default_rng(1)
    base = rng.normal(50, 2, 200)
    complete = {"a": {"status": "complete", "validity": {}}, "b": {"status": "complete", "validity": {}}}
    faster_b = compare_runs(_frame(base), _frame(base * 0.7))
    assert verdict(faster_b, complete)[0] == "b-better" and faster_b["ttft_ms"]["better"] == "b"
    # a small but significant shift below --min-effect is not a difference
    tiny = compare_runs(_frame(base), _frame(base * 0.98))
    assert tiny["ttft_ms"]["p_adjusted"] < 0.05 and verdict(tiny, complete)[0] == "no-difference"
    # B faster on TTFT but failing more: a trade-off, not a winner
    errors = np.arange(200) % 5 != 0
    mixed = compare_runs(_frame(base), _frame(base * 0.7, ok=errors))
    assert mixed["error_rate"]["better"] == "a" and verdict(mixed, complete)[0] == "inconclusive"
    few = compare_runs(_frame(base[:5]), _frame(base[:5]))
    assert verdict(few, complete)[0] == "inconclusive"
    failed = {**complete, "b": {"status": "failed", "notes": ["no request completed"]}}
    assert verdict(faster_b, failed)[0] == "inconclusive"


def test_paired_slots_see_a_shift_that_spread_between_requests_hides():
    """Request i of A and of B went out together: a consistent 8% slowdown of B shows pair by pair
    even though request lengths spread latencies over 10x; as two samples it drowns."""
    rng = np.random.default_rng(3)
    a = rng.lognormal(4, 0.8, 60)
    b = a * 1.08 + rng.normal(0, 0.5, 60)
    assert compare_runs(_frame(a), _frame(b))["ttft_ms"]["significant"] is False
    paired = compare_runs(_frame(a), _frame(b), paired=True)["ttft_ms"]
    assert paired["test"] == "wilcoxon-signed-rank" and paired["better"] == "a"
    assert paired["relative_shift"] > 0.05 and paired["rank_biserial"] > 0.9
    same = compare_runs(_frame(a), _frame(a + rng.normal(0, 0.5, 60)), paired=True)["ttft_ms"]
    assert not same["significant"]


def test_holm_correction_is_applied_across_metrics():
    rng = np.random.default_rng(2)
    results = {f"m{i}": compare_samples(rng.normal(10, 1, 40), rng.normal(10.6, 1, 40)) for i in range(6)}
    raw = {n: r["p_value"] for n, r in results.items()}
    correct(results)
    smallest = min(raw, key=raw.get)
    assert results[smallest]["p_adjusted"] == pytest.approx(min(1.0, raw[smallest] * 6))
