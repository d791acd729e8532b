"""Replica-to-replica notices over Redis pub/sub: capacity freed, a queue left, a node changed.

A notice is a hint to look again, never the state itself: the state is in Redis, and every
replica also looks on a timer, so a notice lost while a connection is re-made costs a tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from cluster.supervise import supervise

log = logging.getLogger(__name__)


class RedisEvents:
    """Publish notices to every other replica, and hear theirs."""

    def __init__(self, url: str, channel: str, replica: str) -> None:
        import redis.asyncio as redis

        # Its own connection, without a read timeout: a subscriber waits for as long as it must.
        self._redis: Any = redis.Redis.from_url(url, socket_connect_timeout=2)
        self._channel = channel
        self.replica = replica
        self._listeners: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def on(self, kind: str, listener: Callable[[str], None]) -> None:
        """Call `listener(detail)` for each notice of `kind` from another replica."""
        self._listeners[kind].append(listener)

    async def publish(self, kind: str, detail: str = "") -> None:
        await self._redis.publish(self._channel, f"{kind}|{self.replica}|{detail}")

    async def start(self) -> None:
        """Subscribe (and stay subscribed, re-connecting after a failure)."""
        self._task = asyncio.create_task(
            supervise("control-plane events", self._listen, 0.5), name="control-plane events"
        )
        try:
            await asyncio.wait_for(self._subscribed.wait(), 5)
        except TimeoutError:
            log.warning("not yet subscribed to %s; the timers carry on meanwhile", self._channel)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            self._subscribed.set()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._deliver(message["data"])
        except RedisError as exc:
            log.warning("control-plane events interrupted: %s", exc)
        finally:
            await pubsub.aclose()

    def _deliver(self, raw: bytes | str) -> None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        kind, replica, detail = [*text.split("|", 2), "", ""][:3]
        if replica == self.replica:
            return
        for listener in self._listeners.get(kind, []):
            listener(detail)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._redis.aclose()
