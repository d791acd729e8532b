"""Live state of every node: telemetry, status and the router's own reservations."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster.config import ClusterConfig, NodeConfig
from cluster.errors import InvalidRequest, UnknownNode
from policies.placement import NodeView
from policies.types import NodeStatus


@dataclass
class NodeState:
    """One node's state; VRAM in GB, utilisation 0-1."""

    config: NodeConfig
    status: NodeStatus = NodeStatus.AVAILABLE
    reported_used_gb: float = 0.0
    compute_utilization: float = 0.0
    reserved_gb: float = 0.0
    in_flight: int = 0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

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

    def view(self) -> NodeView:
        return NodeView(
            node_id=self.config.id,
            status=self.status,
            vram_total_gb=self.vram_total_gb,
            vram_free_gb=self.vram_available_gb,
            compute_utilization=self.compute_utilization,
            models=frozenset(self.config.models),
            in_flight=self.in_flight,
            max_jobs=self.config.max_jobs,
        )

    def to_dict(self) -> dict[str, Any]:
        """The specification's node shape, plus the router's reservations."""
        return {
            "node_id": self.config.id,
            "hostname": self.config.hostname,
            "url": self.config.url,
            "vram_total_gb": self.vram_total_gb,
            "vram_used_gb": round(self.vram_used_gb, 3),
            "vram_available_gb": round(self.vram_available_gb, 3),
            "vram_reserved_gb": round(self.reserved_gb, 3),
            "compute_utilization": round(self.compute_utilization, 4),
            "status": self.status.value,
            "models_loaded": list(self.config.models),
            "jobs_in_flight": self.in_flight,
            "updated_at": self.updated_at,
            **self.extra,
        }


class NodeRegistry:
    """Every node by id; status updates are validated against the node's own limits."""

    def __init__(self, cluster: ClusterConfig, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        now = clock()
        self._nodes = {
            n.id: NodeState(config=n, reported_used_gb=n.vram_used_gb, updated_at=now)
            for n in cluster.nodes
        }
        self._listeners: list[Callable[[], None]] = []

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

    def views(self) -> list[NodeView]:
        return [n.view() for n in self._nodes.values()]

    def update_status(
        self,
        node_id: str,
        *,
        vram_used_gb: float | None = None,
        compute_utilization: float | None = None,
        status: NodeStatus | str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> NodeState:
        """Apply telemetry or an admin's update; InvalidRequest when a value is out of range."""
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
            node.status = parsed
        if extra:
            node.extra.update(extra)
        node.updated_at = self._clock()
        for listener in self._listeners:
            listener()
        return node

    def available_count(self) -> int:
        return sum(1 for n in self._nodes.values() if n.status is NodeStatus.AVAILABLE)
