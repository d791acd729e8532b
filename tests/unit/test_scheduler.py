"""Capacity accounting and the priority queue."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.api import Job, Scheduler
from cluster.config import CONFIG_DIR, load_cluster_config
from cluster.health import HealthBoard
from cluster.registry import NodeRegistry
from cluster.scheduler import JobScheduler
from policies.errors import CapacityTimeout, NoCapableNode, UnknownModel


def make() -> tuple[NodeRegistry, JobScheduler]:
    cluster = load_cluster_config(CONFIG_DIR / "cluster.yaml")
    registry = NodeRegistry(cluster, HealthBoard(cluster))
    return registry, JobScheduler(cluster, registry, default_timeout_s=5)


def assert_within_bounds(registry: NodeRegistry) -> None:
    for node in registry.all():
        assert node.reserved_gb >= -1e-9
        assert node.reported_used_gb + node.reserved_gb <= node.vram_total_gb + 1e-9
        assert 0 <= node.vram_available_gb <= node.vram_total_gb
        assert node.in_flight >= 0


async def test_capacity_never_negative_or_over_total_under_200_concurrent_jobs() -> None:
    registry, scheduler = make()
    rng = random.Random(7)
    models = ["deepseek", "qwen72", "phi4", "qwen-coder", "llama31", "granite-guardian"]
    peak = {"gb10-node-1": 0.0, "gb10-node-2": 0.0}

    async def job(i: int) -> None:
        lease = await scheduler.acquire(
            f"j{i}",
            [rng.choice(models)],
            priority=rng.randint(1, 5),
            vram_gb=rng.choice([1.0, 4.0, 10.0, 25.0]),
            timeout_s=30,
        )
        assert_within_bounds(registry)
        node = registry.get(lease.node_id)
        peak[lease.node_id] = max(peak[lease.node_id], node.reserved_gb)
        await asyncio.sleep(rng.random() * 0.01)
        if i % 3 == 0:
            registry.update_status(lease.node_id, compute_utilization=rng.random())
        scheduler.release(lease)
        assert_within_bounds(registry)

    await asyncio.gather(*(job(i) for i in range(200)))
    assert scheduler.leases() == []
    assert scheduler.queue_depth == 0
    assert all(n.reserved_gb == pytest.approx(0) and n.in_flight == 0 for n in registry.all())
    # The load really filled the nodes, so the bound was exercised.
    assert max(peak.values()) > 60


async def test_queue_serves_priority_then_arrival_order() -> None:
    registry, scheduler = make()
    registry.update_status("gb10-node-2", vram_used_gb=80)
    order: list[str] = []

    async def waiter(name: str, priority: int) -> None:
        lease = await scheduler.acquire(name, ["phi4"], priority=priority, vram_gb=40)
        order.append(name)
        await asyncio.sleep(0)
        scheduler.release(lease)

    tasks = [
        asyncio.create_task(waiter(n, p))
        for n, p in [("low", 5), ("urgent-1", 1), ("mid", 3), ("urgent-2", 1)]
    ]
    await asyncio.sleep(0.05)
    assert [w.job_id for w in scheduler.queue_snapshot()] == [
        "urgent-1",
        "urgent-2",
        "mid",
        "low",
    ]
    registry.update_status("gb10-node-2", vram_used_gb=40)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["urgent-1", "urgent-2", "mid", "low"]


async def test_new_arrival_does_not_jump_an_equally_urgent_waiter() -> None:
    registry, scheduler = make()
    registry.update_status("gb10-node-2", vram_used_gb=79)
    first = asyncio.create_task(scheduler.acquire("first", ["phi4"], priority=2, vram_gb=2))
    await asyncio.sleep(0.01)
    assert scheduler.try_acquire("second", ["phi4"], priority=2, vram_gb=0.5) is None
    assert scheduler.try_acquire("urgent", ["phi4"], priority=1, vram_gb=0.5) is not None
    registry.update_status("gb10-node-2", vram_used_gb=10)
    assert (await first).node_id == "gb10-node-2"


async def test_waiting_past_the_deadline_is_a_capacity_error_and_leaves_nothing_behind() -> None:
    registry, scheduler = make()
    registry.update_status("gb10-node-1", vram_used_gb=80)
    with pytest.raises(CapacityTimeout, match="gb10-node-1 has 0.0 GB free"):
        await scheduler.acquire("late", ["deepseek"], timeout_s=0.05)
    assert scheduler.queue_depth == 0
    registry.update_status("gb10-node-1", vram_used_gb=0)
    assert scheduler.leases() == []


async def test_cancelled_waiter_leaves_the_queue() -> None:
    registry, scheduler = make()
    registry.update_status("gb10-node-1", vram_used_gb=80)
    task = asyncio.create_task(scheduler.acquire("gone", ["deepseek"]))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert scheduler.queue_depth == 0
    registry.update_status("gb10-node-1", vram_used_gb=0)
    assert scheduler.leases() == []


async def test_unknown_model_and_offline_nodes_fail_at_once() -> None:
    registry, scheduler = make()
    with pytest.raises(UnknownModel):
        scheduler.try_acquire("j", ["nope"])
    registry.update_status("gb10-node-1", status="offline")
    with pytest.raises(NoCapableNode, match="offline"):
        await scheduler.acquire("j", ["deepseek"], timeout_s=1)


async def test_specification_schedule_job_reserves_until_completed() -> None:
    registry, scheduler = make()
    job = Job(
        job_id="threat_analysis_001",
        model="llama31",
        priority=1,
        estimated_vram_gb=10,
        requires_parallel=False,
        requires_chaining=False,
        payload={"prompt": "..."},
    )
    decision = await Scheduler(scheduler).schedule_job(job)
    assert decision["execution_mode"] == "single"
    assert decision["node"]["node_id"] == "gb10-node-2"
    assert decision["node"]["endpoint"] == "http://gb10-node-2:8001/llama31/v1"
    assert registry.get("gb10-node-2").reserved_gb == 10
    assert Scheduler(scheduler).complete_job("threat_analysis_001") == 1
    assert registry.get("gb10-node-2").reserved_gb == 0


async def test_aging_serves_a_long_waiting_low_priority_job_before_fresh_ones() -> None:
    cluster = load_cluster_config(CONFIG_DIR / "cluster.yaml")
    registry = NodeRegistry(cluster, HealthBoard(cluster))
    now = [0.0]
    scheduler = JobScheduler(
        cluster, registry, default_timeout_s=60, aging_s=10, clock=lambda: now[0]
    )
    registry.update_status("gb10-node-2", vram_used_gb=80)
    low = asyncio.create_task(scheduler.acquire("low", ["phi4"], priority=5, vram_gb=50))
    await asyncio.sleep(0.01)
    now[0] = 45.0  # low has aged to 1.5: ahead of any fresh job but priority 1
    urgent = asyncio.create_task(scheduler.acquire("urgent", ["phi4"], priority=2, vram_gb=50))
    await asyncio.sleep(0.01)
    assert [w.job_id for w in scheduler.queue_snapshot()] == ["low", "urgent"]
    registry.update_status("gb10-node-2", vram_used_gb=0)  # room for one 50 GB job
    first = await asyncio.wait_for(low, 1)
    assert not urgent.done()
    scheduler.release(first)
    await asyncio.wait_for(urgent, 1)


async def test_a_full_queue_refuses_with_429() -> None:
    from policies.errors import QueueFull

    cluster = load_cluster_config(CONFIG_DIR / "cluster.yaml")
    registry = NodeRegistry(cluster, HealthBoard(cluster))
    scheduler = JobScheduler(cluster, registry, default_timeout_s=5, max_queue=2)
    registry.update_status("gb10-node-1", vram_used_gb=80)
    waiting = [asyncio.create_task(scheduler.acquire(f"j{i}", ["deepseek"])) for i in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFull) as err:
        await scheduler.acquire("j3", ["deepseek"])
    assert err.value.http_status == 429 and err.value.retry_after_s
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert scheduler.queue_depth == 0


def test_spill_over_borrows_only_a_quiet_node() -> None:
    registry, scheduler = make()
    registry.update_status("gb10-node-2", vram_used_gb=80)  # phi4's only node is full
    registry.update_status("gb10-node-1", compute_utilization=0.7)
    assert scheduler.try_acquire("busy", ["phi4", "qwen72"]) is None
    registry.update_status("gb10-node-1", compute_utilization=0.2)
    lease = scheduler.try_acquire("quiet", ["phi4", "qwen72"])
    assert lease is not None and (lease.node_id, lease.model) == ("gb10-node-1", "qwen72")
    assert lease.reason.startswith("spill-over from phi4")


async def test_priority_one_takes_an_urgent_slot_over_the_job_cap() -> None:
    cluster = load_cluster_config(CONFIG_DIR / "cluster.yaml")
    cluster.nodes[1].max_jobs = 1
    registry = NodeRegistry(cluster, HealthBoard(cluster))
    scheduler = JobScheduler(cluster, registry, default_timeout_s=5)
    routine = scheduler.try_acquire("routine", ["phi4"], priority=3)
    assert routine is not None
    assert scheduler.try_acquire("second", ["phi4"], priority=3) is None
    waiting = asyncio.create_task(scheduler.acquire("waiting", ["phi4"], priority=2))
    await asyncio.sleep(0.01)
    # Queued routine work does not hold back an urgent job: it runs in an urgent slot now.
    urgent = scheduler.try_acquire("urgent", ["phi4"], priority=1)
    assert urgent is not None and registry.get("gb10-node-2").in_flight == 2
    assert not waiting.done()
    scheduler.release(urgent)
    assert not waiting.done()  # the urgent slot is not a routine one
    scheduler.release(routine)
    scheduler.release(await asyncio.wait_for(waiting, 1))
