"""Bad configuration fails at start-up with a ConfigError that says what to change."""

import json

import pytest

from reference_server.config import EngineConfig
from reference_server.engine import Engine
from reference_server.errors import ConfigError
from reference_server.loader import args_from_config, preset_config

from .helpers import micro_checkpoint, micro_engine


def test_unknown_architecture(tmp_path):
    micro_checkpoint(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["architectures"] = ["GPT2LMHeadModel"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        ConfigError, match="architecture 'GPT2LMHeadModel' is not supported.*LlamaForCausalLM"
    ):
        micro_engine(tmp_path)


def test_missing_safetensors(tmp_path):
    micro_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(
        ConfigError, match=r"no \*\.safetensors weights \(found config.json, pytorch_model.bin\)"
    ):
        micro_engine(tmp_path)


def test_a_missing_or_misshapen_weight_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    micro_checkpoint(tmp_path)
    weights_file = tmp_path / "model.safetensors"
    weights = load_file(weights_file)
    save_file({k: v for k, v in weights.items() if k != "model.layers.1.mlp.up_proj.weight"}, weights_file)
    with pytest.raises(
        ConfigError, match="weight 'layers.1.mlp.up_proj.weight' missing from the safetensors"
    ):
        micro_engine(tmp_path)
    save_file({**weights, "model.norm.weight": weights["model.norm.weight"][:-1]}, weights_file)
    with pytest.raises(
        ConfigError, match=r"weight for 'norm.weight' has shape \(63,\), config.json implies \(64,\)"
    ):
        micro_engine(tmp_path)


def test_missing_directory_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="no such directory.*tiny"):
        Engine(EngineConfig(model=str(tmp_path / "nope"), device="cpu"))
    (tmp_path / "config.json").write_text('{"vocab_size": 3,\n oops}')
    with pytest.raises(ConfigError, match=r"config.json:2: invalid JSON"):
        Engine(EngineConfig(model=str(tmp_path), device="cpu"))


def test_max_model_len_beyond_positions(tmp_path):
    with pytest.raises(
        ConfigError, match="max_model_len=1024 exceeds.*=512; lower --max-model-len to at most 512"
    ):
        micro_engine(tmp_path, max_model_len=1024)


def test_kv_budget_too_small_for_one_sequence(tmp_path):
    with pytest.raises(ConfigError, match=r"gives 4 blocks.*needs 32 blocks; raise --num-kv-blocks to >= 32"):
        micro_engine(tmp_path, num_kv_blocks=4)
    with pytest.raises(ConfigError, match="raise --num-kv-blocks"):
        micro_engine(tmp_path, kv_cache_bytes=1000)


def test_bad_device_dtype_and_block_size(tmp_path):
    with pytest.raises(ConfigError, match="--dtype"):
        micro_engine(tmp_path, dtype="int3")
    with pytest.raises(ConfigError, match="--block-size"):
        micro_engine(tmp_path, block_size=10)
    with pytest.raises(ConfigError, match="either num_kv_blocks or kv_cache_bytes"):
        micro_engine(tmp_path, num_kv_blocks=64, kv_cache_bytes=10**6)


def test_tiny_preset_is_about_25m_parameters():
    args = args_from_config(preset_config("tiny"), "tiny")
    assert 20e6 < args.num_params() < 30e6
