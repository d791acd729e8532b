"""Rate limits per user and per tenant: requests and tokens per minute, in fixed windows.

In process by default; in Redis (atomic Lua) when several replicas must share the counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from policies.errors import LimitsUnavailable

WINDOW_S = 60


class Quota(BaseModel):
    """Requests and tokens one principal may use per minute."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int = Field(default=120, ge=0)
    tokens_per_minute: int = Field(default=200_000, ge=0)


class QuotaPair(BaseModel):
    """A user's and a tenant's quota."""

    model_config = ConfigDict(extra="forbid")

    user: Quota = Field(default_factory=Quota)
    tenant: Quota = Field(
        default_factory=lambda: Quota(requests_per_minute=1200, tokens_per_minute=2_000_000)
    )


class LimitsPolicy(BaseModel):
    """`config/limits.yaml`: defaults and per-tenant overrides."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    default: QuotaPair = Field(default_factory=QuotaPair)
    tenants: dict[str, QuotaPair] = Field(default_factory=dict)

    def for_tenant(self, tenant: str) -> QuotaPair:
        return self.tenants.get(tenant, self.default)


def load_limits(path: Path) -> LimitsPolicy:
    try:
        return LimitsPolicy.model_validate(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class Decision:
    """Whether a request may go ahead, and what the client is told in headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    scope: str
    """Which counter decided, e.g. `user:bob:requests`."""
    window: int = 0
    """Start of the minute the requests were counted in (for a refund)."""


class Counters(Protocol):
    """Windowed counters shared by whoever must agree on the limits."""

    async def consume(
        self, keys: list[tuple[str, int]], amount: int, ttl_s: int
    ) -> tuple[bool, int, int]:
        """Atomically: if every key's count + amount is within its limit (or, for amount 0,
        under it), add amount to all and return (True, -1, min remaining); else change nothing
        and return (False, index of the key over its limit, its count)."""
        ...

    async def add(self, keys: list[str], amount: int, ttl_s: int) -> None: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """Counters in this process (one router)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counts: dict[str, int] = {}
        self._expiry: dict[str, float] = {}
        self._clock = clock

    def _get(self, key: str) -> int:
        if self._expiry.get(key, float("inf")) <= self._clock():
            self._counts.pop(key, None)
            self._expiry.pop(key, None)
        return self._counts.get(key, 0)

    def _bump(self, key: str, amount: int, ttl_s: int) -> int:
        value = self._get(key) + amount
        self._counts[key] = value
        self._expiry.setdefault(key, self._clock() + ttl_s)
        return value

    async def consume(
        self, keys: list[tuple[str, int]], amount: int, ttl_s: int
    ) -> tuple[bool, int, int]:
        for i, (key, limit) in enumerate(keys):
            count = self._get(key)
            if (amount > 0 and count + amount > limit) or (amount == 0 and count >= limit):
                return False, i, count
        return True, -1, min(limit - self._bump(key, amount, ttl_s) for key, limit in keys)

    async def add(self, keys: list[str], amount: int, ttl_s: int) -> None:
        for key in keys:
            self._bump(key, amount, ttl_s)

    async def close(self) -> None:
        return None


_CONSUME = """
local amount = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local counts = {}
for i, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', key) or '0')
  local lim = tonumber(ARGV[i + 2])
  if (amount > 0 and cur + amount > lim) or (amount == 0 and cur >= lim) then
    return {0, i - 1, cur}
  end
  counts[i] = cur
end
local remaining = -1
for i, key in ipairs(KEYS) do
  local v = redis.call('INCRBY', key, amount)
  if v == amount then redis.call('EXPIRE', key, ttl) end
  local left = tonumber(ARGV[i + 2]) - v
  if remaining < 0 or left < remaining then remaining = left end
