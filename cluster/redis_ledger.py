"""The ledger replicas share: reservations and waiting jobs in Redis, changed by Lua scripts.

Per node, a sorted set of lease ids scored by expiry and a hash of their VRAM; the queue is
a hash of waiting jobs and a sorted set of their expiries. Every expiry is Redis's own clock
plus a time to live that the holder refreshes while it runs, so what a replica that died
(kill -9) held or waited for is gone within `ttl_s`. A claim re-checks its node's job cap and
VRAM against every replica's live reservations in the same script that records it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from redis.exceptions import RedisError

from cluster.events import RedisEvents
from cluster.ledger import Claim, LedgerView, WaitingJob
from policies.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_PURGE = """
local function purge(z, h, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 then
    redis.call('HDEL', h, unpack(gone))
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  end
end
"""

# KEYS: queue hash, queue expiries, then each node's lease set and VRAM hash.
_VIEW = (
    _NOW
    + _PURGE
    + """
local out = {}
purge(KEYS[2], KEYS[1], now)
for i = 3, #KEYS, 2 do
  purge(KEYS[i], KEYS[i + 1], now)
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[i + 1])) do sum = sum + tonumber(v) end
  table.insert(out, redis.call('ZCARD', KEYS[i]))
  table.insert(out, tostring(sum))
end
table.insert(out, redis.call('HVALS', KEYS[1]))
return out
"""
)

# KEYS: the node's lease set and VRAM hash. ARGV: lease id, GB, job cap (-1: none), VRAM
# budget, time to live (ms).
_CLAIM = (
    _NOW
    + _PURGE
    + """
purge(KEYS[1], KEYS[2], now)
local cap = tonumber(ARGV[3])
if cap >= 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
local used = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(v) end
if used + tonumber(ARGV[2]) > tonumber(ARGV[4]) + 1e-6 then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
)

# KEYS: each lease's set and VRAM hash, then the queue expiries. ARGV: time to live (ms),
# number of leases, (lease id, GB) per lease, then the waiter ids. A lease that expired while
# its holder could not reach Redis is put back (its call still runs on the node), and named
# in the reply; a waiter that expired stays gone (its replica re-queues it).
_HEARTBEAT = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local lost = {}
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local id, gb = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  if not redis.call('ZSCORE', z, id) then
    table.insert(lost, id)
    redis.call('HSET', h, id, gb)
  end
  redis.call('ZADD', z, now + ttl, id)
end
for j = 3 + 2 * n, #ARGV do redis.call('ZADD', KEYS[#KEYS], 'XX', now + ttl, ARGV[j]) end
return lost
"""
)

# KEYS: queue hash, queue expiries. ARGV: waiter id, its JSON, time to live (ms).
_ENQUEUE = (
    _NOW
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)


async def _reachable(call: Awaitable[T]) -> T:
    """`call`'s result; StoreUnavailable (503) while Redis cannot be reached: without the
    shared ledger no replica may place work, or the nodes' caps would not hold."""
    try:
        return await call
    except RedisError as exc:
        raise StoreUnavailable(
            f"the control plane (Redis) is unreachable: {exc}", retry_after_s=5
        ) from exc


