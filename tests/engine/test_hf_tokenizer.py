"""A checkpoint's own tokenizer.json and chat template are used when present."""

import json

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from reference_server.errors import ConfigError
from reference_server.sampling import SamplingParams
from reference_server.tokenizer import HFTokenizer, NoChatTemplate, load_tokenizer

from .helpers import micro_checkpoint, micro_engine

TEMPLATE = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf-tok")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["hello world, hello tollgate"] * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    tok.save(str(path / "tokenizer.json"))
    config = {"bos_token": "<s>", "eos_token": {"content": "</s>"}, "chat_template": TEMPLATE}
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    micro_checkpoint(path, vocab_size=320, bos_token_id=0, eos_token_id=1)
    return micro_engine(path, num_kv_blocks=64)


def test_checkpoint_tokenizer_and_special_tokens(engine):
    tok = engine.tokenizer
    assert isinstance(tok, HFTokenizer)
    ids = tok.encode("hello world ✓")
    assert ids[0] == tok.bos_token_id == 0 and tok.eos_token_id == 1
    assert tok.encode("hello", add_special_tokens=False)[0] != tok.bos_token_id
    assert tok.decode(ids) == "hello world ✓"
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}]) == "[user]hi[assistant]"


def test_streamed_text_equals_decoded_tokens(engine):
    params = SamplingParams(max_tokens=30, temperature=1.0, seed=3, ignore_eos=True)
    outs = []
    engine.add_request("t", engine.tokenizer.encode("hello"), params, outs.append)
    while not (outs and outs[-1].finished):
        engine.step()
    texts = [o.text for o in outs]
    tokens = [t for o in outs for t in o.new_token_ids]
    assert len(tokens) == 30
    assert "".join(texts) == engine.tokenizer.decode(tokens)


def test_chat_template_jinja_wins_and_a_checkpoint_without_one_has_none(tmp_path):
    bare = micro_checkpoint(tmp_path / "bare")
    tok = load_tokenizer(bare, {})
    assert tok.chat_template is None and tok.chat_template_source == "none"
    with pytest.raises(NoChatTemplate, match="--chat-template"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])
    (bare / "tokenizer_config.json").write_text(json.dumps({"chat_template": "old"}))
    assert load_tokenizer(bare, {}).chat_template == "old"
    (bare / "chat_template.jinja").write_text(TEMPLATE)
    tok = load_tokenizer(bare, {})
    assert tok.chat_template_source == str(bare / "chat_template.jinja")
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}]) == "[user]hi[assistant]"


def test_chat_template_flag_overrides_and_names_a_missing_file(tmp_path):
    path = micro_checkpoint(tmp_path / "ckpt")
    (tmp_path / "t.jinja").write_text(TEMPLATE)
    engine = micro_engine(path, num_kv_blocks=32, chat_template=str(tmp_path / "t.jinja"))
    assert engine.tokenizer.apply_chat_template([{"role": "user", "content": "x"}]) == "[user]x[assistant]"
    assert engine.tokenizer.chat_template_source == f"--chat-template {tmp_path / 't.jinja'}"
    with pytest.raises(ConfigError, match="no such file"):
        micro_engine(path, num_kv_blocks=32, chat_template=str(tmp_path / "missing.jinja"))
