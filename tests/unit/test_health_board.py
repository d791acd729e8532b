"""The health board: one answer to "is this model server up", from probes and calls alike."""

from __future__ import annotations

import asyncio

import pytest

from cluster.config import CONFIG_DIR, load_cluster_config
from cluster.health import HealthBoard
from cluster.registry import NodeRegistry
from cluster.scheduler import JobScheduler
from policies.errors import NoCapableNode

CLUSTER = load_cluster_config(CONFIG_DIR / "cluster.yaml")


def board(now: list[float]) -> HealthBoard:
    return HealthBoard(CLUSTER, failures_before_down=2, call_down_s=5, clock=lambda: now[0])


def test_server_side_call_failures_take_an_endpoint_out_for_a_while() -> None:
    now = [100.0]
    health = board(now)
    health.record_failure("gb10-node-2", "phi4", "APIStatusError: 503", server_side=True)
    assert health.is_up("gb10-node-2", "phi4")  # one failure is under the threshold
    health.record_failure("gb10-node-2", "phi4", "APIStatusError: 503", server_side=True)
    assert not health.is_up("gb10-node-2", "phi4")
    assert health.down_models("gb10-node-2") == {"phi4"}
    now[0] += 5
    assert health.is_up("gb10-node-2", "phi4")  # tried again after the hold


def test_refused_requests_do_not_count_and_a_success_clears_failures() -> None:
    now = [0.0]
    health = board(now)
    for _ in range(3):
        health.record_failure("gb10-node-2", "phi4", "APIStatusError: 400", server_side=False)
    assert health.is_up("gb10-node-2", "phi4")
    record = health.get("gb10-node-2", "phi4")
    assert (record.failures, record.last_error) == (3, "APIStatusError: 400")
    health.record_failure("gb10-node-2", "phi4", "503", server_side=True)
    health.record_success("gb10-node-2", "phi4")
    health.record_failure("gb10-node-2", "phi4", "503", server_side=True)
    assert health.is_up("gb10-node-2", "phi4")
    assert record.last_error == "503"


def test_a_probe_decides_until_the_next_one() -> None:
    now = [0.0]
    health = board(now)
    health.record_probe("gb10-node-1", "deepseek", up=False, error="ConnectError")
    now[0] += 3600
    assert not health.is_up("gb10-node-1", "deepseek")
    assert health.get("gb10-node-1", "deepseek").last_error == "ConnectError"
    for _ in range(2):
        health.record_failure("gb10-node-1", "qwen72", "503", server_side=True)
    health.record_probe("gb10-node-1", "qwen72", up=True, error=None)
    health.record_probe("gb10-node-1", "deepseek", up=True, error=None)
    assert health.down_models("gb10-node-1") == set()


def test_placement_reads_the_board() -> None:
    now = [0.0]
    health = board(now)
    registry = NodeRegistry(CLUSTER, health)
    scheduler = JobScheduler(CLUSTER, registry, default_timeout_s=1)
    health.record_probe("gb10-node-2", "llama31", up=False, error=None)
    assert scheduler.try_acquire("j", ["llama31"]) is None
    lease = scheduler.try_acquire("j", ["llama31", "deepseek"])
    assert lease is not None and (lease.model, lease.node_id) == ("deepseek", "gb10-node-1")


async def test_a_failed_call_makes_jobs_wait_not_fail_and_they_run_when_the_hold_ends() -> None:
    health = HealthBoard(CLUSTER, call_down_s=0.3)
    registry = NodeRegistry(CLUSTER, health)
    scheduler = JobScheduler(CLUSTER, registry, default_timeout_s=5)
    health.record_failure("gb10-node-2", "llama31", "ConnectError", server_side=True)
    assert not health.is_up("gb10-node-2", "llama31") and health.is_served("gb10-node-2", "llama31")
    waiter = asyncio.create_task(scheduler.acquire("j", ["llama31"]))
    await asyncio.sleep(0.1)
    assert not waiter.done() and scheduler.queue_depth == 1
    lease = await asyncio.wait_for(waiter, 2)
    assert (lease.model, lease.node_id) == ("llama31", "gb10-node-2")


async def test_a_probe_that_finds_it_gone_fails_the_waiters_at_once() -> None:
    health = HealthBoard(CLUSTER, call_down_s=30)
    registry = NodeRegistry(CLUSTER, health)
    scheduler = JobScheduler(CLUSTER, registry, default_timeout_s=5)
    health.record_failure("gb10-node-2", "llama31", "ConnectError", server_side=True)
    waiter = asyncio.create_task(scheduler.acquire("j", ["llama31"]))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    health.record_probe("gb10-node-2", "llama31", up=False, error="gone")
    registry.record_probe("gb10-node-2", down_models={"llama31"}, load=None)
    with pytest.raises(NoCapableNode):
        await asyncio.wait_for(waiter, 2)
