"""The real model: a GGUF file loaded through `gguf` equals transformers loading the same file, and
`tollgate export` writes a checkpoint that transformers loads to the same greedy tokens.

Slow parts are shared per module (one engine, one transformers model, one export): ~40 s on 2 cores.
"""

import json

import pytest
import torch

from reference_server.config import EngineConfig
from reference_server.engine import Engine
from reference_server.errors import ConfigError
from reference_server.export import export_model
from reference_server.gguf_loader import packaged_gguf, read_gguf
from reference_server.sampling import SamplingParams

transformers = pytest.importorskip("transformers")

NEW_TOKENS = 16
STRINGS = [
    "Hello world!",
    "  two leading spaces\n\n\ttab and\r\nCRLF",
    "naïve café — 東京 🚀 Ünïcödé",
    "def f(x):\n    return x**2  # square\n",
    "<|im_start|>user\nhi<|im_end|>\n",
    "1234567 numbers 3.14159 and don't won't I'M",
]


@pytest.fixture(scope="module")
def gguf_path():
    return packaged_gguf("smollm2-135m")


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="smollm2-135m", device="cpu", num_kv_blocks=64, max_model_len=256))


@pytest.fixture(scope="module")
def prompts(engine):
    tok = engine.tokenizer
    chat = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Name a prime number."},
        ],
    ]
    templated = [tok.encode(tok.apply_chat_template(m), add_special_tokens=False) for m in chat]
    return [*templated, tok.encode("The quick brown fox"), tok.encode("def fibonacci(n):")]


@pytest.fixture(scope="module")
def ours(engine, prompts):
    return engine.generate_batch(prompts, SamplingParams(max_tokens=NEW_TOKENS, temperature=0))


def hf_greedy(model, prompts):
    with torch.no_grad():
        return [
            model.generate(torch.tensor([p]), max_new_tokens=NEW_TOKENS, do_sample=False)[
                0, len(p) :
            ].tolist()
            for p in prompts
        ]


def test_metadata_becomes_the_llama_config(engine):
    a = engine.model.args
    assert (a.num_layers, a.hidden_size, a.num_heads, a.num_kv_heads, a.vocab_size) == (30, 576, 9, 3, 49152)
    assert (a.rope_theta, a.rms_norm_eps, a.max_position_embeddings, a.tie_word_embeddings) == (
        100000.0,
        1e-5,
        8192,
        True,
    )
    assert (engine.tokenizer.bos_token_id, engine.tokenizer.eos_token_id) == (1, 2)
    assert "gguf" in engine.tokenizer.chat_template_source


def test_tokenizer_ids_match_transformers(engine, gguf_path):
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    for text in STRINGS:
        ids = engine.tokenizer.encode(text)
        assert ids == hf_tok(text)["input_ids"], text
        assert engine.tokenizer.decode(ids) == hf_tok.decode(ids, skip_special_tokens=True), text
    assert engine.tokenizer.eos_token_id == hf_tok.convert_tokens_to_ids("<|im_end|>")


def test_greedy_matches_transformers_on_the_same_gguf(engine, gguf_path, prompts, ours):
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    ).eval()
    assert hf_greedy(hf, prompts) == ours
    # a trained model, not noise: the chat answer is the known one
    assert "Paris" in engine.tokenizer.decode(ours[0])


def test_export_loads_in_transformers_with_the_same_tokens_and_template(tmp_path, engine, prompts, ours):
    out = export_model("smollm2-135m", tmp_path / "smollm2")
    assert {p.name for p in tmp_path.iterdir()} == {"smollm2"}  # no temporary directory left
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(out))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    rendered = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert rendered == engine.tokenizer.apply_chat_template(messages)
    assert [hf_tok(s)["input_ids"] for s in STRINGS] == [engine.tokenizer.encode(s) for s in STRINGS]
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    assert hf_greedy(hf, prompts[:2]) == ours[:2]
    served = Engine(EngineConfig(model=str(out), device="cpu", num_kv_blocks=16, max_model_len=128))
    assert served.tokenizer.chat_template_source == str(out / "chat_template.jinja")


def test_export_is_idempotent_and_refuses_foreign_directories(tmp_path):
    first = export_model("tiny", tmp_path / "ckpt")
    before = {p.name: p.stat().st_size for p in first.iterdir()}
    export_model("tiny", tmp_path / "ckpt")
    assert {p.name: p.stat().st_size for p in first.iterdir()} == before
    assert {p.name for p in tmp_path.iterdir()} == {"ckpt"}
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        export_model("tiny", foreign)
    assert (foreign / "todo.txt").read_text() == "keep me"


def test_non_llama_or_non_gguf_files_are_refused_clearly(tmp_path):
    import gguf

    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ConfigError, match="architecture 'gpt2' is not supported"):
        export_model(str(path), tmp_path / "out")
    (tmp_path / "text.gguf").write_text("not a gguf")
    with pytest.raises(ConfigError, match="not a readable GGUF file"):
        read_gguf(tmp_path / "text.gguf")
    assert not (tmp_path / "out").exists()
