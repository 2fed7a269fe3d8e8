"""`tollgate` command line: one subcommand per component.

Each subcommand is owned by its component, which exposes `main(argv: list[str]) -> int` in the
module named in COMMANDS. The front door only dispatches, so components stay independent and a
component that is not built yet is reported clearly instead of failing with a traceback.
"""

from __future__ import annotations

import importlib
import sys

from tollgate import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("reference_server.cli", "run the reference inference server (OpenAI API, /metrics)"),
    "export": ("reference_server.export", "write a model (GGUF or preset) as a Hugging Face checkpoint dir"),
    "load": ("loadgen.cli", "run a Locust load test against an OpenAI-compatible server"),
    "gate": ("loadgen.gate_cli", "pass or fail a run against SLOs and a baseline run"),
    "sweep": ("loadgen.sweep_cli", "step the load to find the highest rate that meets the SLO"),
    "monitor": ("monitors.cli", "scrape servers and GPUs, evaluate alert rules, notify Slack"),
    "drift": ("drift.cli", "build reference profiles and check live traffic for drift"),
    "dashboard": ("dashboards.cli", "open the Streamlit dashboard"),
    "demo": ("tollgate.demo", "run the whole suite end to end on embedded defaults"),
}

EXIT_NOT_BUILT = 3


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"tollgate {__version__}: load testing and monitoring for LLM inference servers",
        "",
        "usage: tollgate <command> [options]   (tollgate <command> --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


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
        raise
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
