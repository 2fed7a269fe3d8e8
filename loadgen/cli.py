"""`tollgate load`: run a Locust load test against an OpenAI-compatible server.

Validates the flags, writes nothing but a config until Locust starts, runs Locust headless on
loadgen/locustfile.py (with `--processes N` Locust forks N workers under a master), and prints
the run folder's path as the last line. If Locust dies before writing the folder, a `failed`
(or `interrupted`) summary is written here so a run never ends without one.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loadgen import API_KEY_ENV
from loadgen.early_stop import describe
from loadgen.shapes import SHAPES, ShapeError, parse_shape
from tollgate.contracts.run_folder import STOPPED_EARLY

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GRACE_S = 90.0


def parse_duration(text: str) -> float:
    """`60`, `60s`, `5m`, `1h30m`, `250ms` -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration; use e.g. 30s, 5m, 1h30m")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate load", description="Load an OpenAI-compatible server with Locust."
    )
    p.add_argument("--url", help="server base URL, e.g. http://127.0.0.1:8000 (env TOLLGATE_URL)")
    p.add_argument("--api-key", help="bearer token (env OPENAI_API_KEY); never written to the run folder")
    p.add_argument("--model", help="model name (default: the first of /v1/models)")
    p.add_argument("--endpoint", choices=("chat", "completions"), default="chat")
    p.add_argument(
        "--no-stream", action="store_true", help="non-streaming requests (TTFT = E2E, no ITL/TPOT)"
    )
    load = p.add_mutually_exclusive_group()
    load.add_argument("--users", type=_positive_int, help="closed loop: N concurrent users")
    load.add_argument(
        "--rate", type=_positive_float, help="open loop: total target requests/s (all processes)"
    )
    p.add_argument("--arrival", choices=("poisson", "gamma"), default="poisson")
    p.add_argument(
        "--burstiness", type=_positive_float, default=1.0, help="gamma shape (vLLM convention); 1 = Poisson"
    )
    p.add_argument(
        "--max-concurrency", type=_positive_int, help="open loop: user pool size (default max(64, 4 x rate))"
    )
    p.add_argument(
        "--spawn-rate", type=_positive_float, help="users started per second (default: all at once)"
    )
    p.add_argument("--shape", choices=SHAPES, help="closed-loop load shape over --duration")
    p.add_argument("--shape-opt", action="append", default=[], metavar="KEY=VALUE", help="shape parameter")
    p.add_argument("--input-tokens", default="128", metavar="DIST")
    p.add_argument(
        "--output-tokens", default=None, metavar="DIST", help="default 128 (dataset: its reply lengths)"
    )
    p.add_argument(
        "--tokenizer",
        metavar="DIR|tokenizer.json",
        help="size prompts in this tokenizer's tokens (local files only); default: the server's POST /tokenize "
        "when it has one, else words",
    )
    p.add_argument("--dataset", help="OpenAI chat JSONL (.jsonl) or ShareGPT JSON (.json)")
    p.add_argument(
        "--scenario",
        help="synthetic | shared-prefix | long-context | dataset | multi-turn, or NAME:W,NAME:W mix",
    )
    p.add_argument(
        "--turns", default="3", metavar="DIST", help="multi-turn: user turns per conversation (default 3)"
    )
    p.add_argument(
        "--prefix-count", type=_positive_int, default=4, help="shared-prefix: distinct system prompts"
    )
    p.add_argument(
        "--prefix-tokens",
        type=_positive_int,
        default=512,
        help="shared-prefix: tokens (words without a tokenizer) per system prompt",
    )
    p.add_argument(
        "--context-tokens",
        type=_positive_int,
        default=4000,
        help="long-context: tokens (words without a tokenizer) of context",
    )
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=parse_duration, help="run length, e.g. 60s")
    stop.add_argument("--requests", type=_positive_int, help="total requests over all processes")
    p.add_argument(
        "--processes", type=_positive_int, default=1, help="Locust worker processes on this machine"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="run name (prefix of the run id)")
    p.add_argument("--out", default="reports/runs", help="parent folder of run folders")
    p.add_argument(
        "--recover",
        metavar="RUN_DIR",
        help="write the summary of a run folder whose generator was killed with no summary.json "
        "(from its requests.partial.jsonl), then exit",
    )
    p.add_argument("--timeout", type=parse_duration, default=600.0, help="per-request read timeout")
    p.add_argument(
        "--ignore-eos", action="store_true", help="send ignore_eos (vLLM): always produce max_tokens"
    )
    p.add_argument("--temperature", type=float)
    p.add_argument("--slo", help="SLO TOML whose [goodput] table defines goodput for summary.json")
    dist = p.add_argument_group("distributed (Locust master/worker)")
    dist.add_argument("--master", action="store_true", help="run as master; workers join from other machines")
    dist.add_argument("--expect-workers", type=_positive_int, help="master: workers to wait for")
    dist.add_argument("--worker", action="store_true", help="run as a worker of a remote master")
    dist.add_argument("--master-host", default="127.0.0.1")
    dist.add_argument("--master-port", type=_positive_int, default=5557)
    p.add_argument("--web", action="store_true", help="also serve Locust's web UI while the run lasts")
    p.add_argument("--web-port", type=_positive_int, default=8089)
    p.add_argument("--loglevel", default="WARNING")
    return p


