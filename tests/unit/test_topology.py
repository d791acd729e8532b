"""The simulator and the local vLLM stand-ins use the topology of config/, not a copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.config import CONFIG_DIR, load_cluster_config, load_routing_policy
from devnodes.servers import local_servers
from policies.placement import Weights
from sim.model import BASE_SERVICE_S, JOB_VRAM_GB, TASKS, TOPOLOGY, spec_cluster

CLUSTER = load_cluster_config(CONFIG_DIR / "cluster.yaml")
POLICY = load_routing_policy(CONFIG_DIR / "routing.yaml")


def test_the_simulated_cluster_is_the_configured_one() -> None:
    assert [(n.node_id, n.models, n.vram_total_gb, n.base_used_gb) for n in spec_cluster()] == [
        (n.id, frozenset(n.models), n.vram_total_gb, n.vram_used_gb) for n in CLUSTER.nodes
    ]
    assert TOPOLOGY.weights == Weights(**CLUSTER.placement.model_dump())
    assert {name: m.job_vram_gb for name, m in CLUSTER.models.items()} == JOB_VRAM_GB
    assert set(BASE_SERVICE_S) == set(CLUSTER.models)


def test_the_simulated_task_mix_routes_as_the_policy_does() -> None:
    routes = [(p.primary, list(p.fallbacks)) for p in POLICY.task_types.values()]
    assert [(primary, fallbacks) for primary, fallbacks, _ in TASKS] == routes
    assert sum(share for *_, share in TASKS) == pytest.approx(1.0)


def test_the_local_stand_ins_serve_each_node_its_configured_models(tmp_path: Path) -> None:
    servers = local_servers(Path("python"), Path("model"), 8100, tmp_path)
    assert {s.name: s.served_names for s in servers} == {
        n.id: list(n.models) for n in CLUSTER.nodes
    }
