"""Locust users for OpenAI-compatible chat and completions endpoints, streaming or not.

Every request becomes a `RequestRecord` (intended/actual send, each content chunk's arrival and
token count, end, usage, status, failure reason). Failures of any kind (refused, timeout, HTTP
error, malformed or truncated stream) are recorded with a reason; the user never raises.
TTFT, TPOT, ITL (per-request mean) and E2E also go to Locust's own statistics as named entries.
"""

from __future__ import annotations

import json
import math
import socket
import time
from typing import Any

import gevent
from gevent import GreenletExit
from locust import FastHttpUser, constant, task

from loadgen import rxtime
from loadgen.bodypump import Sink, pump_body
from loadgen.conversations import Dialog, conversation
from loadgen.recording import StreamRecorder
from loadgen.sse import SSEParser, StreamError
from loadgen.timeline import INCOMPLETE, RequestRecord
from loadgen.workloads import RequestSpec

PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


def failure_reason(exc: BaseException) -> str:
    """A short, stable reason string (errors are counted by reason)."""
    if isinstance(exc, StreamError):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset (server closed the stream)"
    name = type(exc).__name__
    text = str(exc)
    if "closed" in text.lower() or "ParseError" in name:
        return f"stream truncated ({name})"
    return f"{name}: {text[:60]}" if text else name


class LLMUser(FastHttpUser):
    """One virtual client; the process's ProcessPlan decides what it sends and when."""

    wait_time = constant(0)
    dialog: Dialog | None = None  # multi-turn: the conversation this user holds
    network_timeout = 600.0
    connection_timeout = 10.0

    @task
    def one_request(self) -> None:
        run = self.environment.tollgate_run
        slot = run.plan.next_slot()
        if slot is None:
            gevent.sleep(0.2)  # this process's share is done; idle until the run stops
            return
        index, intended = slot
        if intended == intended:
            gevent.sleep(max(0.0, intended - time.perf_counter()))
        spec = self._next_spec(run, index)
        record = self.send(run, index, intended, spec)
        if self.dialog is not None:
            self.dialog.answered(spec, record.ok, record.text)
        run.record(record)
        if record.status == 0 and run.plan.schedule is None:
            gevent.sleep(0.05)  # closed loop against a dead server: do not spin

    def _next_spec(self, run: Any, index: int) -> RequestSpec:
        """The next turn of this user's conversation, or request `index` (which may start one)."""
        if self.dialog is not None and not self.dialog.done:
            return self.dialog.next_spec()
        self.dialog = None
        spec = run.plan.workload.request(index)
        if spec.turn:
            self.dialog = Dialog(conversation(run.plan.workload, run.plan.next_conversation()))
            return self.dialog.next_spec()
        return spec

    def send(self, run: Any, index: int, intended: float, spec: RequestSpec | None = None) -> RequestRecord:
        cfg = run.config
        spec = spec or run.plan.workload.request(index)
        stream = cfg.stream
        record = RequestRecord(f"{cfg.run_id}-{index}", spec.scenario, run.plan.worker_index, stream)
        record.intended_perf = intended
        record.requested_input_tokens, record.requested_output_tokens = spec.input_tokens, spec.max_tokens
        record.turn, record.keep_text = spec.turn, spec.turn > 0
        body: dict[str, Any] = {"model": cfg.model, "max_tokens": spec.max_tokens, "stream": stream}
        if cfg.endpoint == "chat":
            body["messages"] = spec.messages
        else:
            body["prompt"] = spec.prompt_text()
        if stream:
            body["stream_options"] = {"include_usage": True}
        if cfg.ignore_eos:
            body["ignore_eos"] = True
        if cfg.temperature is not None:
            body["temperature"] = cfg.temperature
        headers = {"X-Request-Id": record.request_id}  # lets server logs be joined with requests.parquet
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        path = PATHS[cfg.endpoint]
        record.send_s, record.send_perf = time.time(), time.perf_counter()
        try:
            with self.client.post(
                path, json=body, headers=headers, stream=stream, catch_response=True, name=f"E2E {path}"
            ) as resp:
                record.status = int(resp.status_code or 0)
                try:
                    error = getattr(resp, "error", None)
                    if error is not None and record.status == 0:
                        raise error
                    if record.status != 200:
                        record.detail = _error_message(resp)
                        short = f": {record.detail[:60]}" if record.detail else ""
                        raise StreamError(f"HTTP {record.status}{short}")
                    if stream:
                        read_stream(resp, record)
                    else:
                        read_body(resp, record)
                except Exception as exc:  # any failure is a recorded reason, never a crash
                    record.error = failure_reason(exc)
                if record.end_perf != record.end_perf:
                    record.end_perf = time.perf_counter()
                resp.request_meta["response_time"] = (record.end_perf - record.send_perf) * 1000.0
                if record.error:
                    resp.failure(record.error)
                else:
                    resp.success()
        except GreenletExit:
            self._incomplete(run, record)
            raise
        except Exception as exc:
            record.error = record.error or failure_reason(exc)
            if record.end_perf != record.end_perf:
                record.end_perf = time.perf_counter()
        if record.ok:
            self._fire_metrics(record, path)
        return record

    def _incomplete(self, run: Any, record: RequestRecord) -> None:
        """The run is stopping this user mid-request: keep the request, marked incomplete."""
        record.error = INCOMPLETE
        if record.end_perf != record.end_perf:
            record.end_perf = time.perf_counter()
        run.collector.add(record)  # not run.record(): the plan must not count it as answered

    def _fire_metrics(self, record: RequestRecord, path: str) -> None:
        itl = record.itl_ms()
        for name, value in (
            ("TTFT", record.ttft_ms()),
            ("TPOT", record.tpot_ms()),
            ("ITL", sum(itl) / len(itl) if itl else math.nan),
        ):
            if value == value:
                self.environment.events.request.fire(
                    request_type=name,
                    name=path,
                    response_time=value,
                    response_length=0,
                    exception=None,
                    context={},
                )