def make_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    # the workload modules (numpy: ~0.1 s) load here, not at import, so `--help` answers at once
    from loadgen.conversations import load_conversations
    from loadgen.tokens import LocalTokenizer
    from loadgen.workloads import WorkloadError, load_dataset, parse_dist, parse_scenario

    url = args.url or os.environ.get("TOLLGATE_URL")
    if not url:
        parser.error("--url is required (or set TOLLGATE_URL)")
    if not re.match(r"^https?://[^/\s]+", url):
        parser.error(f"--url '{url}' must look like http://HOST:PORT")
    if args.users is None and args.rate is None:
        parser.error("choose the load: --users N (closed loop) or --rate R (open loop)")
    if args.duration is None and args.requests is None:
        parser.error("choose when to stop: --duration 60s or --requests N")
    if args.master and args.processes > 1:
        parser.error("--master runs workers elsewhere; drop --processes (or drop --master)")
    try:
        parse_dist(args.input_tokens, "--input-tokens")
        if args.output_tokens:
            parse_dist(args.output_tokens, "--output-tokens")
        scenario = args.scenario or ("dataset" if args.dataset else "synthetic")
        scenarios = parse_scenario(scenario)
        if "dataset" in scenarios and not args.dataset:
            parser.error("--scenario dataset needs --dataset FILE")
        parse_dist(args.turns, "--turns")
        if "multi-turn" in scenarios and args.endpoint != "chat":
            parser.error("--scenario multi-turn sends chat histories; use --endpoint chat")
        if "multi-turn" in scenarios and args.dataset:
            load_conversations(args.dataset)
        if args.dataset:
            load_dataset(args.dataset)
        if args.tokenizer:
            LocalTokenizer(args.tokenizer)  # a bad path is a flag error, before any request
        shape = parse_shape(args.shape, args.users, args.duration, args.shape_opt) if args.shape else None
        goodput = load_goodput(args.slo) if args.slo else {}
    except (WorkloadError, ShapeError, ValueError) as exc:
        parser.error(str(exc))
    workers = args.expect_workers if args.master else args.processes
    run_id = f"{args.name or 'run'}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    pool = args.max_concurrency or (min(2000, max(64, math.ceil(4 * args.rate))) if args.rate else None)
    return {
        "run_id": run_id,
        "name": args.name,
        "run_dir": str(Path(args.out).resolve() / run_id),
        "url": url.rstrip("/"),
        "api_key": args.api_key or os.environ.get("OPENAI_API_KEY") or "",
        "model": args.model,
        "endpoint": args.endpoint,
        "stream": not args.no_stream,
        "users": args.users,
        "rate": args.rate,
        "arrival": args.arrival,
        "burstiness": args.burstiness if args.arrival == "gamma" else 1.0,
        "max_concurrency": pool,
        "shape": None
        if shape is None
        else {
            "kind": shape.kind,
            "users": shape.users,
            "duration_s": shape.duration_s,
            "options": shape.options,
        },
        "input_tokens": args.input_tokens,
        "output_tokens": args.output_tokens or "128",
        "output_tokens_from_flag": args.output_tokens is not None,
        "dataset": str(Path(args.dataset).resolve()) if args.dataset else None,
        "scenario": scenario,
        "turns": args.turns,
        "prefix_count": args.prefix_count,
        "prefix_tokens": args.prefix_tokens,
        "context_tokens": args.context_tokens,
        "duration_s": args.duration,
        "requests": args.requests,
        "processes": workers or 1,
        "seed": args.seed,
        "timeout_s": args.timeout,
        "ignore_eos": args.ignore_eos,
        "temperature": args.temperature,
        "goodput_slo": goodput,
    }


