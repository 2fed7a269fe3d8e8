"""How each derived figure (monitor_store.SERIES_NAMES) is computed from server metrics, once.

The embedded monitor evaluates these sources over its scrape window (monitors/figures.py); the
Prometheus export records them as recording rules and the dashboard's `--prometheus` mode queries them,
both through `promql()` here. So a figure means the same thing in SQLite and in Prometheus.

A figure lists its sources in order; a target uses the first whose `when` metric it exposes, so each
server yields the figures it can. Kinds: `gauge` (sum of the terms' `agg` by `by`), `rate` (sum of the
terms' per-second rates), `ratio` (sum of numerator rates / sum of denominator rates, only when the
denominator is positive) and `quantile` (PromQL's histogram_quantile of the first term's buckets).
Terms missing from a scrape count as zero in rates and ratios (a labelled error counter appears only at
its first error), which the PromQL mirrors with `or 0 * <the when metric>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.contracts import server_metrics as m

MIB = 2**20


@dataclass(frozen=True)
class Sel:
    """A metric with label matchers: `eq` exact values, `regex` full-match regular expressions.
    `optional=False` says the server always exports it (pre-initialised label values) whenever the
    source's `when` metric is there, so its PromQL needs no `or 0 * ...` fallback: every fallback is
    one more full `rate()` over the range, and PromQL evaluates both sides of an `or`."""

    metric: str
    eq: tuple[tuple[str, str], ...] = ()
    regex: tuple[tuple[str, str], ...] = ()
    optional: bool = True

    def promql(self, suffix: str = "", match: str = "") -> str:
        parts = [f'{k}="{v}"' for k, v in self.eq] + [f'{k}=~"{v}"' for k, v in self.regex]
        parts += [match] if match else []
        return self.metric + suffix + ("{" + ", ".join(parts) + "}" if parts else "")


@dataclass(frozen=True)
class Source:
    kind: str  # gauge | rate | ratio | quantile
    terms: tuple[Sel, ...]
    den: tuple[Sel, ...] = ()
    q: float = 0.0
    by: tuple[str, ...] = ()
    agg: str = "sum"
    scale: float = 1.0
    when: str = ""  # sample name whose presence selects this source; default: the first term's

    @property
    def present(self) -> str:
        if self.when:
            return self.when
        return self.terms[0].metric + ("_bucket" if self.kind == "quantile" else "")


def _s(metric: str, optional: bool = True, **regex: str) -> Sel:
    return Sel(metric, regex=tuple(sorted(regex.items())), optional=optional)


def _gauges(*names: str, agg: str = "sum", by: tuple[str, ...] = (), scale: float = 1.0) -> tuple:
    return tuple(Source("gauge", (Sel(n),), agg=agg, by=by, scale=scale) for n in names)


def _rates(*names: str) -> tuple:
    return tuple(Source("rate", (Sel(n),)) for n in names)


def _quantiles(q: float, *names: str) -> tuple:
    return tuple(Source("quantile", (Sel(n),), q=q) for n in names)


HTTP_GEN = _s(m.HTTP_REQUESTS, handler=m.GENERATION_HANDLERS)
HTTP_FAILED = _s(m.HTTP_REQUESTS, handler=m.GENERATION_HANDLERS, status=m.FAILED_STATUS)
HTTP_REFUSED = _s(m.HTTP_REQUESTS, handler=m.GENERATION_HANDLERS, status=m.REFUSED_STATUS)
# vLLM and the reference server create every finished_reason series at start-up.
ENGINE_FAILED = _s(m.VLLM_REQUEST_SUCCESS, optional=False, finished_reason=m.FAILED_FINISH_REASONS)
ENGINE_ABORTED = _s(m.VLLM_REQUEST_SUCCESS, finished_reason="abort")  # vLLM answers its errors 500
REF_ANSWERED = (Sel(m.VLLM_REQUEST_SUCCESS, optional=False), Sel(m.REQUESTS_REJECTED))
VLLM_ANSWERED = (HTTP_GEN,)

# Requests: the reference server counts refusals itself; vLLM (and any instrumented FastAPI server)
# through its HTTP counter; engines without HTTP metrics only count what reached the engine.
REQUESTS = {
    "request_rate": (
        Source("rate", REF_ANSWERED, when=m.REQUESTS_REJECTED),
        Source("rate", VLLM_ANSWERED, when=m.HTTP_REQUESTS),
        *_rates(m.VLLM_REQUEST_SUCCESS, m.TGI_REQUESTS),
    ),
    "error_rate": (
        Source("ratio", (ENGINE_FAILED, Sel(m.REQUESTS_REJECTED)), REF_ANSWERED, when=m.REQUESTS_REJECTED),
        Source("ratio", (HTTP_FAILED, ENGINE_ABORTED), VLLM_ANSWERED, when=m.HTTP_REQUESTS),
        Source("ratio", (ENGINE_FAILED,), (Sel(m.VLLM_REQUEST_SUCCESS),)),
        Source("ratio", (Sel(m.TGI_FAILURES),), (Sel(m.TGI_REQUESTS),), when=m.TGI_REQUESTS),
    ),
    "rejected_rate": (
        Source("ratio", (Sel(m.REQUESTS_REJECTED),), REF_ANSWERED),
        Source(
            "ratio", (HTTP_REFUSED, Sel(m.VLLM_ADMISSION_REJECTIONS)), VLLM_ANSWERED, when=m.HTTP_REQUESTS
        ),
        Source(
            "ratio",
            (_s(m.TGI_FAILURES, err=m.TGI_REFUSED_ERRORS),),
            (Sel(m.TGI_REQUESTS),),
            when=m.TGI_REQUESTS,
        ),
    ),
}

FIGURES: dict[str, tuple[Source, ...]] = {
    "queue_depth": _gauges(m.VLLM_WAITING, m.TGI_QUEUE, m.LLAMACPP_DEFERRED),
    "requests_running": _gauges(m.VLLM_RUNNING, m.TGI_BATCH, m.LLAMACPP_PROCESSING),
    "kv_cache_usage": _gauges(m.VLLM_KV_USAGE, m.VLLM_GPU_CACHE_USAGE, m.LLAMACPP_KV_USAGE),
    "host_cpu_pct": _gauges(m.HOST_CPU),
    "host_mem_used_bytes": _gauges(m.HOST_MEM_USED),
    "process_rss_bytes": _gauges(m.CLIENT_PROCESS_RSS, m.PROCESS_RSS),
    "drift_detected": _gauges(m.DRIFT_DETECTED),
    "prompt_tokens_per_s": _rates(m.VLLM_PROMPT_TOKENS, m.TGI_INPUT_TOKENS, m.LLAMACPP_PROMPT_TOKENS),
    "generation_tokens_per_s": _rates(
        m.VLLM_GENERATION_TOKENS, m.TGI_GENERATED_TOKENS, m.LLAMACPP_PREDICTED_TOKENS
    ),
    "preemptions_per_s": _rates(m.VLLM_PREEMPTIONS),
    **REQUESTS,
    "prefix_cache_hit_rate": (Source("ratio", (Sel(m.VLLM_PREFIX_HITS),), (Sel(m.VLLM_PREFIX_QUERIES),)),),
    "process_cpu_pct": (
        Source("rate", (Sel(m.CLIENT_PROCESS_CPU),), scale=100.0),
        *_gauges(m.PROCESS_CPU),
    ),
    **{
        f"{prefix}_p{round(q * 100)}_s": _quantiles(q, *names)
        for prefix, names in {
            "ttft": (m.VLLM_TTFT,),
            "itl": (m.VLLM_ITL, m.VLLM_TPOT, m.TGI_TIME_PER_TOKEN),
            "e2e": (m.VLLM_E2E, m.TGI_DURATION),
        }.items()
        for q in (0.5, 0.95, 0.99)
    },
    "gpu_util_pct": _gauges(m.DCGM_GPU_UTIL, by=("gpu",)),
    "gpu_mem_used_bytes": _gauges(m.DCGM_FB_USED, by=("gpu",), scale=MIB),
    "gpu_mem_total_bytes": (
        *_gauges(m.DCGM_FB_TOTAL, by=("gpu",), scale=MIB),
        Source("gauge", (Sel(m.DCGM_FB_USED), Sel(m.DCGM_FB_FREE)), by=("gpu",), scale=MIB),
    ),
    "gpu_power_w": _gauges(m.DCGM_POWER, by=("gpu",)),
    "gpu_temp_c": _gauges(m.DCGM_TEMP, by=("gpu",)),
    "drift_score": _gauges(m.DRIFT_SCORE, agg="max", by=("feature",)),
}


# Series the embedded monitor writes for every scrape; Prometheus has its own for them.
SCRAPE_SERIES = {"up": "up", "scrape_duration_s": "scrape_duration_seconds"}


def promql(figure: str, window: str, group: tuple[str, ...] = ("instance",), match: str = "") -> str:
    """The figure as one PromQL expression per `group` (plus the source's own `by` labels), rates
    over `window` (a Prometheus duration such as "1m"); sources joined with `or`, first wins.
    `match` (label matchers such as `job="llm"`) restricts every series read; `group=()` folds
    all matched series into one (e.g. a deployment's replicas)."""
    if figure in SCRAPE_SERIES:
        return f"max by ({', '.join(group)}) ({Sel(SCRAPE_SERIES[figure]).promql(match=match)})"
    try:
        sources = FIGURES[figure]
    except KeyError:
        known = ", ".join([*SCRAPE_SERIES, *FIGURES])
        raise KeyError(f"{figure!r} is not a derived figure; known: {known}") from None
    return " or ".join(f"({_source(s, window, group, match)})" for s in sources)


def _source(s: Source, w: str, group: tuple[str, ...], match: str = "") -> str:
    by = ", ".join([*group, *s.by])
    if s.kind == "gauge":
        expr = " + ".join(f"{s.agg} by ({by}) ({t.promql(match=match)})" for t in s.terms)
    elif s.kind == "quantile":
        le = ", ".join([*group, *s.by, "le"])
        bucket = s.terms[0].promql("_bucket", match)
        expr = f"histogram_quantile({s.q:g}, sum by ({le}) (rate({bucket}[{w}])))"
    else:
        anchor = f"0 * sum by ({by}) (rate({Sel(s.present).promql(match=match)}[{w}]))"

        def total(terms: tuple[Sel, ...]) -> str:
            return " + ".join(
                f"(sum by ({by}) (rate({t.promql(match=match)}[{w}])) or {anchor})" if t.optional and t.promql() != s.present else
                f"sum by ({by}) (rate({t.promql(match=match)}[{w}]))"
                for t in terms
            )  # fmt: skip

        expr = total(s.terms) if s.kind == "rate" else f"({total(s.terms)}) / (({total(s.den)}) > 0)"
    return f"({expr}) * {s.scale!r}" if s.scale != 1 else expr
