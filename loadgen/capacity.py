"""Capacity and cost from a sweep's knee: replicas for a target rate, cost per million tokens.

The knee (highest load that met every SLO check) is one replica's capacity at the SLO. The plan
for a peak of R requests/s keeps each replica at most at (1 - headroom) of that capacity:

    replicas = ceil(R / (capacity x (1 - headroom)))
    cost per hour = replicas x price per replica-hour
    cost per 1M output tokens = cost per hour / (R x output tokens per request x 3600) x 1e6

(input tokens alike). Each per-token figure charges the whole fleet's cost to that token kind, so the
two are alternatives, not parts of a sum. The estimate ASSUMES linear scaling across replicas (a
load balancer that spreads evenly, no shared bottleneck), the same hardware and server settings as
the swept replica, and the same workload (prompt/output lengths, prefix sharing) as the sweep.
"""

from __future__ import annotations

import math
from typing import Any

ASSUMPTIONS = (
    "linear scaling across replicas (even load balancing, no shared bottleneck)",
    "same hardware and server settings as the swept replica",
    "same workload as the sweep (prompt and output lengths, prefix sharing, arrival pattern)",
    "each cost per million tokens charges the whole fleet's cost to that token kind",
)


def plan(
    knee_point: dict[str, Any] | None, target_rate: float, price_per_hour: float | None, headroom: float
) -> dict[str, Any]:
    """The `capacity` block of sweep.json for the knee's sweep point (None when no step met the SLO)."""
    block: dict[str, Any] = {
        "target_rate_per_s": target_rate,
        "headroom": headroom,
        "price_per_replica_hour": price_per_hour,
        "assumptions": list(ASSUMPTIONS),
    }
    if knee_point is None or not knee_point.get("requests_per_s"):
        return {**block, "feasible": False, "reason": "no sweep step met the SLO, so no capacity is known"}
    capacity = float(knee_point["requests_per_s"])
    out_per_req = float(knee_point.get("output_tokens_per_s") or 0.0) / capacity
    in_per_req = float(knee_point.get("input_tokens_per_s") or 0.0) / capacity
    usable = capacity * (1.0 - headroom)
    replicas = max(1, math.ceil(target_rate / usable - 1e-9))
    block.update(
        feasible=True,
        capacity_per_replica_rps=capacity,
        usable_per_replica_rps=usable,
        replicas=replicas,
        output_tokens_per_s_per_replica=float(knee_point.get("output_tokens_per_s") or 0.0),
        load_per_replica_rps=target_rate / replicas,
        output_tokens_per_request=out_per_req,
        input_tokens_per_request=in_per_req,
        cost_per_hour=None,
        cost_per_million_output_tokens=None,
        cost_per_million_input_tokens=None,
    )
    if price_per_hour is not None:
        per_hour = replicas * price_per_hour
        block["cost_per_hour"] = per_hour
        for kind, per_req in (("output", out_per_req), ("input", in_per_req)):
            tokens_per_hour = target_rate * per_req * 3600.0
            block[f"cost_per_million_{kind}_tokens"] = (
                per_hour / tokens_per_hour * 1e6 if tokens_per_hour else None
            )
    return block


def lines(block: dict[str, Any]) -> list[str]:
    """The capacity plan as printable lines (CLI and report)."""
    if not block.get("feasible"):
        return [f"capacity: {block.get('reason')}"]
    out = [
        f"capacity per replica at the SLO: {block['capacity_per_replica_rps']:.2f} req/s "
        f"({block['output_tokens_per_s_per_replica']:.1f} output tokens/s)",
        f"replicas for {block['target_rate_per_s']:g} req/s with {block['headroom']:.0%} headroom: "
        f"{block['replicas']} ({block['load_per_replica_rps']:.2f} req/s each)",
    ]
    if block.get("cost_per_hour") is not None:
        out.append(f"cost: {block['cost_per_hour']:.2f}/hour")
        for kind in ("output", "input"):
            value = block.get(f"cost_per_million_{kind}_tokens")
            out.append(f"cost per 1M {kind} tokens: {'-' if value is None else f'{value:.4f}'}")
    out.append("assumes: " + "; ".join(block["assumptions"]))
    return out
