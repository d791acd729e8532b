"""The queue's order across replicas, at the scheduler: two schedulers on the machine's Redis
act as two replicas (each has its own connections and subscription)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import yaml

from cluster.config import CONFIG_DIR, load_cluster_config
from cluster.health import HealthBoard
from cluster.redis_ledger import RedisLedger
from cluster.registry import NodeRegistry
from cluster.scheduler import JobScheduler
from policies.placement import Limits

REDIS = "redis://127.0.0.1:6379/0"


def replicas(tmp_path: Path, max_jobs: int | None) -> tuple[JobScheduler, JobScheduler]:
    config = yaml.safe_load((CONFIG_DIR / "cluster.yaml").read_text())
    for node in config["nodes"]:
        node["max_jobs"] = max_jobs
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    cluster = load_cluster_config(path)
    prefix = f"t-{uuid.uuid4().hex[:10]}"

    def one() -> JobScheduler:
        return JobScheduler(
            cluster,
            NodeRegistry(cluster, HealthBoard(cluster)),
            default_timeout_s=5,
            limits=Limits(urgent_slots=0),
            ledger=RedisLedger(REDIS, prefix, uuid.uuid4().hex[:12], ttl_s=10),
        )

    return one(), one()


async def queued(s: JobScheduler, depth: int = 1) -> None:
    for _ in range(500):
        await s.refresh()
        if s.queue_depth >= depth:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("never queued")


async def test_a_freed_slot_goes_to_the_first_waiter_whatever_model_each_wants(
    tmp_path: Path,
) -> None:
    """llama31 and phi4 share node 2's one slot: the urgent llama31 job waiting on A goes
    before the routine phi4 job waiting on B, though B freed the slot."""
    a, b = replicas(tmp_path, 1)
    try:
        held = await b.reserve("t/holder", ["llama31"])
        assert held is not None
        urgent = asyncio.create_task(a.acquire("t/urgent", ["llama31"], priority=1))
        await queued(a)
        routine = asyncio.create_task(b.acquire("t/routine", ["phi4"], priority=5))
        await queued(b, 2)
        b.release(held)
        lease = await asyncio.wait_for(urgent, 5)
        assert lease.job_id == "t/urgent"
        assert not routine.done()
        a.release(lease)
        assert (await asyncio.wait_for(routine, 5)).job_id == "t/routine"
    finally:
        await a.close()
        await b.close()


async def test_a_waiter_too_big_for_the_free_vram_does_not_hold_back_one_that_fits(
    tmp_path: Path,
) -> None:
    a, b = replicas(tmp_path, None)
    try:
        filler = await b.reserve("t/filler", ["llama31"], vram_gb=50)
        assert filler is not None  # 30 GB of node 2 left
        big = asyncio.create_task(b.acquire("t/big", ["llama31"], priority=1, vram_gb=40))
        await queued(b)
        small = await asyncio.wait_for(a.acquire("t/small", ["llama31"], vram_gb=3), 3)
        assert small.job_id == "t/small"
        big.cancel()
        await asyncio.gather(big, return_exceptions=True)
        a.release(small)
        b.release(filler)
    finally:
        await a.close()
        await b.close()
