"""`tollgate demo`: the whole suite end to end on embedded defaults, in a few minutes.

Starts, as supervised children on free 127.0.0.1 ports: the reference server (the real SmolLM2-135M
model by default, `--model tiny` for the fast random-weight preset; capture on, with prompt text), a local Slack-compatible receiver, `tollgate drift watch` on the capture log, the monitor
(scraping the server and the drift watcher, alerting into the receiver) and the dashboard. The drift
profile comes from the embedded training prompts (tollgate/demo_data). Then three Locust phases
through `tollgate load`: steady (training-like traffic), shifted (longer prompts on other topics)
and overload (open loop at several times the capacity measured in the shifted phase). Gates the
steady run against the shipped SLO file and the overload run against it with the steady run as
baseline, checks the steady and shifted capture windows for drift, and shows the alerts that fired.
Before the load, one chat question shows the model's answer (a real one on the real model).

Everything lands in one self-contained folder, <out>/demo/<timestamp>/ (runs/, drift/, monitor.db,
logs/), which is also the dashboard's data folder. Ctrl-C (or SIGTERM) at any point stops every
process the demo started. Exit codes: 0 every step ran, 1 a step failed, 2 bad flags or output
folder, 3 a component is not built, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from tollgate.contracts.alert_receivers import RECEIVER_ENVS, SLACK_ENV
from tollgate.contracts.durations import duration_type
from tollgate.contracts.files import write_json_atomic
from tollgate.contracts.run_folder import read_summary
from tollgate.demo_data import DATA_DIR
from tollgate.demo_report import DemoResult, print_report, receiver_messages, store_alerts
from tollgate.supervise import Child, ChildFailed, Interrupted, Supervisor, free_port, tail

EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_NOT_BUILT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# component -> module that must exist for its steps to run
COMPONENTS = {
    "server": "reference_server.cli",
    "load": "loadgen.cli",
    "gate": "loadgen.gate_cli",
    "monitor": "monitors.cli",
    "receiver": "monitors.webhook_receiver",
    "drift": "drift.cli",
    "dashboard": "dashboards.cli",
}
REQUIRED = ("server", "load")
PHASE_SHARE = {"steady": 0.35, "shifted": 0.30, "overload": 0.35}
OUTPUT_TOKENS = "8"
OVERLOAD_FACTOR = 8.0
DEFAULT_MODEL = "smollm2-135m"
SAMPLE_QUESTION = "What is the capital of France?"


parse_duration = duration_type(minimum=15, maximum=3600)  # the demo's phases need 15s to 1h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tollgate demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=parse_duration, default=120.0, help="total load time (default 120s)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="reports root (default reports)")
    p.add_argument("--keep-running", action="store_true", help="leave the services up until Ctrl-C")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the Streamlit dashboard")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"what the reference server runs (default {DEFAULT_MODEL}, a real model; 'tiny' is the fast "
        "random-weight preset); any `tollgate serve --model` value",
    )
    return p


def missing_components() -> dict[str, str]:
    missing = {}
    for name, module in COMPONENTS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing[name] = module
    return missing


def tollgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "tollgate", *args]


class Demo:
    """One demo run: owns the supervisor, the run folder and the result being built."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        # Each demo is self-contained: its folder is the data root the dashboard reads (runs/, drift/,
        # monitor.db), so no state (e.g. an old outbox) leaks from one demo into the next.
        self.folder = args.out / "demo" / time.strftime("%Y%m%d-%H%M%S")
        self.root = self.folder
        self.started = time.time()
        self.result = DemoResult(self.folder, started_at=self.started)
        self.missing = missing_components()
        # Never inherit the user's real webhooks: demo alerts go to the local receiver only.
        self.sup = Supervisor(self.folder / "logs", drop_env=RECEIVER_ENVS)
        self.drift_metrics = ""
        self.server_url = ""
        self.receiver: Child | None = None
        self.phase_windows: dict[str, tuple[float, float]] = {}

    # helpers -------------------------------------------------------------------------------
    def step(self, name: str, component: str, fn: Callable[[], tuple[str, str]]) -> bool:
        """Run one step, record its result; returns False when it failed."""
        if component in self.missing:
            self.result.add(name, "skipped", f"{self.missing[component]} is not built yet")
            self.console.print(f"[yellow]-[/] {name}: skipped ({self.missing[component]} is not built yet)")
            return True
        start = time.monotonic()
        with self.console.status(f"{name} ..."):
            try:
                status, detail = fn()
            except ChildFailed as exc:
                status, detail = "error", str(exc).splitlines()[0]
                self.console.print(f"[red]{exc}[/]")
        seconds = time.monotonic() - start
        self.result.add(name, status, detail, seconds)
        mark = "[red]x[/]" if status == "error" else "[green]v[/]"
        self.console.print(f"{mark} {name}: {status} {detail} ({seconds:.1f}s)")
        return status != "error"

    def run(self, name: str, argv: list[str], timeout: float) -> tuple[int, str]:
        return self.sup.run(name, argv, timeout)

    def _fail(self, name: str, rc: int) -> tuple[str, str]:
        return "error", f"exit {rc}, see {self.sup.log_dir / (name + '.log')}"

    # services ------------------------------------------------------------------------------
    def start_server(self) -> tuple[str, str]:
        port = free_port()
        self.capture = self.folder / "capture.jsonl"
        limits = ("--max-num-seqs", "4", "--max-waiting", "8")  # small, so the overload phase meets 429s
        argv = tollgate(
            "serve", "--port", str(port), "--model", self.args.model,
            "--capture", str(self.capture), "--capture-text", *limits,
        )  # fmt: skip
        child = self.sup.start("server", argv)
        self.server_url = f"http://127.0.0.1:{port}"
        waited = self.sup.wait_http(child, f"{self.server_url}/health", timeout=120)
        self.result.links["server"] = self.server_url
        return "ok", f"{self.server_url} ({self.args.model}) ready in {waited:.1f}s"

    def sample_answer(self) -> tuple[str, str]:
        """One chat question before the load, so the report shows what the model says."""
        import httpx

        body = {
            "messages": [{"role": "user", "content": SAMPLE_QUESTION}],
            "max_tokens": 24,
            "temperature": 0,
        }
        try:
            response = httpx.post(f"{self.server_url}/v1/chat/completions", json=body, timeout=120)
        except httpx.HTTPError as exc:
            return "error", f"chat request failed: {exc}"
        if response.status_code != 200:
            return "error", f"chat request answered {response.status_code}: {response.text[:200]}"
        answer = response.json()["choices"][0]["message"]["content"].strip()
        return "ok", f"{SAMPLE_QUESTION!r} -> {' '.join(answer.split())!r}"

    def start_receiver(self) -> tuple[str, str]:
        port = free_port()
        self.slack_record = self.folder / "slack.jsonl"
        argv = [sys.executable, "-m", "monitors.webhook_receiver", "--port", str(port)]
        child = self.sup.start("slack-receiver", [*argv, "--record", str(self.slack_record)])
        self.sup.wait_http(child, f"http://127.0.0.1:{port}/health", timeout=30)
        self.receiver = child
        self.slack_url = f"http://127.0.0.1:{port}/services/demo"
        return "ok", f"Slack-compatible receiver on 127.0.0.1:{port}, messages in {self.slack_record}"

    def start_drift_watch(self) -> tuple[str, str]:
        """Checks the growing capture log every 10 s over the last 60 s (per-window decisions, so the
        demo reacts within one window) and exports tollgate_drift_* gauges for the monitor."""
        port = free_port()
        argv = tollgate(
            "drift", "watch", "--profile", str(self.profile), "--live", str(self.capture),
            "--interval", "10", "--window", "60s", "--per-window", "--permutations", "200",
            "--port", str(port), "--out", str(self.root / "drift"),
        )  # fmt: skip
        child = self.sup.start("drift-watch", argv)
        self.drift_metrics = f"http://127.0.0.1:{port}"
        self.sup.wait_http(child, f"{self.drift_metrics}/metrics", timeout=60)
        return "ok", f"checking the capture log every 10s, gauges on {self.drift_metrics}/metrics"

    def start_monitor(self) -> tuple[str, str]:
        self.store = self.root / "monitor.db"
        targets = [self.server_url, *([self.drift_metrics] if self.drift_metrics else [])]
        argv = tollgate("monitor", *(a for t in targets for a in ("--target", t)), "--interval", "1s")
        argv += ["--store", str(self.store), "--rules", str(DATA_DIR / "rules.yaml")]
        env = {SLACK_ENV: self.slack_url} if self.receiver else {}
        child = self.sup.start("monitor", argv, env=env)
        time.sleep(2.0)
        if not child.alive():
            raise ChildFailed(f"monitor exited with status {child.proc.returncode} (log {child.log})")
        self.result.links["monitor store"] = str(self.store)
        return "ok", f"scraping every 1s into {self.store}"

    def start_dashboard(self) -> tuple[str, str]:
        port = free_port()
        argv = tollgate("dashboard", "--host", "127.0.0.1", "--port", str(port), "--data", str(self.root))
        child = self.sup.start("dashboard", argv)
        url = f"http://127.0.0.1:{port}"
        waited = self.sup.wait_http(child, f"{url}/_stcore/health", timeout=90)
        self.result.links["dashboard"] = url
        return "ok", f"{url} ready in {waited:.1f}s"

    # work ----------------------------------------------------------------------------------
    def build_profile(self) -> tuple[str, str]:
        self.profile = self.folder / "profile.json"
        argv = tollgate("drift", "profile", str(DATA_DIR / "training.jsonl"), "-o", str(self.profile))
        rc, _ = self.run("drift-profile", argv, timeout=120)
        if rc != 0:
            return self._fail("drift-profile", rc)
        return "ok", f"{self.profile} from the embedded training prompts"

    def load_phase(self, phase: str, dataset: str, mode: list[str]) -> tuple[str, str]:
        seconds = max(5, round(self.args.duration * PHASE_SHARE[phase]))
        argv = tollgate(
            "load", "--url", self.server_url, "--endpoint", "chat", *mode,
            "--dataset", str(DATA_DIR / dataset), "--output-tokens", OUTPUT_TOKENS,
            "--duration", f"{seconds}s", "--seed", "1", "--name", f"demo-{phase}",
            "--out", str(self.root / "runs"),
        )  # fmt: skip
        start = time.time()
        rc, out = self.run(f"load-{phase}", argv, timeout=seconds + 90)
        self.phase_windows[phase] = (start, time.time())
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        run = Path(lines[-1]) if lines else None
        if run is None or not (run / "summary.json").exists():
            self.result.phases.append((phase, None))
            return self._fail(f"load-{phase}", rc)
        self.result.phases.append((phase, run))
        self.result.links[f"run ({phase})"] = str(run)
        return "ok", f"{' '.join(mode)} for {seconds}s -> {run}"

    def capacity(self) -> float:
        """Requests/s the server completed in the shifted phase: closed loop on the same prompts the
        overload phase sends, so near the server's capacity for that traffic."""
        for phase, run in self.result.phases:
            if phase == "shifted" and run is not None:
                summary = read_summary(run, validate=False)
                return float(summary.get("throughput", {}).get("requests_per_s") or 0.0)
        return 0.0

    def gate(self, name: str, phase: str, baseline: str | None) -> tuple[str, str]:
        runs = dict(self.result.phases)
        run = runs.get(phase)
        if run is None:
            return "error", f"no run folder for phase {phase}"
        argv = tollgate("gate", "--slo", str(DATA_DIR / "slo.toml"), str(run))
        if baseline and runs.get(baseline):
            argv += ["--baseline", str(runs[baseline])]
        rc, _ = self.run(name, argv, timeout=120)
        if rc == 2:  # e.g. the generator itself was the bottleneck on a busy machine: say so, go on
            reason = tail(self.sup.log_dir / f"{name}.log", 1) or "see its log"
            return "invalid", f"{phase} run not gateable: {reason}"
        verdict = {0: "pass", 1: "fail"}.get(rc)
        if verdict is None:
            return self._fail(name, rc)
        vs = f" vs baseline {baseline}" if baseline else ""
        return verdict, f"{phase} run against slo.toml{vs} (table in logs/{name}.out)"

    def split_capture(self) -> dict[str, Path]:
        """Write the capture lines of the steady window and of the shifted window (shifted and overload
        phases) into their own files."""
        windows = {
            name: self.phase_windows[name] for name in ("steady", "shifted") if name in self.phase_windows
        }
        chosen: dict[str, list[str]] = {name: [] for name in windows}
        with open(self.capture, errors="replace") as src:
            for line in src:
                try:
                    ts = float(json.loads(line)["timestamp"])
                except (ValueError, KeyError, TypeError):
                    continue  # corrupt lines are the drift checker's business, not the splitter's
                for name, (lo, hi) in windows.items():
                    if lo <= ts <= hi + 1.0:
                        chosen[name].append(line)
        files = {}
        for name, lines in chosen.items():
            files[name] = self.folder / f"capture-{name}.jsonl"
            files[name].write_text("".join(lines))
        return files

    def drift_checks(self) -> tuple[str, str]:
        if not self.capture.exists():
            return "error", f"the server wrote no capture log at {self.capture}"
        verdicts, drifted = [], False
        for label, live in self.split_capture().items():
            argv = tollgate("drift", "check", "--profile", str(self.profile), "--live", str(live))
            rc, out = self.run(
                f"drift-check-{label}", [*argv, "--out", str(self.root / "drift")], timeout=120
            )
            if rc not in (0, 1):
                return self._fail(f"drift-check-{label}", rc)
            written = [line.split("result:", 1)[1].strip() for line in out.splitlines() if "result:" in line]
            path = Path(written[-1]) if written else None
            self.result.drift_reports.append((label, path))
            if path:
                self.result.links[f"drift ({label})"] = str(path)
            verdicts.append(f"{label}: {'drift' if rc == 1 else 'no drift'}")
            drifted = drifted or rc == 1
        return "drift" if drifted else "ok", "; ".join(verdicts)

    # the whole thing -----------------------------------------------------------------------
    def execute(self) -> int:
        r = self.result
        r.links["demo folder"] = str(self.folder)
        r.links["logs"] = str(self.sup.log_dir)
        if not self.step("reference server", "server", self.start_server):
            return EXIT_STEP_FAILED
        self.step("sample answer", "server", self.sample_answer)
        self.step("Slack receiver", "receiver", self.start_receiver)
        have_profile = self.step("drift profile", "drift", self.build_profile)
        if have_profile and "drift" not in self.missing:
            self.step("drift watch", "drift", self.start_drift_watch)
        self.step("monitor", "monitor", self.start_monitor)
        if not self.args.no_dashboard:
            self.step("dashboard", "dashboard", self.start_dashboard)
        dataset_steady, dataset_shift = "live_steady.jsonl", "live_shifted.jsonl"
        self.step("load: steady", "load", lambda: self.load_phase("steady", dataset_steady, ["--users", "4"]))
        self.step(
            "load: shifted", "load", lambda: self.load_phase("shifted", dataset_shift, ["--users", "4"])
        )
        rate = max(2.0, OVERLOAD_FACTOR * self.capacity())
        overload = ["--rate", f"{rate:.1f}", "--arrival", "poisson"]
        self.step("load: overload", "load", lambda: self.load_phase("overload", dataset_shift, overload))
        self.step("gate: steady", "gate", lambda: self.gate("gate-steady", "steady", None))
        self.step("gate: overload", "gate", lambda: self.gate("gate-overload", "overload", "steady"))
        if have_profile and "drift" not in self.missing:
            self.step("drift check", "drift", self.drift_checks)
        time.sleep(3.0)  # one more scrape and delivery round for alerts raised by the overload
        r.alerts = store_alerts(self.root / "monitor.db", self.started)
        if self.receiver is not None:
            r.slack_messages = receiver_messages(self.receiver.log)
        errors = [s for s in r.steps if s.status == "error"]
        if errors:
            return EXIT_STEP_FAILED
        return EXIT_NOT_BUILT if self.missing else EXIT_OK

    def keep_running(self) -> None:
        links = ", ".join(f"{k} {v}" for k, v in self.result.links.items() if v.startswith("http"))
        self.console.print(f"[bold]Services are still up[/] ({links}). Press Ctrl-C to stop them.")
        while True:
            for child in self.sup.children:
                if not child.alive():
                    self.console.print(f"[red]{child.name} exited with status {child.proc.returncode}[/]")
                    return
            time.sleep(1.0)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # piped (CI logs, `| tee`) rich would wrap at 80 columns and cut the run folders' paths in two
    console = Console(width=None if sys.stdout.isatty() else 160)
    demo = Demo(args, console)
    missing_required = [c for c in REQUIRED if c in demo.missing]
    if demo.missing:
        listing = ", ".join(f"{c} ({m})" for c, m in demo.missing.items())
        console.print(f"[yellow]tollgate demo: not built yet: {listing}; their steps are skipped.[/]")
    if missing_required:
        console.print("[red]tollgate demo needs at least the reference server and the load generator.[/]")
        return EXIT_NOT_BUILT
    try:
        demo.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        console.print(f"[red]tollgate demo: cannot create {demo.folder}: {exc.strerror}. Use --out DIR.[/]")
        return EXIT_USAGE
    console.print(f"[bold]Tollgate demo[/] ({args.duration:.0f}s of load), folder {demo.folder}")
    code = EXIT_INTERRUPTED
    with demo.sup:
        try:
            code = demo.execute()
        except Interrupted as exc:
            console.print(f"[yellow]tollgate demo: {exc} received, stopping every process it started[/]")
        print_report(demo.result, console)
        if args.keep_running and code != EXIT_INTERRUPTED:
            try:
                demo.keep_running()
            except Interrupted:
                console.print("[yellow]stopping the services[/]")
    elapsed = time.time() - demo.started
    console.print(f"tollgate demo finished in {elapsed:.0f}s with exit code {code}")
    write_json_atomic(
        demo.folder / "demo.json",
        {
            "exit_code": code,
            "elapsed_s": round(elapsed, 1),
            "steps": [s.__dict__ for s in demo.result.steps],
            "links": demo.result.links,
        },
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