end
return {1, -1, remaining}
"""


def _unreachable(exc: RedisError) -> LimitsUnavailable:
    return LimitsUnavailable(f"rate-limit counters unreachable: {exc}", retry_after_s=5)


class RedisCounters:
    """Counters in Redis: every replica sees the same counts; checks and increments are atomic."""

    def __init__(self, url: str) -> None:
        from cluster.cache import redis_client

        self._redis: Any = redis_client(url)
        self._script: Any = self._redis.register_script(_CONSUME)

    async def consume(
        self, keys: list[tuple[str, int]], amount: int, ttl_s: int
    ) -> tuple[bool, int, int]:
        try:
            result = await self._script(
                keys=[k for k, _ in keys], args=[amount, ttl_s, *[limit for _, limit in keys]]
            )
        except RedisError as exc:
            raise _unreachable(exc) from exc
        return bool(result[0]), int(result[1]), int(result[2])

    async def add(self, keys: list[str], amount: int, ttl_s: int) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.incrby(key, amount)
                    pipe.expire(key, ttl_s, nx=True)
                await pipe.execute()
        except RedisError as exc:
            raise _unreachable(exc) from exc

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """Requests and tokens per minute for a user and their tenant."""

    def __init__(
        self, policy: LimitsPolicy, counters: Counters, clock: Callable[[], float] = time.time
    ) -> None:
        self.policy = policy
        self._counters = counters
        self._clock = clock

    def _window(self) -> tuple[int, float]:
        """The current window's start, and seconds until it ends."""
        now = self._clock()
        start = int(now // WINDOW_S) * WINDOW_S
        return start, start + WINDOW_S - now

    def _keys(
        self, user: str, tenant: str, kind: str, start: int | None = None
    ) -> tuple[list[tuple[str, int]], list[str]]:
        quotas = self.policy.for_tenant(tenant)
        if start is None:
            start, _ = self._window()
        field = "requests_per_minute" if kind == "requests" else "tokens_per_minute"
        scopes = [f"user:{tenant}/{user}:{kind}", f"tenant:{tenant}:{kind}"]
        limits = [getattr(quotas.user, field), getattr(quotas.tenant, field)]
        return [(f"rl:{s}:{start}", lim) for s, lim in zip(scopes, limits, strict=True)], scopes

    async def admit(self, user: str, tenant: str, requests: int = 1) -> Decision:
        """Count `requests` requests against both request quotas, all or none, unless that
        would go over a quota (then not allowed: 429).

        Token quotas must also have room left; tokens are counted after the answer (`spend`).
        LimitsUnavailable when shared counters cannot be reached.
        """
        start, reset = self._window()
        if not self.policy.enabled:
            return Decision(True, 0, 0, reset, "")
        token_keys, token_scopes = self._keys(user, tenant, "tokens")
        ok, index, _ = await self._counters.consume(token_keys, 0, WINDOW_S + 5)
        if not ok:
            return Decision(False, token_keys[index][1], 0, reset, token_scopes[index])
        keys, scopes = self._keys(user, tenant, "requests", start)
        ok, index, remaining = await self._counters.consume(keys, requests, WINDOW_S + 5)
        if not ok:
            return Decision(False, keys[index][1], 0, reset, scopes[index])
        tightest = min(limit for _, limit in keys)
        return Decision(True, tightest, max(remaining, 0), reset, "", start)

    async def refund(self, user: str, tenant: str, decision: Decision, requests: int) -> None:
        """Give back `requests` admitted under `decision` that never ran (the router refused
        them after admission); nothing once their minute is over."""
        if not self.policy.enabled or not decision.allowed or decision.window != self._window()[0]:
            return
        keys, _ = self._keys(user, tenant, "requests", decision.window)
        await self._counters.add([k for k, _ in keys], -requests, WINDOW_S + 5)

    async def close(self) -> None:
        """Close the counters' connections."""
        await self._counters.close()

    async def spend(self, user: str, tenant: str, tokens: int) -> None:
        """Count the tokens an answer used."""
        if self.policy.enabled and tokens > 0:
            keys, _ = self._keys(user, tenant, "tokens")
            await self._counters.add([k for k, _ in keys], tokens, WINDOW_S + 5)
