"""RunConfig: the typed config carries exactly the dict `tollgate load` always wrote (public surface)."""

from __future__ import annotations

import json

import pytest

from loadgen import cli
from loadgen.config import RunConfig
from loadgen.locust_process import locust_command

# the keys (and their order) of the config dict before it was typed; summary.json's `config` block
FLAG_KEYS = [
    "run_id",
    "name",
    "run_dir",
    "url",
    "api_key",
    "model",
    "endpoint",
    "stream",
    "users",
    "rate",
    "arrival",
    "burstiness",
    "max_concurrency",
    "shape",
    "input_tokens",
    "output_tokens",
    "output_tokens_from_flag",
    "dataset",
    "scenario",
    "turns",
    "prefix_count",
    "prefix_tokens",
    "context_tokens",
    "duration_s",
    "requests",
    "processes",
    "seed",
    "timeout_s",
    "ignore_eos",
    "temperature",
    "goodput_slo",
]


def configured(*flags: str) -> tuple[RunConfig, object]:
    parser = cli.build_parser()
    args = parser.parse_args(["--url", "http://127.0.0.1:9/", *flags])
    return cli.make_config(args, parser), args


def test_the_dict_has_the_old_keys_in_order_and_round_trips_through_json(tmp_path):
    config, _ = configured("--rate", "2.5", "--requests", "9", "--arrival", "gamma", "--out", str(tmp_path))
    d = config.to_dict()
    assert list(d) == FLAG_KEYS  # start_at, server, tokens are absent until set, not null
    assert d["url"] == "http://127.0.0.1:9" and d["max_concurrency"] == 64 and d["burstiness"] == 1.0
    config.start_at, config.server, config.tokens = 5.0, {"reachable": True}, {"source": "words"}
    d = config.to_dict()
    assert list(d) == [*FLAG_KEYS, "start_at", "server", "tokens"]
    assert RunConfig.from_dict(json.loads(json.dumps(d))) == config


def test_from_dict_names_missing_keys_and_ignores_unknown_ones(tmp_path):
    d = configured("--users", "2", "--duration", "5s", "--out", str(tmp_path))[0].to_dict()
    assert RunConfig.from_dict({**d, "added_later": 1}).to_dict() == d
    del d["seed"], d["turns"]
    with pytest.raises(ValueError, match="lacks seed, turns; it was written by another tollgate version"):
        RunConfig.from_dict(d)


def test_locust_gets_the_config_without_the_api_key(tmp_path):
    config, args = configured(
        "--users", "3", "--duration", "5s", "--api-key", "s3cret", "--out", str(tmp_path)
    )
    cmd = locust_command(config, args)
    text = cmd[cmd.index("--tollgate-config") + 1]
    assert "s3cret" not in " ".join(cmd)
    assert RunConfig.from_dict({**json.loads(text), "api_key": "s3cret"}) == config
    assert cmd[cmd.index("-u") + 1] == "3" and cmd[cmd.index("--host") + 1] == "http://127.0.0.1:9"


def test_run_load_still_takes_the_old_dict_config(tmp_path):
    """Scripts that built the dict (before RunConfig) and passed it to run_load keep working."""
    config, args = configured("--requests", "2", "--users", "1", "--out", str(tmp_path), "--name", "legacy")
    run_dir, summary = cli.run_load(args, cli.build_parser(), config.to_dict())
    assert run_dir == tmp_path / config.run_id and (run_dir / "summary.json").exists()
    assert summary["config"]["run_id"] == config.run_id and summary["config"]["requests"] == 2


def test_local_processes_take_their_own_loopback_master_port(tmp_path):
    """Two `--processes` runs on one machine must not both bind Locust's default master port 5557."""
    config, args = configured("--users", "4", "--requests", "8", "--processes", "2", "--out", str(tmp_path))
    ports = []
    for _ in range(2):
        cmd = locust_command(config, args)
        port = cmd[cmd.index("--master-bind-port") + 1]
        assert cmd[cmd.index("--master-port") + 1] == port
        assert cmd[cmd.index("--master-bind-host") + 1] == "127.0.0.1"
        ports.append(int(port))
    assert 5557 not in ports
