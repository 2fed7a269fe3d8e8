"""The Locust entry point of `tollgate load` (locust -f loadgen/locustfile.py --tollgate-config JSON).

Wires Tollgate into Locust's events: the run's config arrives as a custom argument (which Locust
forwards from the master to every worker), workers ship rows, histograms and validity figures to
the master in Locust's worker->master messages, and the master writes the run folder.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from loadgen.coordinator import Coordinator, ProcessRun, is_owner, load_config
from loadgen.shapes import ShapeSpec
from loadgen.users import LLMUser

__all__ = ["LLMUser"]


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--tollgate-config", type=str, default="", help="run config (JSON), set by `tollgate load`"
    )


@events.init.add_listener
def _wire(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):

        def on_report(client_id: str, data: dict[str, Any]) -> None:
            if "tollgate" in data and hasattr(environment, "tollgate_coordinator"):
                environment.tollgate_coordinator.absorb(client_id, data["tollgate"])

        def on_final(msg: Any, **__: Any) -> None:
            environment.tollgate_coordinator.absorb(msg.node_id, msg.data, final=True)

        def on_done(msg: Any, **__: Any) -> None:
            environment.tollgate_coordinator.worker_done(msg.data["worker"])

        def on_stop_early(msg: Any, **__: Any) -> None:
            environment.tollgate_coordinator.stop_early(msg.data)

        events.worker_report.add_listener(on_report)
        runner.register_message("tollgate_stop_early", on_stop_early)
        runner.register_message("tollgate_final", on_final)
        runner.register_message("tollgate_done", on_done)
    elif isinstance(runner, WorkerRunner):

        def on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
            run = getattr(environment, "tollgate_run", None)
            if run is not None and not run.final_sent:
                data["tollgate"] = run.collector.drain()

        events.report_to_master.add_listener(on_report_to_master)


@events.test_start.add_listener
def _start(environment: Any, **_: Any) -> None:
    config = load_config(environment)
    LLMUser.network_timeout = float(config.timeout_s)
    if is_owner(environment) and not hasattr(environment, "tollgate_coordinator"):
        environment.tollgate_coordinator = Coordinator(environment, config)
    if not isinstance(environment.runner, MasterRunner) and not hasattr(environment, "tollgate_run"):
        sink = environment.tollgate_coordinator.collector if is_owner(environment) else None
        environment.tollgate_run = ProcessRun(environment, config, sink)


@events.test_stop.add_listener
def _stop(environment: Any, **_: Any) -> None:
    run = getattr(environment, "tollgate_run", None)
    if isinstance(environment.runner, WorkerRunner) and run is not None and not run.final_sent:
        run.final_sent = True
        environment.runner.send_message("tollgate_final", run.final_report())


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    coordinator = getattr(environment, "tollgate_coordinator", None)
    if coordinator is not None:
        # The run is being written: a second SIGINT (a repeated Ctrl-C, the parent-death signal after
        # `tollgate load` was killed) must not cut the final write short; the parent still SIGKILLs a
        # writer that overruns its grace period.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        coordinator.on_quitting()


if os.environ.get("TOLLGATE_SHAPE"):
    _SPEC = ShapeSpec(**json.loads(os.environ["TOLLGATE_SHAPE"]))

    class TollgateShape(LoadTestShape):
        """Users over time from --shape; at the end the coordinator stops the run (and writes it)."""

        def tick(self) -> tuple[int, float] | None:
            step = _SPEC.tick(self.get_run_time())
            if step is not None:
                return step
            coordinator = getattr(self.runner.environment, "tollgate_coordinator", None)
            if coordinator is None:
                return None
            coordinator.finish_now("shape finished")  # stop, collect, write; then Locust quits
            return None