def load_goodput(path: str) -> dict[str, float]:
    from loadgen.slo import SLOError, load_slo

    try:
        return load_slo(path).goodput
    except SLOError as exc:
        raise ValueError(str(exc)) from None


def server_identity(url: str, api_key: str) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    info: dict[str, Any] = {"url": url, "reachable": False, "models": []}
    try:
        resp = httpx.get(f"{url}/v1/models", headers=headers, timeout=5.0)
        info["reachable"] = True
        info["http_server"] = resp.headers.get("server", "")
        if resp.status_code == 200:
            info["models"] = [m.get("id") for m in resp.json().get("data", []) if isinstance(m, dict)]
        else:
            info["error"] = f"/v1/models answered HTTP {resp.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def locust_command(config: dict[str, Any], args: argparse.Namespace) -> list[str]:
    users = config["users"] or config["max_concurrency"]
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--only-summary"]
    if args.web:  # the UI shows the run live; the coordinator closes it when the run folder is written
        cmd += ["--autostart", "--web-host", "127.0.0.1", "--web-port", str(args.web_port)]
    else:
        cmd += ["--headless"]
    cmd += [
        "--host",
        config["url"],
        "--loglevel",
        args.loglevel,
        "--csv",
        str(Path(config["run_dir"]) / "locust"),
    ]
    # the API key never goes on a command line (visible in `ps` to every user): run_locust passes it in
    # the environment, and load_config puts it back
    cmd += ["--tollgate-config", json.dumps({k: v for k, v in config.items() if k != "api_key"})]
    if not config["shape"]:
        cmd += ["-u", str(users), "-r", str(args.spawn_rate or max(users, 1))]
    if args.master:
        cmd += [
            "--master",
            "--expect-workers",
            str(args.expect_workers or 1),
            "--master-bind-port",
            str(args.master_port),
        ]
    elif args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    return cmd


