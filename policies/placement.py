"""Placement: which node runs a job, decided from a snapshot of node state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from policies.types import NodeStatus


@dataclass(frozen=True)
class NodeView:
    """A node as the scheduler sees it at one instant."""

    node_id: str
    status: NodeStatus
    vram_total_gb: float
    vram_free_gb: float
    compute_utilization: float
    models: frozenset[str]
    in_flight: int
    max_jobs: int | None = None
    waiting: float = 0.0
    """Requests waiting in the node's vLLM queues."""
    kv_cache_usage: float = 0.0
    """Fullest KV cache among the node's vLLM servers, 0-1."""
    fresh: bool = True
    """Telemetry is recent enough to trust (or none is expected)."""


@dataclass(frozen=True)
class Limits:
    """When a node counts as at capacity whatever its free VRAM."""

    max_waiting: float = 8.0
    max_kv_cache_usage: float = 0.95
    spill_max_utilization: float = 0.5
    """A fallback model is used only on nodes below this utilisation: spill-over borrows idle
    capacity and must not crowd out the work that node is there for."""
    urgent_slots: int = 2
    """Job slots over each node's job cap that only priority-1 work may take, so urgent work
    finds room at once while routine work fills the node (VRAM is still checked)."""


@dataclass(frozen=True)
class Weights:
    """How much each load signal counts when scoring a node (lower score wins)."""

    utilization: float = 1.0
    """GPU compute utilisation, 0-1."""
    queue: float = 0.5
    """vLLM requests waiting, relative to the waiting limit."""
    kv_cache: float = 0.5
    """vLLM KV-cache use, 0-1."""
    in_flight: float = 0.25
    """The router's own jobs on the node, per job."""
    vram: float = 0.25
    """Share of VRAM in use after the job."""


def score(node: NodeView, vram_gb: float, weights: Weights, limits: Limits) -> float:
    """The node's load score for a job; lower is better."""
    used_after = 1.0 - max(node.vram_free_gb - vram_gb, 0.0) / node.vram_total_gb
    return (
        weights.utilization * node.compute_utilization
        + weights.queue * node.waiting / max(limits.max_waiting, 1.0)
        + weights.kv_cache * node.kv_cache_usage
        + weights.in_flight * node.in_flight
        + weights.vram * used_after
    )


@dataclass(frozen=True)
class Placement:
    """The chosen node and why."""

    node_id: str
    model: str
    reason: str


URGENT = 1
"""The priority that may use the urgent slots."""


def job_cap(max_jobs: int | None, priority: int, limits: Limits) -> int | None:
    """Most jobs a node with `max_jobs` may hold when a job of `priority` joins them."""
    if max_jobs is None or priority > URGENT:
        return max_jobs
    # Above the cap rather than carved out of it: a slot held back for urgent work that does
    # not come would cost routine work its batching.
    return max_jobs + limits.urgent_slots


def _has_room(node: NodeView, vram_gb: float, limits: Limits, priority: int) -> bool:
    cap = job_cap(node.max_jobs, priority, limits)
    if cap is not None and node.in_flight >= cap:
        return False
    if node.waiting > limits.max_waiting or node.kv_cache_usage > limits.max_kv_cache_usage:
        return False
    return node.vram_free_gb >= vram_gb


def place(
    nodes: Iterable[NodeView],
    model: str,
    vram_gb: float,
    limits: Limits = Limits(),
    weights: Weights = Weights(),
    priority: int = 3,
) -> Placement | None:
    """The lowest-scoring available node that serves `model` and has room, or None.

    Room: `vram_gb` free, under its job cap (less the urgent slots unless `priority` is 1),
    vLLM queue and KV cache under `limits`, and telemetry fresh; stale telemetry counts as
    unknown and the node is passed over.
    """
    candidates = [
        n
        for n in nodes
        if model in n.models
        and n.status is NodeStatus.AVAILABLE
        and n.fresh
        and _has_room(n, vram_gb, limits, priority)
    ]
    if not candidates:
        return None
    scored = sorted((score(n, vram_gb, weights, limits), n.node_id, n) for n in candidates)
    best_score, _, best = scored[0]
    others = ", ".join(f"{node_id} {s:.2f}" for s, node_id, _ in scored[1:])
    reason = (
        f"{best.node_id}: serves {model}, {best.vram_free_gb:.1f} GB free >= {vram_gb:.1f} GB, "
        f"lowest load score {best_score:.2f} (utilisation {best.compute_utilization:.2f}, "
        f"{best.waiting:g} waiting, KV {best.kv_cache_usage:.0%}, {best.in_flight} in flight)"
        + (f"; others: {others}" if others else "")
    )
    return Placement(best.node_id, model, reason)


def place_first_fit(
    nodes: Sequence[NodeView],
    models: Sequence[str],
    vram_gb: Callable[[str], float],
    limits: Limits = Limits(),
    weights: Weights = Weights(),
    priority: int = 3,
) -> Placement | None:
    """Place the first model in `models` that has room anywhere: the primary, then spill-over.

    A fallback model (any after the first) only goes to nodes under
    `limits.spill_max_utilization`; `vram_gb` gives the VRAM one job of a model reserves.
    """
    for index, model in enumerate(models):
        candidates = nodes
        if index > 0:
            candidates = [n for n in nodes if n.compute_utilization < limits.spill_max_utilization]
        placement = place(candidates, model, vram_gb(model), limits, weights, priority)
        if placement is not None:
            if index > 0:
                placement = Placement(
                    placement.node_id,
                    placement.model,
                    f"spill-over from {models[0]}, which has no room: {placement.reason}",
                )
            return placement
    return None


def why_unplaceable(
    nodes: Iterable[NodeView],
    model: str,
    vram_gb: float,
    limits: Limits = Limits(),
    priority: int = 3,
) -> str:
    """Explain why `place` found no node for `model`."""
    serving = [n for n in nodes if model in n.models]
    if not serving:
        return f"no node serves {model}"
    parts = []
    for n in serving:
        if n.status is not NodeStatus.AVAILABLE:
            parts.append(f"{n.node_id} is {n.status.value}")
        elif not n.fresh:
            parts.append(f"{n.node_id} has stale telemetry")
        elif n.waiting > limits.max_waiting:
            parts.append(f"{n.node_id} has {n.waiting:g} requests waiting")
        elif n.kv_cache_usage > limits.max_kv_cache_usage:
            parts.append(f"{n.node_id} KV cache is {n.kv_cache_usage:.0%} full")
        elif (cap := job_cap(n.max_jobs, priority, limits)) is not None and n.in_flight >= cap:
            parts.append(
                f"{n.node_id} runs {n.in_flight} jobs, its cap for priority {priority} is {cap}"
            )
        else:
            parts.append(f"{n.node_id} has {n.vram_free_gb:.1f} GB free, needs {vram_gb:.1f}")
    return "; ".join(parts)
