"""Live state of every node: telemetry, status and the router's own reservations."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster.config import ClusterConfig, NodeConfig
from cluster.health import HealthBoard
from cluster.vllm_metrics import VllmLoad
from policies.errors import InvalidRequest, UnknownNode
from policies.placement import NodeView
from policies.types import NodeStatus


@dataclass
class NodeState:
    """One node's state; VRAM in GB, utilisation 0-1."""

    config: NodeConfig
    operator_status: NodeStatus | None = None
    """What an operator set (busy, offline: drained), kept until an operator sets available;
    probes never change it."""
    unreachable: bool = False
    """Every model server on the node failed its last probe."""
    reported_used_gb: float = 0.0
    compute_utilization: float = 0.0
    reserved_gb: float = 0.0
    in_flight: int = 0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    load: VllmLoad | None = None
    """vLLM queue and KV-cache use from the last scrape."""
    telemetry_at: float | None = None
    """When health and metrics last came back."""
    reported_at: float | None = None
    """When VRAM, utilisation or GPU readings were last reported (not probes, not an
    operator's status): which of two replicas' reports is newer."""

    @property
    def status(self) -> NodeStatus:
        """Offline while unreachable, else what an operator set, else available."""
        if self.unreachable:
            return NodeStatus.OFFLINE
        return self.operator_status or NodeStatus.AVAILABLE

    @property
    def vllm_load(self) -> VllmLoad:
        """vLLM's queue and KV-cache use as last scraped; all zero before the first scrape."""
        return self.load or VllmLoad()

    @property
    def vram_total_gb(self) -> float:
        return self.config.vram_total_gb

    @property
    def vram_used_gb(self) -> float:
        """Reported use plus reservations, never over the total."""
        return min(self.vram_total_gb, self.reported_used_gb + self.reserved_gb)

    @property
    def vram_available_gb(self) -> float:
        return max(0.0, self.vram_total_gb - self.reported_used_gb - self.reserved_gb)

    def view(self, down_models: set[str], fresh: bool = True) -> NodeView:
        load = self.vllm_load
        return NodeView(
            node_id=self.config.id,
            status=self.status,
            vram_total_gb=self.vram_total_gb,
            vram_free_gb=self.vram_available_gb,
            compute_utilization=self.compute_utilization,
            models=frozenset(m for m in self.config.models if m not in down_models),
            in_flight=self.in_flight,
            max_jobs=self.config.max_jobs,
            waiting=load.waiting,
            kv_cache_usage=load.kv_cache_usage,
            fresh=fresh,
        )


class NodeRegistry:
    """Every node by id; status updates are validated against the node's own limits."""

    def __init__(
        self,
        cluster: ClusterConfig,
        health: HealthBoard,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.health = health
        self._clock = clock
        now = clock()
        self._nodes = {
            n.id: NodeState(config=n, reported_used_gb=n.vram_used_gb, updated_at=now)
            for n in cluster.nodes
        }
        self._listeners: list[Callable[[], None]] = []
        health.on_return(self._changed)
        self.telemetry_max_age_s: float | None = None
        """Once set, a node whose telemetry is older counts as unknown and gets no work."""

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def notify(self) -> None:
        """Tell the listeners that nodes changed from outside (another replica's update)."""
        self._changed()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every status update (the scheduler re-dispatches)."""
        self._listeners.append(listener)

    def get(self, node_id: str) -> NodeState:
        try:
            return self._nodes[node_id]
        except KeyError:
            valid = ", ".join(self._nodes)
            raise UnknownNode(f"unknown node {node_id!r}; valid: {valid}") from None

    def all(self) -> list[NodeState]:
        return list(self._nodes.values())

    def is_fresh(self, node: NodeState) -> bool:
        """Whether the node's telemetry can be trusted now."""
        if self.telemetry_max_age_s is None:
            return True
        if node.telemetry_at is None:
            return False
        return self._clock() - node.telemetry_at <= self.telemetry_max_age_s

    def views(self) -> list[NodeView]:
        return [
            n.view(self.health.down_models(n.config.id), self.is_fresh(n))
            for n in self._nodes.values()
        ]

    def record_probe(
        self, node_id: str, *, down_models: set[str], load: VllmLoad | None
    ) -> NodeState:
        """Apply a health probe: unreachable when every model is down, reachable when one is
        back. Each model's own health is the health board's (the prober writes it there); what
        an operator set stays as it is.
        """
        node = self.get(node_id)
        all_down = set(node.config.models) <= down_models
        node.unreachable = all_down
        if load is not None and not all_down:
            node.load = load
            node.telemetry_at = self._clock()
        node.updated_at = self._clock()
        self._changed()
        return node

    def update_status(
        self,
        node_id: str,
        *,
        vram_used_gb: float | None = None,
        compute_utilization: float | None = None,
        status: NodeStatus | str | None = None,
        extra: dict[str, Any] | None = None,
        telemetry: bool = False,
    ) -> NodeState:
        """Apply telemetry or an admin's update; InvalidRequest when a value is out of range.

        `telemetry` marks the update as a fresh reading (a node agent's), not a manual one.
        """
        node = self.get(node_id)
        if vram_used_gb is not None and not 0 <= vram_used_gb <= node.vram_total_gb:
            raise InvalidRequest(
                f"vram_used_gb {vram_used_gb} is outside 0..{node.vram_total_gb:g} for {node_id}"
            )
        if compute_utilization is not None and not 0 <= compute_utilization <= 1:
            raise InvalidRequest(f"compute_utilization {compute_utilization} is outside 0..1")
        parsed: NodeStatus | None = None
        if status is not None:
            try:
                parsed = NodeStatus.parse(status) if isinstance(status, str) else status
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
        if vram_used_gb is not None:
            node.reported_used_gb = float(vram_used_gb)
        if compute_utilization is not None:
            node.compute_utilization = float(compute_utilization)
        if parsed is not None:
            node.operator_status = None if parsed is NodeStatus.AVAILABLE else parsed
        if extra:
            node.extra.update(extra)
        node.updated_at = self._clock()
        if vram_used_gb is not None or compute_utilization is not None or extra:
            node.reported_at = node.updated_at
        if telemetry:
            node.telemetry_at = node.updated_at
        self._changed()
        return node

    def available_count(self) -> int:
        return sum(1 for n in self._nodes.values() if n.status is NodeStatus.AVAILABLE)