class RedisLedger:
    """Reservations and the queue in Redis, for replicas that must act as one router."""

    def __init__(self, url: str, prefix: str, replica: str, ttl_s: float) -> None:
        from cluster.cache import redis_client

        self.replica = replica
        self.ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix
        self._redis: Any = redis_client(url)
        self._view: Any = self._redis.register_script(_VIEW)
        self._claim: Any = self._redis.register_script(_CLAIM)
        self._heartbeat: Any = self._redis.register_script(_HEARTBEAT)
        self._enqueue: Any = self._redis.register_script(_ENQUEUE)
        self.events = RedisEvents(url, f"{prefix}:events", replica)
        self._background: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def shared(self) -> bool:
        return True

    @property
    def heartbeat_s(self) -> float:
        # Four beats per time to live: one or two lost to a slow Redis cost nothing.
        return self.ttl_ms / 4000

    def _leases(self, node_id: str) -> str:
        return f"{self._prefix}:leases:{node_id}"

    def _gb(self, node_id: str) -> str:
        return f"{self._prefix}:lease-gb:{node_id}"

    @property
    def _queue(self) -> tuple[str, str]:
        return f"{self._prefix}:queue", f"{self._prefix}:queue-exp"

    async def view(self, node_ids: Iterable[str]) -> LedgerView:
        nodes = list(node_ids)
        keys = [*self._queue]
        for node_id in nodes:
            keys += [self._leases(node_id), self._gb(node_id)]
        out = await _reachable(self._view(keys=keys))
        view = LedgerView()
        for i, node_id in enumerate(nodes):
            view.in_flight[node_id] = int(out[2 * i])
            view.reserved_gb[node_id] = float(out[2 * i + 1])
        for raw in out[-1]:
            entry = json.loads(raw)
            view.waiting.append(
                WaitingJob(
                    entry["id"],
                    entry["replica"],
                    entry["job"],
                    int(entry["priority"]),
                    float(entry["enqueued_at"]),
                    tuple(entry["models"]),
                    entry.get("vram"),
                )
            )
        return view

    async def claim(self, claim: Claim) -> bool:
        cap = -1 if claim.job_cap is None else claim.job_cap
        args = [claim.lease_id, claim.vram_gb, cap, claim.vram_budget_gb, self.ttl_ms]
        keys = [self._leases(claim.node_id), self._gb(claim.node_id)]
        return bool(await _reachable(self._claim(keys=keys, args=args)))

    def release(self, lease_id: str, node_id: str) -> None:
        self._later(self._release(lease_id, node_id), f"release {lease_id}")

    async def _release(self, lease_id: str, node_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._leases(node_id), lease_id)
            pipe.hdel(self._gb(node_id), lease_id)
            await pipe.execute()
        await self.events.publish("capacity", node_id)

    async def enqueue(self, job: WaitingJob) -> None:
        entry = {
            "id": job.waiter_id,
            "replica": job.replica,
            "job": job.job_id,
            "priority": job.priority,
            "enqueued_at": job.enqueued_at,
            "models": list(job.models),
            "vram": job.vram_gb,
        }
        await _reachable(
            self._enqueue(
                keys=list(self._queue), args=[job.waiter_id, json.dumps(entry), self.ttl_ms]
            )
        )

    def dequeue(self, waiter_id: str) -> None:
        self._later(self._dequeue(waiter_id), f"dequeue {waiter_id}")

    async def _dequeue(self, waiter_id: str) -> None:
        queue, expiries = self._queue
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(queue, waiter_id)
            pipe.zrem(expiries, waiter_id)
            await pipe.execute()
        await self.events.publish("queue", waiter_id)

    async def heartbeat(
        self, leases: dict[str, tuple[str, float]], waiters: Iterable[str]
    ) -> list[str]:
        waiting = list(waiters)
        if not leases and not waiting:
            return []
        keys: list[str] = []
        args: list[object] = [self.ttl_ms, len(leases)]
        for lease_id, (node_id, gb) in leases.items():
            keys += [self._leases(node_id), self._gb(node_id)]
            args += [lease_id, gb]
        keys.append(self._queue[1])
        lost = await _reachable(self._heartbeat(keys=keys, args=[*args, *waiting]))
        return [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in lost]

    def on_change(self, listener: Callable[[], None]) -> None:
        self.events.on("capacity", lambda _: listener())
        self.events.on("queue", lambda _: listener())

    def _later(self, work: Any, what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except RedisError as exc:
                # Left to expire: the time to live gives it back.
                log.warning(
                    "ledger: %s failed (%s); it expires within %d ms", what, exc, self.ttl_ms
                )

        task = asyncio.get_running_loop().create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def start(self) -> None:
        if not self._started:
            self._started = True
            await self.events.start()

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.events.close()
        await self._redis.aclose()
