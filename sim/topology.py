"""The simulated cluster's topology, read from `config/` rather than written out again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cluster.config import CONFIG_DIR, load_cluster_config, load_routing_policy
from policies.placement import Weights
from policies.types import TaskType


@dataclass(frozen=True)
class NodeShape:
    """A node as the simulator needs it: its id, models and VRAM."""

    node_id: str
    models: frozenset[str]
    vram_total_gb: float
    vram_used_gb: float
    """In use outside the router's reservations (cluster.yaml's vram_used_gb)."""


@dataclass(frozen=True)
class Route:
    """Where one task type's requests go: its primary model, then its fallbacks."""

    task_type: TaskType
    primary: str
    fallbacks: list[str]


@dataclass(frozen=True)
class Topology:
    """Nodes, the VRAM one request reserves per model, each task type's models, and how
    placement weighs a node's load."""

    nodes: list[NodeShape]
    job_vram_gb: dict[str, float]
    routes: list[Route]
    weights: Weights
    """Placement score weights (cluster.yaml's placement)."""


def load_topology(
    cluster_path: Path = CONFIG_DIR / "cluster.yaml",
    routing_path: Path = CONFIG_DIR / "routing.yaml",
) -> Topology:
    """The topology the router itself would load from these files."""
    cluster = load_cluster_config(cluster_path)
    policy = load_routing_policy(routing_path)
    return Topology(
        nodes=[
            NodeShape(n.id, frozenset(n.models), n.vram_total_gb, n.vram_used_gb)
            for n in cluster.nodes
        ],
        job_vram_gb={name: m.job_vram_gb for name, m in cluster.models.items()},
        routes=[Route(t, p.primary, list(p.fallbacks)) for t, p in policy.task_types.items()],
        weights=Weights(**cluster.placement.model_dump()),
    )
