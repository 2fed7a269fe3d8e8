"""Scraping Prometheus endpoints: concurrent httpx GETs, prometheus-client's parsers (text 0.0.4 and
OpenMetrics, picked by the response's Content-Type), one `up` and scrape duration per target."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

# The classic text format first: prometheus_client's OpenMetrics output rewrites `vllm:x` to `vllm_x`.
ACCEPT = "text/plain;version=0.0.4;q=1.0,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]  # sample name -> sorted labels -> value


@dataclass
class Scrape:
    target: str
    ts: float
    up: bool
    duration_s: float
    samples: Samples = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # family name -> counter|gauge|histogram|...
    error: str | None = None


def parse(text: str, content_type: str = "text/plain") -> tuple[Samples, dict[str, str]]:
    """Samples by name and labels, and family types. Raises ValueError on a malformed exposition."""
    parser = parse_openmetrics if "openmetrics" in content_type else parse_text
    samples: Samples = {}
    types: dict[str, str] = {}
    try:
        for family in parser(text):
            types[family.name] = family.type
            for s in family.samples:
                if s.name.endswith("_created"):  # OpenMetrics creation timestamps are not values
                    continue
                samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = float(s.value)
    except ValueError as exc:
        raise ValueError(f"malformed exposition: {exc}") from None
    except (IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed exposition ({type(exc).__name__}: {exc})") from None
    return samples, types


async def scrape_one(client: httpx.AsyncClient, target: str, timeout_s: float) -> Scrape:
    start = time.perf_counter()
    ts = time.time()
    try:
        resp = await client.get(target, headers={"Accept": ACCEPT}, timeout=timeout_s)
        if resp.status_code != 200:
            raise ValueError(f"HTTP {resp.status_code} from {target}")
        samples, types = parse(resp.text, resp.headers.get("content-type", "text/plain"))
    except (httpx.HTTPError, ValueError) as exc:
        return Scrape(target, ts, False, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    return Scrape(target, ts, True, time.perf_counter() - start, samples, types)


async def scrape_all(
    targets: list[str], timeout_s: float = 5.0, concurrency: int = 16, client: httpx.AsyncClient | None = None
) -> list[Scrape]:
    """Scrape every target at once (at most `concurrency` in flight); results in target order."""
    sem = asyncio.Semaphore(concurrency)
    own = client is None
    client = client or httpx.AsyncClient(follow_redirects=True)

    async def bounded(target: str) -> Scrape:
        async with sem:
            return await scrape_one(client, target, timeout_s)

    try:
        return list(await asyncio.gather(*(bounded(t) for t in targets)))
    finally:
        if own:
            await client.aclose()


def metrics_url(target: str) -> str:
    """Accept 'host:port', 'http://host:port' or a full URL; default path /metrics."""
    if "://" not in target:
        target = "http://" + target
    scheme, rest = target.split("://", 1)
    if "/" not in rest:
        rest += "/metrics"
    return f"{scheme}://{rest}"
