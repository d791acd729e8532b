"""The response cache: exact matches of tenant, model, messages and generation parameters.

Only deterministic calls (temperature 0) or callers that opt in are cached. In process by
default; Redis when several replicas share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from redis.exceptions import RedisError

from cluster.completion import CallResult, Completion, FailedOver
from policies.usage import Usage

log = logging.getLogger(__name__)


def cache_key(
    tenant: str, model: str, prompt: str, system: str | None, params: dict[str, Any]
) -> str:
    """Key over everything that changes the answer; the tenant first, so no entry is shared."""
    material = json.dumps(
        {"tenant": tenant, "model": model, "prompt": prompt, "system": system, "params": params},
        sort_keys=True,
    )
    # v3: entries hold an encoded CallResult with item confidences; replicas of older
    # releases read other keys.
    return f"gb10:cache:v3:{tenant}:{hashlib.sha256(material.encode()).hexdigest()}"


def cacheable(params: dict[str, Any], opted_in: bool) -> bool:
    """Deterministic requests (temperature 0), or ones whose caller asked for caching."""
    return opted_in or params.get("temperature") == 0


def encode(result: CallResult) -> str:
    """A call result as the JSON a cache entry holds (its tokens left out)."""
    data = dataclasses.asdict(result)
    del data["tokens"]
    return json.dumps(data)


def decode(raw: str | bytes) -> CallResult:
    """The call result a cache entry holds."""
    data = json.loads(raw)
    completion = dict(data.pop("completion"))
    completion["usage"] = Usage(**completion["usage"])
    moved = data.pop("failed_over_from")
    data["item_confidence"] = {int(k): v for k, v in data.get("item_confidence", {}).items()}
    return CallResult(
        completion=Completion(**completion),
        failed_over_from=None if moved is None else FailedOver(**moved),
        **data,
    )


# Checkable at run time so that a context holding one can have a pydantic (JSON) schema.
@runtime_checkable
class ResponseCache(Protocol):
    async def get(self, key: str) -> CallResult | None: ...

    async def set(self, key: str, value: CallResult) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """A bounded LRU with a time to live, in this process."""

    def __init__(
        self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, CallResult]] = OrderedDict()

    async def get(self, key: str) -> CallResult | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: CallResult) -> None:
        self._data[key] = (self._clock() + self._ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def close(self) -> None:
        return None


def redis_client(url: str) -> Any:
    """A Redis client whose pool makes callers wait for a connection rather than fail."""
    import redis.asyncio as redis

    # Short socket timeouts: a Redis that went away answers errors in seconds, not minutes.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=10, socket_connect_timeout=2, socket_timeout=2
    )
    return redis.Redis(connection_pool=pool)


class RedisCache:
    """Entries in Redis with SET EX: every replica reads what any replica stored."""

    def __init__(self, url: str, ttl_s: float) -> None:
        self._redis: Any = redis_client(url)
        self._ttl = max(1, int(ttl_s))

    async def get(self, key: str) -> CallResult | None:
        """The entry, or None: a miss, an unreadable entry, or Redis unreachable (the call then
        goes to the model; a cache is never worth failing a request for)."""
        try:
            raw = await self._redis.get(key)
        except RedisError as exc:
            log.warning("response cache unreachable, answering from the model: %s", exc)
            return None
        if raw is None:
            return None
        try:
            return decode(raw)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cache entry %s is unreadable, treated as a miss: %r", key, exc)
            return None

    async def set(self, key: str, value: CallResult) -> None:
        """Store the entry; when Redis is unreachable the answer is simply not cached."""
        try:
            await self._redis.set(key, encode(value), ex=self._ttl)
        except RedisError as exc:
            log.warning("response cache unreachable, answer not cached: %s", exc)

    async def close(self) -> None:
        await self._redis.aclose()
