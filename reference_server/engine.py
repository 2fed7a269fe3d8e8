"""The engine: model + KV cache + scheduler behind a background step loop that streams outputs.

Requests enter with add_request() from any thread and are handed to the loop through an inbox; the loop
thread alone touches the scheduler, so no lock is held while the model runs. Outputs go to the request's
callback from the loop thread; generate() bridges them into asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import torch

from reference_server.block_manager import BlockManager
from reference_server.config import DEFAULT_KV_BYTES_CPU, DEFAULT_KV_FRACTION_CUDA, EngineConfig
from reference_server.detokenizer import IncrementalDetokenizer
from reference_server.errors import ConfigError
from reference_server.heap import release_freed_memory
from reference_server.loader import load_model, served_name
from reference_server.model_runner import ModelRunner, kv_bytes_per_block
from reference_server.outputs import EngineStats, RequestOutput, RequestTimes
from reference_server.quant import quantize_model
from reference_server.sampling import SamplingParams, TokenLogprobs
from reference_server.scheduler import Scheduler
from reference_server.sequence import Sequence
from reference_server.tokenizer import ByteTokenizer, read_chat_template_flag

log = logging.getLogger(__name__)
__all__ = ["Engine", "EngineStats", "RequestOutput", "RequestTimes"]


@dataclass
class _Request:
    seq: Sequence
    on_output: Callable[[RequestOutput], None]
    detok: IncrementalDetokenizer
    times: RequestTimes
    logprobs: TokenLogprobs | None = None  # of the token being emitted, when the request asked


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        config.check_limits()
        self.config = config
        device = config.resolve_device()
        dtype = config.resolve_dtype(device)
        torch.manual_seed(config.seed)
        self.model, hf_config, self.tokenizer = load_model(config.model, device, dtype, config.seed)
        if config.quantization is not None:
            quantize_model(self.model, config.quantization)
        args = self.model.args
        if config.chat_template is not None:
            self.tokenizer.chat_template = read_chat_template_flag(config.chat_template)
            self.tokenizer.chat_template_source = f"--chat-template {config.chat_template}"
        log.info("chat template: %s", self.tokenizer.chat_template_source)
        if isinstance(self.tokenizer, ByteTokenizer) and args.vocab_size < self.tokenizer.vocab_size:
            raise ConfigError(
                f"{config.model}: no tokenizer.json and vocab_size {args.vocab_size} is too small for the "
                f"byte-level tokenizer ({self.tokenizer.vocab_size}); add the checkpoint's tokenizer.json"
            )
        self.vocab_size = args.vocab_size
        self.model_name = config.served_model_name or served_name(config.model)
        self.max_model_len = config.max_model_len or args.max_position_embeddings
        if self.max_model_len > args.max_position_embeddings:
            raise ConfigError(
                f"max_model_len={self.max_model_len} exceeds the model's max_position_embeddings="
                f"{args.max_position_embeddings}; lower --max-model-len to at most {args.max_position_embeddings}"
            )
        num_blocks = self._num_kv_blocks(device, dtype)
        self.block_manager = BlockManager(num_blocks, config.block_size, config.enable_prefix_caching)
        self.scheduler = Scheduler(self.block_manager, config.max_num_seqs, config.max_num_batched_tokens)
        self.runner = ModelRunner(
            self.model,
            num_blocks,
            config.block_size,
            self.tokenizer.eos_token_ids,
            config.seed,
            compile_decode=config.compile_decode,
        )
        self._requests: dict[str, _Request] = {}
        self._inbox: list[_Request] = []
        self._aborts: list[str] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.step_count = 0
        self.error: BaseException | None = None
        release_freed_memory()  # after the load and the KV allocation, see heap.py
        if config.compile_decode:
            self._compile_decode()

    def _compile_decode(self) -> None:
        """Run one short request so the compiled decode step exists before the first real one (the
        compile takes ~5 s with a warm inductor cache, 20-60 s cold on a 2-core CPU), then zero the
        counters it moved. A max_model_len too short for it leaves the compile to the first decode."""
        if self.max_model_len < 3:
            return
        start = time.perf_counter()
        n = min(self.config.block_size + 1, self.max_model_len - 2)
        try:
            self.generate_batch([[0] * n], SamplingParams(max_tokens=2, ignore_eos=True))
        except Exception as exc:  # inductor needs a working C++ compiler (CPU) or Triton (CUDA)
            first = next(iter(str(exc).strip().splitlines()), "")
            raise ConfigError(
                f"--compile: torch.compile of the decode step failed ({type(exc).__name__}: {first}); "
                "install a C++ compiler (g++) for CPU or Triton for CUDA, or run without --compile"
            ) from exc
        self.step_count = 0
        self.block_manager.prefix_queries = self.block_manager.prefix_hits = 0
        log.info("decode step compiled in %.1f s", time.perf_counter() - start)

    def _num_kv_blocks(self, device: torch.device, dtype: torch.dtype) -> int:
        c, per_block = self.config, kv_bytes_per_block(self.model, self.config.block_size, dtype)
        if c.num_kv_blocks is not None:
            blocks, source = c.num_kv_blocks, f"num_kv_blocks={c.num_kv_blocks}"
        elif c.kv_cache_bytes is not None:
            blocks, source = c.kv_cache_bytes // per_block, f"kv_cache_bytes={c.kv_cache_bytes}"
        else:
            if device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(device)
                budget = int(free * DEFAULT_KV_FRACTION_CUDA)
            else:
                budget = DEFAULT_KV_BYTES_CPU
            wanted = c.max_num_seqs * -(-self.max_model_len // c.block_size)
            blocks, source = min(wanted, budget // per_block), "the default KV budget"
        need = -(-self.max_model_len // c.block_size)
        if blocks < need:
            raise ConfigError(
                f"KV budget too small: {source} gives {blocks} blocks of {c.block_size} tokens "
                f"({per_block} bytes each) but one sequence of max_model_len={self.max_model_len} needs {need} "
                f"blocks; raise --num-kv-blocks to >= {need} (or --kv-cache-bytes to >= {need * per_block}) "
                "or lower --max-model-len"
            )
        return blocks

    # request intake (any thread) --------------------------------------------------------------
    def add_request(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        params: SamplingParams,
        on_output: Callable[[RequestOutput], None],
    ) -> None:
        params.validate()
        n = len(prompt_token_ids)
        if n == 0:
            raise ValueError("prompt is empty; give at least one token")
        if n + params.max_tokens > self.max_model_len:
            raise ValueError(
                f"prompt ({n} tokens) + max_tokens ({params.max_tokens}) = {n + params.max_tokens} exceeds "
                f"max_model_len={self.max_model_len}; shorten the prompt or lower max_tokens"
            )
        bad = [t for t in prompt_token_ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"prompt token id {bad[0]} is outside the vocabulary [0, {self.vocab_size})")
        seq = Sequence(request_id, prompt_token_ids, params)
        times = RequestTimes(seq.arrival, None, None, None, None)
        req = _Request(seq, on_output, IncrementalDetokenizer(self.tokenizer, params.stop), times)
        with self._wake:
            if request_id in self._requests or any(r.seq.request_id == request_id for r in self._inbox):
                raise ValueError(f"request id '{request_id}' is already in use")
            self._inbox.append(req)
            self._wake.notify()

    def abort(self, request_id: str) -> None:
        with self._wake:
            self._aborts.append(request_id)
            self._wake.notify()

    # the loop ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="engine-loop", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._wake:
            self._aborts.extend(list(self._requests) + [r.seq.request_id for r in self._inbox])
        self._drain_inbox()

    def _loop(self) -> None:
        try:
            while True:
                with self._wake:
                    while not (self._stop or self._inbox or self._aborts or self.scheduler.has_work()):
                        self._wake.wait()
                    if self._stop:
                        return
                self.step()
        except BaseException as exc:  # keep the reason for /health and the logs; fail open requests
            self.error = exc
            for rid in list(self._requests):
                self._finish(self._requests[rid], "abort")
            raise

    def _drain_inbox(self) -> None:
        with self._wake:
            inbox, self._inbox = self._inbox, []
            aborts, self._aborts = self._aborts, []
        for req in inbox:
            self._requests[req.seq.request_id] = req
            self.scheduler.add(req.seq)
        for rid in aborts:
            req = self._requests.get(rid)
            if req is not None:
                self._finish(req, "abort")

    def step(self) -> None:
        """One scheduling step: admit, run the batch, stream outputs."""
        self._drain_inbox()
        batch = self.scheduler.schedule()
        if not batch:
            return
        tokens = self.runner.run(batch)
        if self.config.inject_latency_ms:  # --inject-latency-ms: a slower step, seen by every metric
            time.sleep(self.config.inject_latency_ms / 1000.0)
        now = time.time()
        self.step_count += 1
        for (seq, n), token, logprobs in zip(batch, tokens, self.runner.logprobs, strict=True):
            seq.num_computed_tokens += n
            req = self._requests[seq.request_id]
            if req.times.first_scheduled is None:
                req.times.first_scheduled = seq.first_scheduled
                req.times.num_cached_prompt_tokens = seq.num_cached_prompt_tokens
            self.block_manager.register_computed_blocks(seq)
            if token is None:
                continue
            seq.token_ids.append(token)
            req.logprobs = logprobs
            self._on_token(req, token, now)

    def _on_token(self, req: _Request, token: int, now: float) -> None:
        seq, p, times = req.seq, req.seq.params, req.times
        times.first_token = times.first_token or now
        times.last_token = now
        past_min = seq.num_output_tokens >= p.min_tokens
        reason = None
        if past_min and (
            token in p.stop_token_ids or (not p.ignore_eos and token in self.tokenizer.eos_token_ids)
        ):
            reason = "stop"
        if req.detok.add([token], check_stop=past_min):
            reason = "stop"
        elif reason is None and seq.num_output_tokens >= p.max_tokens:
            reason = "length"
        if reason is not None:
            self._finish(req, reason, [token], [now])
        else:
            self._emit(req, [token], [now], finished=False, reason=None)

    def _finish(
        self, req: _Request, reason: str, new: list[int] | None = None, at: list[float] | None = None
    ) -> None:
        self.scheduler.finish(req.seq, reason)
        if reason != "stop":
            req.detok.flush()
        req.times.finished = time.time()
        req.times.num_preemptions = req.seq.num_preemptions
        del self._requests[req.seq.request_id]
        self._emit(req, new or [], at or [], finished=True, reason=reason)

    def _emit(
        self, req: _Request, new: list[int], at: list[float], finished: bool, reason: str | None
    ) -> None:
        out = RequestOutput(
            request_id=req.seq.request_id,
            new_token_ids=new,
            text=req.detok.take(final=finished),
            finished=finished,
            finish_reason=reason,
            num_prompt_tokens=req.seq.num_prompt_tokens,
            num_output_tokens=req.seq.num_output_tokens,
            times=req.times,
            token_times=at,
            logprobs=[req.logprobs] if new and req.logprobs is not None else None,
        )
        try:
            req.on_output(out)
        except Exception:  # a broken consumer must not take the loop (and every other request) down
            log.exception("output callback of request %s failed; aborting it", out.request_id)
            if not finished:
                self._aborts.append(out.request_id)

    def stats(self) -> EngineStats:
        bm = self.block_manager
        return EngineStats(
            num_running=len(self.scheduler.running),
            num_waiting=len(self.scheduler.waiting) + len(self._inbox),
            num_kv_blocks=bm.num_blocks,
            num_free_blocks=bm.num_free_blocks,
            num_cached_blocks=bm.num_cached_blocks,
            kv_cache_usage=bm.num_used_blocks / bm.num_blocks,
            prefix_cache_queries=bm.prefix_queries,
            prefix_cache_hits=bm.prefix_hits,
            num_preemptions=self.scheduler.num_preemptions,
            step_count=self.step_count,
        )

    # consumers --------------------------------------------------------------------------------
    async def generate(
        self, request_id: str, prompt_token_ids: list[int], params: SamplingParams
    ) -> AsyncIterator[RequestOutput]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[RequestOutput] = asyncio.Queue()

        def on_output(out: RequestOutput) -> None:
            if not loop.is_closed():  # the consumer may be gone; its abort is already queued
                loop.call_soon_threadsafe(queue.put_nowait, out)

        self.add_request(request_id, prompt_token_ids, params, on_output)
        finished = False
        try:
            while not finished:
                out = await queue.get()
                finished = out.finished
                yield out
        finally:
            if not finished:
                self.abort(request_id)

    def generate_batch(
        self, prompts: list[list[int]], params: SamplingParams | list[SamplingParams]
    ) -> list[list[int]]:
        """Offline helper: run prompts to completion, return output token ids in prompt order."""
        plist = params if isinstance(params, list) else [params] * len(prompts)
        results: dict[int, list[int]] = {i: [] for i in range(len(prompts))}
        done = threading.Event()
        remaining = [len(prompts)]
        lock = threading.Lock()

        def collector(i: int) -> Callable[[RequestOutput], None]:
            def on_output(out: RequestOutput) -> None:
                results[i].extend(out.new_token_ids)
                if out.finished:
                    with lock:
                        remaining[0] -= 1
                        if remaining[0] == 0:
                            done.set()

            return on_output

        base = f"batch-{time.monotonic_ns()}"
        for i, (prompt, p) in enumerate(zip(prompts, plist, strict=True)):
            self.add_request(f"{base}-{i}", prompt, p, collector(i))
        if self._thread is not None:
            done.wait()
        else:
            while not done.is_set():
                self.step()
        return [results[i] for i in range(len(prompts))]