def _error_message(resp: Any) -> str:
    """The server's error message: OpenAI's {"error": {"message"}}, vLLM's older {"message"}, or the body."""
    try:
        content = resp.content or b""
    except Exception:
        return ""
    try:
        body = json.loads(content or b"{}")
    except ValueError:
        return content.decode("utf-8", errors="replace").strip()[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    error = body.get("error")
    message = (
        error.get("message")
        if isinstance(error, dict)
        else error or body.get("message") or body.get("detail")
    )
    return str(message)[:500] if message else ""


def read_stream(resp: Any, record: RequestRecord) -> None:
    """Read SSE events as they arrive, stamping each content chunk with its arrival time."""
    parser = SSEParser()
    recorder = StreamRecorder(record)

    def feed(data: bytes, arrived: float) -> None:
        for _, event in parser.feed_raw(data):
            recorder.on_event(event, arrived)

    _read_body(resp._response, feed)  # to the end of the body, so the connection can be reused
    end = time.perf_counter()
    for _, event in parser.finish_raw():
        recorder.on_event(event, end)
    if not recorder.finished:
        raise StreamError("stream truncated (ended before [DONE])")
    if not record.chunk_perf:
        raise StreamError("stream carried no content")


def _read_body(raw: Any, feed: Sink) -> None:
    """Hand the decoded body bytes to feed(bytes, arrival perf time) as they come off the socket.

    geventhttpclient parses the HTTP framing (`feed` decodes chunked encoding into `_body_buffer`);
    loadgen.bodypump does the socket reads, in the event loop's callback, with kernel receive
    timestamps where available (loadgen.rxtime). Without them, readline() returns each line as
    soon as it is in and we stamp it on return."""
    sock = getattr(raw, "_sock", None)
    if sock is None or not hasattr(raw, "_body_buffer") or not rxtime.enable(sock):
        while line := raw.readline(b"\n"):
            feed(line, time.perf_counter())
        return
    if raw._body_buffer:  # body bytes that came in with the headers
        body = bytes(raw._body_buffer)
        del raw._body_buffer[:]
        feed(body, time.perf_counter())
    if not raw.message_complete:
        pump_body(raw, feed)


def read_body(resp: Any, record: RequestRecord) -> None:
    try:
        body = json.loads(resp.content)
    except (ValueError, TypeError):
        raise StreamError("malformed response: body is not JSON") from None
    record.end_perf = time.perf_counter()
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices:
        raise StreamError("malformed response: no choices")
    message = choices[0].get("message") or {}
    text = message.get("content") or choices[0].get("text") or ""
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    record.prompt_tokens = usage.get("prompt_tokens")
    record.usage_output_tokens = usage.get("completion_tokens")
    record.chunk_perf = [record.end_perf]
    if record.keep_text:
        record.text = text
    estimate = max(1, len(text.split()))  # words, when the server sends no usage
    record.chunk_tokens = [record.usage_output_tokens if record.usage_output_tokens is not None else estimate]
