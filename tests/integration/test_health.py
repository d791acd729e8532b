"""Health probes, vLLM metrics and stale telemetry, against fake nodes over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.runtime import RouterRuntime
from cluster.vllm_metrics import parse_vllm_metrics
from graph.builder import build_graph
from policies.errors import CapacityTimeout, NoCapableNode
from policies.types import NodeStatus
from tests.conftest import FakeCluster
from tests.integration.conftest import RouterServer

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="deepseek"} 2.0
vllm:num_requests_waiting{engine="0",model_name="deepseek"} 3.0
vllm:num_requests_waiting{engine="1",model_name="deepseek"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="deepseek"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="deepseek"} 0.5
vllm:num_preemptions_total{engine="0",model_name="deepseek"} 7.0
"""


def test_metrics_parser_sums_queues_and_keeps_the_fullest_cache() -> None:
    load = parse_vllm_metrics(METRICS)
    assert (load.running, load.waiting, load.kv_cache_usage) == (2.0, 4.0, 0.5)
    assert parse_vllm_metrics("garbage\n").waiting == 0


async def test_node_goes_offline_when_its_server_stops_and_back_when_it_returns(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    prober = runtime.prober()
    await prober.start(telemetry_max_age_s=30)
    try:
        assert runtime.registry.get("gb10-node-1").status is NodeStatus.AVAILABLE
        fake_cluster.node1.behaviour.healthy = False
        await prober.probe_once()
        node = runtime.registry.get("gb10-node-1")
        assert node.status is NodeStatus.OFFLINE
        assert runtime.health.is_up("gb10-node-1", "deepseek") is False
        graph = build_graph().compile()
        with pytest.raises(NoCapableNode):
            await graph.ainvoke({"prompt": "Summarize the incident"}, context=runtime.context)
        # classification's fallbacks live on node 2 as well: it still runs
        out = await graph.ainvoke(
            {"prompt": "Classify: benign or malicious?", "task_type": "classification"},
            context=runtime.context,
        )
        assert out["scheduling"].node.node_id == "gb10-node-2"
        fake_cluster.node1.behaviour.healthy = True
        await prober.probe_once()
        assert runtime.registry.get("gb10-node-1").status is NodeStatus.AVAILABLE
        out = await graph.ainvoke({"prompt": "Summarize the incident"}, context=runtime.context)
        assert out["scheduling"].node.node_id == "gb10-node-1"
    finally:
        await prober.stop()


async def test_waiting_job_fails_fast_when_its_node_goes_offline(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    prober = runtime.prober()
    await prober.start(telemetry_max_age_s=30)
    try:
        runtime.registry.update_status("gb10-node-1", vram_used_gb=80)
        waiter = asyncio.create_task(runtime.scheduler.acquire("j", ["deepseek"], timeout_s=10))
        await asyncio.sleep(0.05)
        fake_cluster.node1.behaviour.healthy = False
        await prober.probe_once()
        with pytest.raises(NoCapableNode):
            await asyncio.wait_for(waiter, 2)
    finally:
        await prober.stop()


async def test_a_node_over_the_vllm_queue_or_cache_limit_is_at_capacity(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    prober = runtime.prober()
    await prober.start(telemetry_max_age_s=30)
    try:
        fake_cluster.node2.behaviour.waiting = 20
        await prober.probe_once()
        assert runtime.registry.get("gb10-node-2").load.waiting == 80  # type: ignore[union-attr]
        assert runtime.scheduler.try_acquire("j", ["phi4"]) is None
        with pytest.raises(CapacityTimeout, match="requests waiting"):
            await runtime.scheduler.acquire("j", ["phi4"], timeout_s=0.1)
        fake_cluster.node2.behaviour.waiting = 0
        fake_cluster.node2.behaviour.kv_cache_usage = 0.99
        await prober.probe_once()
        with pytest.raises(CapacityTimeout, match="KV cache is 99% full"):
            await runtime.scheduler.acquire("j", ["phi4"], timeout_s=0.1)
        fake_cluster.node2.behaviour.kv_cache_usage = 0.1
        await prober.probe_once()
        lease = runtime.scheduler.try_acquire("j", ["phi4"])
        assert lease is not None
        runtime.scheduler.release(lease)
    finally:
        await prober.stop()


async def test_stale_telemetry_fails_closed(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    now = [1000.0]
    runtime.registry._clock = lambda: now[0]
    prober = runtime.prober()
    await prober.start(telemetry_max_age_s=5)
    try:
        assert runtime.scheduler.try_acquire("a", ["phi4"]) is not None
        now[0] += 6
        assert runtime.scheduler.try_acquire("b", ["phi4"]) is None
        with pytest.raises(CapacityTimeout, match="stale telemetry"):
            await runtime.scheduler.acquire("b", ["phi4"], timeout_s=0.1)
        await prober.probe_once()
        assert runtime.scheduler.try_acquire("c", ["phi4"]) is not None
    finally:
        await prober.stop()


async def test_a_model_missing_from_v1_models_is_down_on_its_node(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.served = ["phi4", "qwen-coder", "granite-guardian"]
    prober = runtime.prober()
    await prober.start(telemetry_max_age_s=30)
    try:
        node = runtime.registry.get("gb10-node-2")
        down = runtime.health.down_models("gb10-node-2")
        assert down == {"llama31"} and node.status is NodeStatus.AVAILABLE
        assert runtime.scheduler.try_acquire("j", ["llama31"]) is None
    finally:
        await prober.stop()


def test_nodes_endpoint_shows_vllm_metrics(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    with router_server.client(router_server.analyst) as c:
        nodes: list[dict[str, Any]] = c.get("/api/llm/nodes").json()["nodes"]
    vllm = nodes[0]["vllm"]
    assert set(vllm) == {"num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"}
    assert nodes[0]["telemetry_at"] is not None
