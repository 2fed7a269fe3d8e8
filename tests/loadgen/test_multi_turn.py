"""The multi-turn scenario: conversations resend their growing history; per-turn TTFT in the summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from loadgen.conversations import Dialog, conversation, load_conversations
from loadgen.workloads import Dist, Workload, parse_scenario


def test_synthetic_conversations_are_a_function_of_seed_and_index():
    def make(seed):
        return Workload(scenarios=parse_scenario("multi-turn"), turns=Dist("uniform", 2, 5), seed=seed)

    a, b = make(4), make(4)
    assert [conversation(a, i) for i in range(10)] == [conversation(b, i) for i in range(10)]
    assert conversation(a, 1) != conversation(make(5), 1)
    assert {len(conversation(a, i).turns) for i in range(40)} == {2, 3, 4, 5}
    assert a.request(0).turn == 1  # the request asks the user to start a conversation


def test_dialog_resends_history_with_the_servers_replies_and_stops_on_failure():
    dialog = Dialog(conversation(Workload(turns=Dist("fixed", 3), input_tokens=Dist("fixed", 4)), 0))
    first = dialog.next_spec()
    assert [m["role"] for m in first.messages] == ["user"] and first.turn == 1 and first.input_tokens == 4
    dialog.answered(first, True, "a reply")
    second = dialog.next_spec()
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"]
    assert second.messages[1]["content"] == "a reply" and second.turn == 2 and second.input_tokens is None
    dialog.answered(second, False, "")
    assert dialog.done and dialog.turn == 2


def test_sharegpt_conversations_replay_their_turns(tmp_path):
    path = tmp_path / "sg.json"
    turns = [
        {"from": "system", "value": "be kind"},
        {"from": "human", "value": "q1"},
        {"from": "gpt", "value": "one two"},
        {"from": "human", "value": "q2"},
        {"from": "gpt", "value": "three"},
        {"from": "human", "value": "q3"},
    ]
    path.write_text(json.dumps([{"conversations": turns}]))
    (replay,) = load_conversations(path)
    assert [(t.content, t.max_tokens) for t in replay.turns] == [("q1", 2), ("q2", 1), ("q3", None)]
    workload = Workload(scenarios={"multi-turn": 1.0}, dataset=[([], None)], conversations=[replay])
    dialog = Dialog(conversation(workload, 7))
    spec = dialog.next_spec()
    assert spec.messages == [{"role": "system", "content": "be kind"}, {"role": "user", "content": "q1"}]
    assert spec.max_tokens == 2


@pytest.mark.timeout(90)
def test_multi_turn_run_reports_ttft_by_turn(tmp_path):
    from loadgen.mock_server import start_mock_server
    from tests.loadgen.test_load_e2e import load

    with start_mock_server("--ttft-ms", "2", "--itl-ms", "1") as mock:
        code, run_dir, summary = load(
            tmp_path,
            *f"--url {mock.url} --users 2 --requests 12 --scenario multi-turn --turns 3 --seed 9".split(),
        )
    assert code == 0 and summary["requests"]["completed"] == 12
    turns = summary["turns"]
    counts = [turns[t]["requests"] for t in ("1", "2", "3")]
    assert set(turns) == {"1", "2", "3"} and sum(counts) == 12  # which user takes which slot is timing
    assert counts == sorted(counts, reverse=True)  # a later turn never outnumbers an earlier one
    assert turns["1"]["ttft_ms"]["count"] == counts[0]
    # each turn resends the history: the mock counts prompt words, 16 per user turn plus the replies
    means = [turns[t]["prompt_tokens_mean"] for t in ("1", "2", "3")]
    assert means[0] == 16 and means[0] < means[1] < means[2]
    frame = pd.read_parquet(run_dir / "requests.parquet")
    assert sorted(frame["turn"].unique()) == [1, 2, 3]
    assert "TTFT by turn" in (run_dir / "report.html").read_text()
