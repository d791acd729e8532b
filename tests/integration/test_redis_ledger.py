"""The Redis ledger's scripts against the machine's Redis: caps, VRAM, expiry, the queue."""

from __future__ import annotations

import asyncio
import uuid

from cluster.ledger import Claim, WaitingJob
from cluster.redis_ledger import RedisLedger

REDIS = "redis://127.0.0.1:6379/0"


def ledgers(ttl_s: float = 10.0) -> tuple[RedisLedger, RedisLedger]:
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    return RedisLedger(REDIS, prefix, "a", ttl_s), RedisLedger(REDIS, prefix, "b", ttl_s)


async def test_a_claim_holds_the_job_cap_and_the_vram_budget_across_replicas() -> None:
    a, b = ledgers()
    try:
        assert await a.claim(Claim("l1", "n", 30.0, 2, 80.0))
        assert await b.claim(Claim("l2", "n", 30.0, 2, 80.0))
        assert not await a.claim(Claim("l3", "n", 1.0, 2, 80.0))  # the cap
        assert await a.claim(Claim("l3", "n", 1.0, 3, 80.0))
        assert not await b.claim(Claim("l4", "n", 30.0, None, 80.0))  # the VRAM
        view = await b.view(["n", "other"])
        assert view.in_flight == {"n": 3, "other": 0}
        assert view.reserved_gb["n"] == 61.0
        a.release("l1", "n")
        await asyncio.sleep(0.1)
        assert (await b.view(["n"])).in_flight["n"] == 2
    finally:
        await a.close()
        await b.close()


async def test_what_a_replica_stops_refreshing_expires_and_what_it_refreshes_stays() -> None:
    a, b = ledgers(ttl_s=1.0)
    try:
        assert await a.claim(Claim("kept", "n", 1.0, None, 80.0))
        assert await a.claim(Claim("dropped", "n", 1.0, None, 80.0))
        await a.enqueue(WaitingJob("w-kept", "a", "t/j1", 3, 1.0, ("llama31",)))
        await a.enqueue(WaitingJob("w-dropped", "a", "t/j2", 3, 2.0, ("llama31",)))
        for _ in range(3):
            await asyncio.sleep(0.5)
            assert await a.heartbeat({"kept": ("n", 1.0)}, ["w-kept"]) == []
        view = await b.view(["n"])
        assert view.in_flight["n"] == 1
        assert [w.waiter_id for w in view.waiting] == ["w-kept"]
        assert view.waiting[0].job_id == "t/j1"
    finally:
        await a.close()
        await b.close()


async def test_a_release_is_heard_by_the_other_replicas_only() -> None:
    a, b = ledgers()
    heard: list[str] = []
    a.on_change(lambda: heard.append("a"))
    b.on_change(lambda: heard.append("b"))
    try:
        await a.start()
        await b.start()
        assert await a.claim(Claim("l1", "n", 1.0, None, 80.0))
        a.release("l1", "n")
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert heard == ["b"]
    finally:
        await a.close()
        await b.close()


async def test_a_reservation_that_expired_while_its_call_ran_is_restored_and_named() -> None:
    a, b = ledgers(ttl_s=1.0)
    try:
        assert await a.claim(Claim("held", "n", 5.0, 1, 80.0))
        await asyncio.sleep(1.2)  # its holder could not reach Redis for longer than the TTL
        assert (await b.view(["n"])).in_flight["n"] == 0
        assert await a.heartbeat({"held": ("n", 5.0)}, []) == ["held"]
        view = await b.view(["n"])
        assert (view.in_flight["n"], view.reserved_gb["n"]) == (1, 5.0)
    finally:
        await a.close()
        await b.close()
