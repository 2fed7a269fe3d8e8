"""Engine behaviour: streaming, stop conditions, aborts without leaks, timestamps, request validation."""

import asyncio
import random
import threading

import pytest

from reference_server.sampling import SamplingParams

from .helpers import assert_no_leak, micro_engine

pytestmark = pytest.mark.timeout(60)

GREEDY = SamplingParams(max_tokens=40, temperature=0.0, ignore_eos=True)
PROMPT = [256, *b"The quick brown fox"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = micro_engine(tmp_path_factory.mktemp("micro"), num_kv_blocks=128, max_model_len=256)
    eng.start()
    yield eng
    eng.shutdown()
    assert not eng.is_alive()


def run(engine, prompt, params):
    """Collect the outputs of one request through the background loop."""
    outs, done = [], threading.Event()

    def on_output(out):
        outs.append(out)
        if out.finished:
            done.set()

    engine.add_request(f"r{random.random()}", prompt, params, on_output)
    assert done.wait(30)
    return outs


def test_streams_tokens_and_text_incrementally(engine):
    outs = run(engine, PROMPT, GREEDY)
    assert len(outs) == 40 and all(len(o.new_token_ids) == 1 for o in outs)
    assert [o.num_output_tokens for o in outs] == list(range(1, 41))
    assert outs[-1].finished and outs[-1].finish_reason == "length"
    assert not any(o.finished for o in outs[:-1])
    tokens = [t for o in outs for t in o.new_token_ids]
    assert "".join(o.text for o in outs) == engine.tokenizer.decode(tokens)
    t = outs[-1].times
    assert t.arrival <= t.first_scheduled <= t.first_token <= t.last_token <= t.finished
    assert t.num_cached_prompt_tokens == 0 and outs[-1].num_prompt_tokens == len(PROMPT)
    stamps = [s for o in outs for s in o.token_times]
    assert stamps == sorted(stamps) and stamps[0] == t.first_token


def test_stop_string_ends_the_request_and_is_not_returned(engine):
    full = engine.tokenizer.decode(engine.generate_batch([PROMPT], GREEDY)[0])
    stop = full[10:13]
    outs = run(engine, PROMPT, SamplingParams(max_tokens=40, temperature=0.0, ignore_eos=True, stop=[stop]))
    assert outs[-1].finish_reason == "stop"
    text = "".join(o.text for o in outs)
    assert text == full[: full.index(stop)]


def test_stop_token_ids_and_eos(engine):
    tokens = engine.generate_batch([PROMPT], GREEDY)[0]
    stop_id = tokens[5]
    params = SamplingParams(max_tokens=40, temperature=0.0, ignore_eos=True, stop_token_ids=[stop_id])
    got = engine.generate_batch([PROMPT], params)[0]
    assert got == tokens[: tokens.index(stop_id) + 1]
    # min_tokens forbids the stop token until enough tokens exist
    params.min_tokens = tokens.index(stop_id) + 3
    later = engine.generate_batch([PROMPT], params)[0]
    assert len(later) >= params.min_tokens and stop_id not in later[: params.min_tokens]


def test_generate_async_and_early_close_aborts(engine):
    async def consume(n_first):
        got = []
        gen = engine.generate(
            "async-1", PROMPT, SamplingParams(max_tokens=200, temperature=0.0, ignore_eos=True)
        )
        async for out in gen:
            got.append(out)
            if len(got) == n_first:
                break
        await gen.aclose()
        return got

    got = asyncio.run(consume(3))
    assert len(got) == 3 and not got[-1].finished
    for _ in range(300):  # the loop frees the blocks before its next step
        if engine.stats().num_running == 0:
            break
        threading.Event().wait(0.01)
    assert_no_leak(engine)


def test_no_block_leak_after_many_aborted_finished_and_preempted_requests(tmp_path):
    eng = micro_engine(tmp_path, num_kv_blocks=24, max_model_len=128, max_num_seqs=16)
    eng.start()
    rng = random.Random(0)
    finished = threading.Semaphore(0)
    reasons = []

    def on_output(out):
        if out.finished:
            reasons.append(out.finish_reason)
            finished.release()

    n = 60
    for i in range(n):
        prompt = [256] + [rng.randrange(256) for _ in range(rng.randrange(1, 60))]
        params = SamplingParams(max_tokens=rng.randrange(1, 60), temperature=0.8, ignore_eos=True)
        eng.add_request(f"q{i}", prompt, params, on_output)
        if rng.random() < 0.5:
            eng.abort(f"q{rng.randrange(i + 1)}")
    for _ in range(n):
        assert finished.acquire(timeout=60)
    eng.shutdown()
    assert "abort" in reasons and "length" in reasons
    assert eng.stats().num_preemptions > 0
    assert_no_leak(eng)


def test_abort_of_unknown_or_finished_request_is_harmless(engine):
    run(engine, PROMPT, SamplingParams(max_tokens=2, temperature=0.0))
    engine.abort("never-existed")
    assert run(engine, PROMPT, SamplingParams(max_tokens=2, temperature=0.0))[-1].finished


def test_prefix_cache_hits_are_counted(engine):
    prompt = [256] + [7] * 70
    before = engine.stats()
    engine.generate_batch([prompt], SamplingParams(max_tokens=2, temperature=0.0))
    outs = run(engine, prompt, SamplingParams(max_tokens=2, temperature=0.0))
    after = engine.stats()
    assert outs[-1].times.num_cached_prompt_tokens == 64
    assert after.prefix_cache_hits - before.prefix_cache_hits >= 64
    assert after.prefix_cache_queries - before.prefix_cache_queries == 2 * len(prompt)


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "match"),
    [
        ([1] * 250, 10, r"prompt \(250 tokens\) \+ max_tokens \(10\) = 260 exceeds max_model_len=256"),
        ([1, 999], 4, "token id 999 is outside the vocabulary"),
        ([], 4, "prompt is empty"),
    ],
)
def test_bad_requests_are_rejected_with_numbers(engine, prompt, max_tokens, match):
    with pytest.raises(ValueError, match=match):
        engine.add_request("bad", prompt, SamplingParams(max_tokens=max_tokens), lambda out: None)
