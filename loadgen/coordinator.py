"""Run control inside the Locust processes.

`ProcessRun` lives in every process that runs users (local runner or worker): it owns the
ProcessPlan, the Collector and the ValidityMonitor. `Coordinator` lives in the process that owns
the run (local runner or master): it ends the run (duration, request count, shape end, Ctrl-C),
waits for each worker's final report, and writes the run folder.

Ending a distributed run goes through `runner.stop()` first (workers stop their users and send a
final `tollgate_final` message) and only then `runner.quit()`, because Locust's own quit path
gives workers just half a second to deliver their last report.
"""

from __future__ import annotations

import csv
import errno
import gc
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from loadgen import API_KEY_ENV, report, validity
from loadgen.collector import Collector
from loadgen.config import RunConfig
from loadgen.early_stop import EarlyStop
from loadgen.plan import ProcessPlan
from loadgen.users import PATHS
from loadgen.validity import ValidityMonitor

log = logging.getLogger("tollgate.load")
FINAL_WAIT_S = 20.0
OPEN_LOOP_GRACE_S = 30.0
FLUSH_S = 2.0


def load_config(environment: Any) -> RunConfig:
    text = getattr(environment.parsed_options, "tollgate_config", "") or ""
    if not text:
        raise SystemExit("tollgate: --tollgate-config is missing (run through `tollgate load`)")
    data = json.loads(text)
    # the key travels in the environment, not on Locust's command line (see loadgen.locust_process.run_locust);
    # workers on other machines read it from their own environment
    data["api_key"] = os.environ.get(API_KEY_ENV) or os.environ.get("OPENAI_API_KEY") or ""
    try:
        return RunConfig.from_dict(data)
    except ValueError as exc:
        raise SystemExit(f"tollgate: --tollgate-config: {exc}") from None


class ProcessRun:
    def __init__(self, environment: Any, config: RunConfig, sink: Collector | None = None) -> None:
        runner = environment.runner
        worker = isinstance(runner, WorkerRunner)
        self.index = runner.worker_index if worker else 0
        self.count = int(getattr(environment.parsed_options, "expect_workers", 1) or 1) if worker else 1
        self.environment = environment
        self.config = config
        self.collector = sink or Collector()
        self.monitor = ValidityMonitor()
        self.plan = ProcessPlan(config, self.index, self.count, on_done=self._on_done)
        self.final_sent = False
        self.early_stop = EarlyStop()
        # Everything alive now (Locust, the imports, the workload) is long-lived: keep the cyclic GC
        # from rescanning it. Measured in a 64-stream run: full collections went from 65-100 ms loop
        # stalls to ~3.5 ms.
        gc.freeze()
        self.monitor.start()

    @property
    def name(self) -> str:
        return f"worker-{self.index}" if isinstance(self.environment.runner, WorkerRunner) else "local"

    def record(self, record: Any) -> None:
        self.collector.add(record)
        self.plan.request_finished()
        verdict = self.early_stop.observe(record, self.config.url, PATHS[self.config.endpoint])
        if verdict is None:
            return
        self.plan.halt()  # this process's users stop at once, before the master has heard of it
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message("tollgate_stop_early", verdict)
        else:
            self.environment.tollgate_coordinator.stop_early(verdict)

    def _on_done(self) -> None:
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message("tollgate_done", {"worker": self.index})
        else:
            self.environment.tollgate_coordinator.finish("all requests answered")  # spawns; safe from a user

    def final_report(self) -> dict[str, Any]:
        self.monitor.stop()
        data = self.collector.drain()
        data["validity"] = {self.name: self.monitor.figures()}
        return data


