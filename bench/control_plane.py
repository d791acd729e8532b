"""What sharing the control plane costs, and how fast it hands capacity over.

    uv run python bench/control_plane.py [--requests 1000] [--handovers 200]

One run, this machine's Redis:
1. a reservation and its release through the scheduler, in-process ledger against the
   Redis ledger, interleaved;
2. hand-over: replica A releases the only slot that replica B's waiting job wants; the time
   from A's release to B holding the reservation (two schedulers in this process, each with
   its own Redis connections and subscription: the notice goes through Redis);
3. a replica that dies holding the slot (it stops refreshing and never releases): the time
   until the waiting replica holds it, against the time to live;
4. throughput of `gb10-router serve --workers 2` against `--workers 1` (both on Redis and
   PostgreSQL), against a zero-latency fake node, all on this machine's 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import yaml

from bench.common import fake_node, interleaved, print_table, router_process
from cluster.config import CONFIG_DIR, load_cluster_config
from cluster.health import HealthBoard
from cluster.ledger import Ledger, LocalLedger
from cluster.redis_ledger import RedisLedger
from cluster.registry import NodeRegistry
from cluster.scheduler import JobScheduler
from service.auth import issue_token

REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "bench-secret-0123456789abcdef0123456789"
MODEL = ["llama31"]


def capped_config(max_jobs: int | None) -> Path:
    config = yaml.safe_load((CONFIG_DIR / "cluster.yaml").read_text())
    for node in config["nodes"]:
        node["max_jobs"] = max_jobs
    path = Path(tempfile.mkdtemp()) / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def scheduler(ledger: Ledger, config: Path) -> JobScheduler:
    cluster = load_cluster_config(config)
    return JobScheduler(
        cluster, NodeRegistry(cluster, HealthBoard(cluster)), default_timeout_s=60, ledger=ledger
    )


def redis_ledger(prefix: str, ttl_s: float = 10.0) -> RedisLedger:
    return RedisLedger(REDIS, prefix, uuid.uuid4().hex[:12], ttl_s)


async def ledger_cost(n: int) -> dict[str, list[float]]:
    config = capped_config(None)
    local = scheduler(LocalLedger(), config)
    shared = scheduler(redis_ledger(f"bench-{uuid.uuid4().hex[:8]}"), config)

    def cycle(s: JobScheduler) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            lease = await s.reserve("bench/job", MODEL)
            assert lease is not None
            s.release(lease)

        return run

    try:
        return await interleaved(
            {
                "reserve + release, in-process": cycle(local),
                "reserve + release, Redis": cycle(shared),
            },
            n,
        )
    finally:
        await shared.close()


async def queued(s: JobScheduler) -> None:
    """Until `s` has a job waiting."""
    for _ in range(10_000):
        if s.queue_depth:
            return
        await asyncio.sleep(0.001)
    raise TimeoutError("the job never queued")


async def handovers(n: int) -> list[float]:
    config = capped_config(1)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    a, b = scheduler(redis_ledger(prefix), config), scheduler(redis_ledger(prefix), config)
    delays = []
    try:
        for _ in range(n):
            held = await a.reserve("a/job", MODEL)
            assert held is not None
            waiting = asyncio.create_task(b.acquire("b/job", MODEL))
            await queued(b)
            await asyncio.sleep(0.01)  # its queue entry is in Redis
            started = time.perf_counter()
            a.release(held)
            lease = await waiting
            delays.append((time.perf_counter() - started) * 1000)
            b.release(lease)
            await asyncio.sleep(0.005)
    finally:
        await a.close()
        await b.close()
    return delays


async def dead_replica(ttl_s: float, runs: int) -> list[float]:
    config = capped_config(1)
    back = []
    for _ in range(runs):
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        doomed, survivor = (
            scheduler(redis_ledger(prefix, ttl_s), config),
            scheduler(redis_ledger(prefix, ttl_s), config),
        )
        held = await doomed.reserve("dead/job", MODEL)
        assert held is not None
        waiting = asyncio.create_task(survivor.acquire("live/job", MODEL))
        await queued(survivor)
        # It dies: no more heartbeats, no release.
        await doomed.close()
        died = time.perf_counter()
        lease = await waiting
        back.append(time.perf_counter() - died)
        survivor.release(lease)
        await survivor.close()
    return back


async def throughput(url: str, requests: int, concurrency: int) -> float:
    token = issue_token(SECRET, user="bench", tenant="bench")
    body = {"prompt": "Summarize the incident timeline", "model": "llama31"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as client:
        for _ in range(50):
            (await client.post(f"{url}/api/llm/process", json=body)).raise_for_status()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                (await client.post(f"{url}/api/llm/process", json=body)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--handovers", type=int, default=200)
    parser.add_argument("--throughput-requests", type=int, default=2000)
    args = parser.parse_args()

    print("## 1. The ledger's cost per request (same run)\n")
    print_table(asyncio.run(ledger_cost(args.requests)))

    print("\n## 2. Hand-over: a release on replica A to the start of B's waiting job\n")
    print_table({"release on A -> B holds it": asyncio.run(handovers(args.handovers))})

    ttl_s = 2.0
    back = asyncio.run(dead_replica(ttl_s, 3))
    print(f"\n## 3. A replica dies holding the slot (time to live {ttl_s:g} s)\n")
    print(", ".join(f"{s:.2f} s" for s in back))

    print("\n## 4. Throughput, `serve --workers N` on Redis (2 cores shared with the load)\n")
    print("| workers | requests/s |\n|---------|------------|")
    with fake_node() as node_url:
        for workers in (1, 2):
            env = {
                "LLM_NODE_1_URL": node_url,
                "LLM_NODE_2_URL": node_url,
                "LLM_MAX_RETRIES": "0",
                "REDIS_URL": REDIS,
                "DATABASE_URL": POSTGRES,
                "ROUTER_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                "ROUTER_STATE_DIR": tempfile.mkdtemp(),
            }
            with router_process(SECRET, "--workers", str(workers), **env) as url:
                rate = asyncio.run(throughput(url, args.throughput_requests, 32))
            print(f"| {workers:>7} | {rate:>10.0f} |")


if __name__ == "__main__":
    main()
