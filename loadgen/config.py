"""The run's configuration: one typed record from the flags to every Locust process and the run folder.

`tollgate load` builds a `RunConfig` from its flags (loadgen/configure.py), adds what it learns before
the first request (`server`, `tokens`; `tollgate ab` adds `start_at`), and hands it on as a dict
(`to_dict`): on Locust's command line (`--tollgate-config`, without the API key), into
config.partial.json (for `--recover`) and into summary.json's `config` block. That dict is public
surface (gate, sweep, dashboards and old run folders read it): its keys, their order and their JSON
are those of the dict `tollgate load` wrote before this type existed, so a field is only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# set after the flags are read; absent from the dict (not null) until they are
OPTIONAL_FIELDS = ("start_at", "server", "tokens")


@dataclass
class RunConfig:
    run_id: str
    name: str | None
    run_dir: str
    url: str
    api_key: str  # never written: the file writers drop report.SECRET_KEYS, Locust gets it in its env
    model: str | None  # None until run_load asks the server (/v1/models)
    endpoint: str  # "chat" | "completions"
    stream: bool
    users: int | None  # closed loop
    rate: float | None  # open loop: total requests/s over all processes
    arrival: str
    burstiness: float
    max_concurrency: int | None  # open loop: the user pool
    shape: dict[str, Any] | None  # loadgen.shapes.ShapeSpec's fields
    input_tokens: str  # a distribution (loadgen.workloads.parse_dist)
    output_tokens: str
    output_tokens_from_flag: bool
    dataset: str | None  # absolute path
    scenario: str
    turns: str
    prefix_count: int
    prefix_tokens: int
    context_tokens: int
    duration_s: float | None
    requests: int | None
    processes: int
    seed: int
    timeout_s: float
    ignore_eos: bool
    temperature: float | None
    goodput_slo: dict[str, float]
    start_at: float | None = None  # unix time of the arrival schedule's zero (`tollgate ab`)
    server: dict[str, Any] | None = None  # loadgen.probe.server_identity
    tokens: dict[str, Any] | None = None  # loadgen.tokens.TokenPlan.to_config

    def to_dict(self) -> dict[str, Any]:
        """The config as the run folder and Locust's `--tollgate-config` carry it."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in OPTIONAL_FIELDS:
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The config back from `to_dict`'s JSON. Keys this version does not know are ignored (a newer
        master's); a missing one is an error naming it."""
        known = {f.name for f in fields(cls)}
        missing = [n for n in known - set(OPTIONAL_FIELDS) if n not in data]
        if missing:
            raise ValueError(
                f"run config lacks {', '.join(sorted(missing))}; it was written by another tollgate "
                "version: run the master, the workers and `tollgate load` from the same version"
            )
        return cls(**{k: v for k, v in data.items() if k in known})
