"""Placement: which node runs a job, decided from a snapshot of node state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True)
class Placement:
    """The chosen node and why."""

    node_id: str
    model: str
    reason: str


def _has_room(node: NodeView, vram_gb: float, limits: Limits) -> bool:
    if node.max_jobs is not None and node.in_flight >= node.max_jobs:
        return False
    if node.waiting > limits.max_waiting or node.kv_cache_usage > limits.max_kv_cache_usage:
        return False
    return node.vram_free_gb >= vram_gb


def place(
    nodes: Iterable[NodeView], model: str, vram_gb: float, limits: Limits = Limits()
) -> Placement | None:
    """Least-utilised available node that serves `model` and has room, or None.

    Room: `vram_gb` free, under its job cap, vLLM queue and KV cache under `limits`, and
    telemetry fresh; stale telemetry counts as unknown and the node is passed over.
    """
    candidates = [
        n
        for n in nodes
        if model in n.models
        and n.status is NodeStatus.AVAILABLE
        and n.fresh
        and _has_room(n, vram_gb, limits)
    ]
    if not candidates:
        return None
    best = min(
        candidates,
        key=lambda n: (n.compute_utilization, n.in_flight, -n.vram_free_gb, n.node_id),
    )
    reason = (
        f"{best.node_id}: serves {model}, {best.vram_free_gb:.1f} GB free >= {vram_gb:.1f} GB, "
        f"lowest utilisation {best.compute_utilization:.2f} of {len(candidates)} candidate(s)"
    )
    return Placement(best.node_id, model, reason)


def place_first_fit(
    nodes: Sequence[NodeView], models: Sequence[str], vram_gb: float, limits: Limits = Limits()
) -> Placement | None:
    """Place on the first model in `models` that has room anywhere."""
    for model in models:
        placement = place(nodes, model, vram_gb, limits)
        if placement is not None:
            return placement
    return None


def why_unplaceable(
    nodes: Iterable[NodeView], model: str, vram_gb: float, limits: Limits = Limits()
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
        else:
            parts.append(f"{n.node_id} has {n.vram_free_gb:.1f} GB free, needs {vram_gb:.1f}")
    return "; ".join(parts)
