"""Scheduler: admission under budgets, chunked prefill, preemption by recompute, no starvation."""

import pytest

from reference_server.block_manager import BlockManager
from reference_server.sampling import SamplingParams
from reference_server.scheduler import Scheduler
from reference_server.sequence import Sequence, Status

from .helpers import assert_no_leak, micro_engine


def make(n_blocks: int, max_seqs: int = 8, budget: int = 64, bs: int = 4) -> Scheduler:
    return Scheduler(BlockManager(n_blocks, bs), max_seqs, budget)


def fake_step(sched: Scheduler, batch: list[tuple[Sequence, int]]) -> None:
    """What the engine does after the model ran: advance, append a token when the prompt is done."""
    for seq, n in batch:
        seq.num_computed_tokens += n
        if seq.num_computed_tokens == len(seq):
            seq.token_ids.append(7)


def add(sched: Scheduler, rid: str, n: int) -> Sequence:
    s = Sequence(rid, list(range(n)), SamplingParams())
    sched.add(s)
    return s


def test_admission_respects_token_budget_and_chunks_prefill():
    sched = make(64, budget=64)
    a, b, c = (add(sched, x, 40) for x in "abc")
    batch = sched.schedule()
    assert [(s.request_id, n) for s, n in batch] == [("a", 40), ("b", 24)]
    assert c.status is Status.WAITING
    fake_step(sched, batch)
    batch = sched.schedule()
    # a decodes first, b finishes its prefill, c gets the remaining budget
    assert [(s.request_id, n) for s, n in batch] == [("a", 1), ("b", 16), ("c", 40)]


def test_max_num_seqs_caps_running():
    sched = make(64, max_seqs=2)
    for x in "abc":
        add(sched, x, 4)
    batch = sched.schedule()
    assert [s.request_id for s, _ in batch] == ["a", "b"]
    fake_step(sched, batch)
    sched.finish(batch[0][0], "length")
    assert [s.request_id for s, _ in sched.schedule()] == ["b", "c"]


def test_preemption_newest_first_and_resume():
    sched = make(4, budget=64, bs=4)  # 16 tokens of KV in total
    old, new = add(sched, "old", 7), add(sched, "new", 7)
    fake_step(sched, sched.schedule())  # prefill: both hold 2 blocks (all 4), 8 tokens each
    fake_step(sched, sched.schedule())  # decode into the 8th slot: 9 tokens each
    fake_step(sched, sched.schedule())  # the 9th token needs a 3rd block: the newest yields
    assert new.status is Status.WAITING and old.status is Status.RUNNING
    assert sched.num_preemptions == 1 and new.num_preemptions == 1
    assert new.block_table == [] and new.num_computed_tokens == 0
    assert sched.waiting[0] is new  # back at the front of the queue
    sched.finish(old, "length")
    batch = sched.schedule()
    assert batch[0][0] is new and batch[0][1] == len(new) - new.num_computed_tokens


def test_waiting_is_fifo_no_overtaking():
    """A big request at the head is not overtaken by small later ones, so it cannot starve."""
    sched = make(6, budget=64, bs=4)
    small = add(sched, "small", 12)  # 3 blocks
    fake_step(sched, sched.schedule())
    big = add(sched, "big", 16)  # needs 4 blocks, only 3 free
    later = add(sched, "later", 2)  # would fit, but must wait behind big
    assert [s for s, _ in sched.schedule()] == [small]
    assert big.status is Status.WAITING and later.status is Status.WAITING
    sched.finish(small, "length")
    assert [s for s, _ in sched.schedule()][0] is big


@pytest.mark.timeout(60)
def test_engine_preempts_under_kv_pressure_and_everyone_finishes(tmp_path):
    # 16 blocks x 16 tokens; 6 requests growing to 60 tokens need 24 blocks at once
    engine = micro_engine(tmp_path, num_kv_blocks=16, max_model_len=256)
    params = SamplingParams(max_tokens=44, temperature=0.0, ignore_eos=True)
    prompts = [[1 + i] * 16 for i in range(6)]
    outs = engine.generate_batch(prompts, params)
    assert [len(o) for o in outs] == [44] * 6
    assert engine.stats().num_preemptions > 0
    alone = micro_engine(tmp_path, num_kv_blocks=64, max_model_len=256).generate_batch(prompts, params)
    assert outs == alone  # recompute after preemption gives the same greedy tokens
    assert_no_leak(engine)