def run_worker(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--loglevel", args.loglevel]
    cmd += ["--master-host", args.master_host, "--master-port", str(args.master_port)]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    return subprocess.call(cmd)


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    if args.recover:
        return recover(Path(args.recover))
    config = make_config(args, parser)
    problem = check_run_dir(Path(config["run_dir"]), args.out)
    if problem:
        print(f"tollgate load: {problem}", file=sys.stderr)
        return 2
    try:
        run_dir, summary = run_load(args, parser, config)
    except OSError as exc:  # the run folder could not be written (disk full, permissions)
        print(f"tollgate load: {write_error(Path(config['run_dir']), exc)}", file=sys.stderr)
        return 1
    print_summary(summary)
    if summary.get(STOPPED_EARLY):
        print(describe(summary[STOPPED_EARLY]), file=sys.stderr)
    print(run_dir)
    if summary.get(STOPPED_EARLY):
        return 2
    return {"complete": 0, "interrupted": 130}.get(summary.get("status"), 1)


def check_run_dir(run_dir: Path, out: str, flag: str = "--out") -> str | None:
    """Create the run folder and prove it writable before any request; returns the problem, if any.
    `flag` names the option that set `out` in the message."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return (
            f"{flag} {out}: cannot create or write the run folder {run_dir}: {reason}"
            f"{f' ({exc.filename})' if exc.filename else ''}; pass {flag} with a writable folder"
        )
    return None


def write_error(run_dir: Path, exc: OSError) -> str:
    """One line for a run folder that could not be written during or after the run."""
    reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return (
        f"could not write the run folder {run_dir}: {reason}"
        f"{f' ({exc.filename})' if exc.filename else ''}; the run's results are incomplete "
        "(free space or fix permissions, or pass another --out, and run again)"
    )


def run_load(
    args: argparse.Namespace, parser: argparse.ArgumentParser, config: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any]]:
    """Run one load test from parsed flags; returns the run folder and its summary."""
    config = config or make_config(args, parser)
    config["server"] = server_identity(config["url"], config["api_key"])
    config["model"] = config["model"] or (config["server"]["models"] or ["default"])[0]
    if "tokens" not in config:
        from loadgen.tokens import resolve

        config["tokens"] = resolve(config, getattr(args, "tokenizer", None)).to_config()
    run_dir = Path(config["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_config(run_dir, config)
    code = run_locust(config, args)
    return run_dir, ensure_summary(run_dir, config, code)


def run_locust(config: dict[str, Any], args: argparse.Namespace) -> int | None:
    env = dict(os.environ)
    if config["api_key"]:
        env[API_KEY_ENV] = config["api_key"]
    if config["shape"]:
        env["TOLLGATE_SHAPE"] = json.dumps(config["shape"])
    env["PYTHONPATH"] = os.pathsep.join([str(LOCUSTFILE.parent.parent), env.get("PYTHONPATH", "")])
    # Locust runs in its own session so a terminal's Ctrl-C reaches it once, through us (below). If we are
    # killed outright, the kernel sends it SIGINT (parent-death signal), so it still stops and writes an
    # `interrupted` run instead of loading the server as an orphan.
    proc = subprocess.Popen(
        locust_command(config, args),
        env=env,
        stdout=sys.stderr,
        start_new_session=True,
        preexec_fn=_interrupt_on_parent_death if sys.platform.startswith("linux") else None,
    )
    limit = None if not config["duration_s"] else config["duration_s"] + GRACE_S + (60 if args.master else 0)
    main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM stops a run like Ctrl-C does (handlers can only be set from the main thread)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main_thread else None
    try:
        try:
            return proc.wait(timeout=limit)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)  # one SIGINT: Locust stops and writes an `interrupted` run
        except subprocess.TimeoutExpired:
            print("tollgate load: Locust overran the duration; interrupting it", file=sys.stderr)
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # Locust and the workers it forked
            proc.wait()
            return None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_on_parent_death() -> None:
    """In the forked child: ask Linux to send SIGINT when the parent dies (prctl PR_SET_PDEATHSIG).

    SIGINT goes back to its default first: a `tollgate load` started in the background by a shell
    (`cmd &`, CI scripts) inherits SIGINT ignored, which exec keeps and Python then leaves ignored, so
    Locust would outlive its parent as an orphan."""
    import ctypes

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT, 0, 0, 0)


def ensure_summary(
    run_dir: Path, config: dict[str, Any], code: int | None, ended_at: float | None = None
) -> dict[str, Any]:
    """summary.json of the run, written from its flushed rows when the generator died without one;
    the window ends at `ended_at` (default now, the moment the death was seen)."""
    path = run_dir / "summary.json"
    if path.exists():
        return json.loads(path.read_text())
    from loadgen.collector import Collector
    from loadgen.report import write_run
    from loadgen.validity import combine

    exited = "killed" if code is None else f"code {code}"
    notes = [f"the load generator exited ({exited}) before writing results"]
    now = time.time() if ended_at is None else ended_at
    status = "interrupted" if code in (None, 130, -signal.SIGINT) else "failed"
    # the rows it had flushed to requests.partial.jsonl stream back (bounded memory), histograms rebuilt
    return write_run(run_dir, Collector(), config, status, now, now, combine({}), notes, recover=True)


RECOVER_QUIET_S = (
    10.0  # --recover refuses a folder whose rows changed more recently (the generator flushes every 2 s)
)


def _write_run_config(run_dir: Path, config: dict[str, Any]) -> None:
    """The run's config, for `--recover` should this process die too (removed with the partial rows)."""
    from loadgen.report import RUN_CONFIG, SECRET_KEYS, write_json_atomic

    write_json_atomic(run_dir / RUN_CONFIG, {k: v for k, v in config.items() if k not in SECRET_KEYS})


def recover(run_dir: Path) -> int:
    """`tollgate load --recover RUN_DIR`: the generator and `tollgate load` both died (OOM killer,
    reboot, SIGKILL of the group), leaving requests.partial.jsonl and no summary.json."""
    from loadgen.report import PARTIAL_ROWS, RUN_CONFIG

    if (run_dir / "summary.json").exists():
        print(
            f"tollgate load: --recover {run_dir}: it already has summary.json; nothing to recover",
            file=sys.stderr,
        )
        return 2
    if not (run_dir / PARTIAL_ROWS).is_file() and not (run_dir / RUN_CONFIG).is_file():
        print(
            f"tollgate load: --recover {run_dir}: no {PARTIAL_ROWS} or {RUN_CONFIG} there; "
            "pass the folder of a run whose generator was killed (reports/runs/<run-id>)",
            file=sys.stderr,
        )
        return 2
    age = time.time() - max(
        (run_dir / n).stat().st_mtime for n in (PARTIAL_ROWS, RUN_CONFIG) if (run_dir / n).exists()
    )
    if age < RECOVER_QUIET_S:  # a live generator appends every 2 s: recovering now would race it
        print(
            f"tollgate load: --recover {run_dir}: its rows were written {age:.0f} s ago, so its generator may "
            f"still be running; stop it, or wait {RECOVER_QUIET_S:.0f} s after it died, then rerun",
            file=sys.stderr,
        )
        return 2
    try:
        config = json.loads((run_dir / RUN_CONFIG).read_text())
    except (OSError, ValueError):  # killed before the config was in place, or an older run folder
        config = {"run_id": run_dir.name, "rate": None, "goodput_slo": {}}
    # the window ends at the last flush, not now: the generator may have died long ago
    summary = ensure_summary(run_dir, config, code=None, ended_at=time.time() - age)
    print_summary(summary)
    print(run_dir)
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['run_id']}: {summary['status']}")
    for column in ("metric", "p50", "p90", "p99", "mean", "count"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for name, block in summary.get("metrics", {}).items():
        table.add_row(name, *[_fmt(block.get(k)) for k in ("p50", "p90", "p99", "mean", "count")])
    console = Console(stderr=False)
    console.print(table)
    req, thr = summary["requests"], summary["throughput"]
    console.print(
        f"completed {req['completed']}  failed {req['failed']}  incomplete {req.get('incomplete', 0)}  {thr['requests_per_s']:.2f} req/s  "
        f"{thr['output_tokens_per_s']:.1f} tok/s  client_bound={summary['validity']['client_bound']}"
    )
    for turn, block in summary.get("turns", {}).items():
        console.print(
            f"  turn {turn}: {block['requests']} requests, prompt {_fmt(block['prompt_tokens_mean'])} tokens, "
            f"TTFT p50 {_fmt(block['ttft_ms']['p50'])} p99 {_fmt(block['ttft_ms']['p99'])} ms"
        )
    for reason, count in summary.get("errors", {}).items():
        console.print(f"  error x{count}: {reason}")


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))