class Coordinator:
    def __init__(self, environment: Any, config: RunConfig) -> None:
        self.environment = environment
        self.config = config
        self.collector = Collector()
        self.validity: dict[str, dict[str, Any]] = {}
        self.finals: set[str] = set()
        self.done_workers: set[int] = set()
        self.started_at = time.time()
        self.written = False
        self._finisher: Any = None
        self._writing = False
        self.notes: list[str] = []
        self._flushed = 0
        self.write_error = ""
        self.stopped_early: dict[str, Any] | None = None
        gevent.spawn(self._flush_rows_forever)
        if config.duration_s and not config.shape:  # a shape ends the run itself
            # Open loop: the schedule itself ends at the duration and every process reports done once
            # its last arrival is answered; the timer only bounds the wait for stragglers.
            grace = min(float(config.timeout_s), OPEN_LOOP_GRACE_S) if config.rate else 0.0
            gevent.spawn_later(config.duration_s + grace, self.finish, "duration reached")

    def _flush_rows_forever(self) -> None:
        """Move new rows to requests.partial.jsonl every FLUSH_S: a killed generator loses at most
        FLUSH_S of results (`tollgate load` rebuilds the run from the file), and memory stays flat in
        long runs (the rows live on disk; the latency histograms are merged as they come)."""
        while not self.written:
            gevent.sleep(FLUSH_S)
            if self.written:
                return
            try:
                self._flush_rows()
            except OSError as exc:  # disk full, permissions: results can no longer be kept, so stop
                self._write_failed(exc)
                self.finish("the run folder cannot be written", status="failed")
                return

    def _flush_rows(self) -> None:
        rows = self.collector.rows
        if not rows:
            return
        path = Path(self.config.run_dir) / report.PARTIAL_ROWS
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row, default=report.json_default) + "\n" for row in rows)
        self._flushed += len(rows)
        rows.clear()

    def _write_failed(self, exc: OSError) -> None:
        """Say once, in one line, that the run folder cannot be written, and make Locust exit non-zero."""
        self.environment.process_exit_code = 1
        if not self.write_error:
            reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            self.write_error = f"{reason} ({exc.filename or self.config.run_dir})"
            log.error("tollgate: cannot write the run folder %s: %s", self.config.run_dir, self.write_error)

    @property
    def distributed(self) -> bool:
        return isinstance(self.environment.runner, MasterRunner)

    def absorb(self, client_id: str, data: dict[str, Any], final: bool = False) -> None:
        self.collector.absorb(data)
        self.validity.update(data.get("validity", {}))
        if final:
            self.finals.add(client_id)

    def worker_done(self, index: int) -> None:
        self.done_workers.add(index)
        if len(self.done_workers) >= int(self.environment.parsed_options.expect_workers or 1):
            self.finish("all requests answered")

    def stop_early(self, verdict: dict[str, Any]) -> None:
        """The first requests were all rejected the same way (loadgen.early_stop): end the run, failed."""
        if self.stopped_early is None and self._finisher is None:
            self.stopped_early = verdict
            self.finish(
                f"stopped early: the first {verdict['requests']} requests all failed with HTTP {verdict['status']}",
                status="failed",
            )

    def finish(self, reason: str, status: str = "complete") -> None:
        """End the run: stop users everywhere, collect final reports, write the folder, quit Locust.

        Runs in its own greenlet: the caller may be a user (which stop() kills) or the master's
        message listener (which must keep receiving the final reports)."""
        if self._finisher is None:
            self._finisher = gevent.spawn(self._finish, reason, status, True)

    def finish_now(self, reason: str) -> None:
        """Stop, collect and write in the calling greenlet, leaving the quit to Locust (shape end)."""
        if self._finisher is None:
            self._finisher = gevent.getcurrent()
            self._finish(reason, "complete", False)

    def _finish(self, reason: str, status: str, quit_after: bool) -> None:
        log.info("tollgate: %s, stopping", reason)
        self.notes.append(reason)
        runner = self.environment.runner
        expected = {c.id for c in runner.clients.all} if self.distributed else set()
        self.ended_at = time.time()
        runner.stop()
        self._wait_for_finals(expected)
        self._write_safely(status)
        if quit_after:
            runner.quit()
            if getattr(self.environment, "web_ui", None) is not None:
                self.environment.web_ui.stop()  # --web: the UI is Locust's main greenlet; let it end

    def on_quitting(self) -> None:
        """Locust is shutting down: let a finish in progress complete; otherwise (Ctrl-C, SIGTERM,
        a Locust error) write what was measured, marked interrupted."""
        finisher = self._finisher
        if isinstance(finisher, gevent.Greenlet) and finisher is not gevent.getcurrent():
            finisher.join(timeout=FINAL_WAIT_S + 30)
        if self.written:
            return
        if finisher is None:
            self._finisher = gevent.getcurrent()
            self.ended_at = time.time()
            self.notes.append("interrupted before the run's end")
            runner = self.environment.runner
            expected = {c.id for c in runner.clients.all} if self.distributed else set()
            try:
                runner.stop()
            except Exception as exc:
                self.notes.append(f"stopping workers failed: {exc}")
            self._wait_for_finals(expected)
        self._write_safely("interrupted")

    def _write_safely(self, status: str) -> None:
        """Write the run folder; a write failure is reported and ends Locust non-zero (never a hang:
        the caller still quits Locust). `tollgate load` then says so and exits non-zero."""
        try:
            self.write(status)
        except OSError as exc:
            self._write_failed(exc)

    def _wait_for_finals(self, expected: set[str]) -> None:
        local = getattr(self.environment, "tollgate_run", None)
        if local is not None and not local.final_sent:
            local.final_sent = True
            self.absorb("local", local.final_report(), final=True)
        deadline = time.monotonic() + FINAL_WAIT_S
        while not expected <= self.finals and time.monotonic() < deadline:
            gevent.sleep(0.05)
        missing = expected - self.finals
        if missing:
            self.notes.append(
                f"no final report from {len(missing)} worker(s); their last requests are missing"
            )

    def write(self, status: str) -> None:
        if self.written or self._writing:
            return
        self._writing = True
        ended = getattr(self, "ended_at", time.time())
        checks = validity.combine(self.validity)
        if self._flushed:  # the unflushed tail joins the file; write_run streams it back in batches
            self._flush_rows()
        self._final_csv()
        try:
            from locust.html import get_html_report

            locust_html = get_html_report(self.environment, show_download_link=False)
        except Exception as exc:
            locust_html = None
            self.notes.append(f"locust.html not written: {exc}")
        summary = report.write_run(
            Path(self.config.run_dir),
            self.collector,
            self.config.to_dict(),
            status,
            self.started_at,  # write_run opens the window at the first send when there was one
            ended,
            checks,
            self.notes,
            locust_html,
            stopped_early=self.stopped_early,
        )
        self.written = True
        log.info("tollgate: wrote %s (%s)", self.config.run_dir, summary["status"])

    def _final_csv(self) -> None:
        """Locust rewrites its CSVs once a second; write the final figures now, so a short run has them."""
        prefix = getattr(self.environment.parsed_options, "csv_prefix", None)
        if not prefix:
            return
        from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

        writer = StatsCSV(self.environment, PERCENTILES_TO_REPORT)
        for suffix, method in (
            ("stats", writer.requests_csv),
            ("failures", writer.failures_csv),
            ("exceptions", writer.exceptions_csv),
        ):
            with open(f"{prefix}_{suffix}.csv", "w", newline="") as handle:
                method(csv.writer(handle))


def is_owner(environment: Any) -> bool:
    return isinstance(environment.runner, MasterRunner | LocalRunner)
