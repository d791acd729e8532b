"""The response cache holds call results, in the process or in the machine's Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from cluster.cache import MemoryCache, RedisCache, ResponseCache, cache_key
from cluster.completion import CallResult, Completion
from policies.usage import Usage

REDIS = "redis://127.0.0.1:6379/0"
RESULT = CallResult(
    completion=Completion("c1", "llama31", "benign", "stop", Usage(5, 1, 6), 1_700_000_000),
    model="llama31",
    node_id="gb10-node-2",
    endpoint="http://gb10-node-2:8001/llama31/v1",
    latency_ms=3.5,
    confidence=0.9,
    item_confidence={1: 0.75, 12: 0.5},
)


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[ResponseCache]:
    store: ResponseCache = MemoryCache(60) if request.param == "memory" else RedisCache(REDIS, 60)
    yield store
    await store.close()


async def test_a_call_result_comes_back_as_it_went_in(cache: ResponseCache) -> None:
    key = cache_key(f"t-{uuid.uuid4().hex}", "llama31", "Is this benign?", None, {})
    assert await cache.get(key) is None
    await cache.set(key, RESULT)
    assert await cache.get(key) == RESULT


async def test_an_unreadable_redis_entry_is_a_miss() -> None:
    import redis.asyncio as redis

    key = cache_key(f"t-{uuid.uuid4().hex}", "llama31", "x", None, {})
    client = redis.from_url(REDIS)
    await client.set(key, '{"choices": []}', ex=60)
    await client.aclose()
    cache = RedisCache(REDIS, 60)
    assert await cache.get(key) is None
    await cache.close()
