"""Group commit: writes that arrive while one commit runs go together in the next.

A request waits for its own write to be durable, as before; under load, one transaction (one
fsync) carries every record that queued up meanwhile, instead of one each.

A commit either raises (the whole batch failed: every waiter hears why) or returns None (every
item landed) or one outcome per item, None where it landed, for a store that can tell which
items it refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

Outcomes = Sequence[Exception | None] | None
"""None: every item landed; else what each item's commit raised, in order, None where it landed."""
Commit = Callable[[Sequence[T]], Awaitable[Outcomes]]


class GroupCommit(Generic[T]):
    """Queues items and commits them in batches, one batch at a time, in arrival order."""

    def __init__(self, commit: Commit[T], *, max_batch: int = 512) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once `item` is committed; raise what its batch's commit raised. A caller
        cancelled meanwhile leaves its item to be committed all the same."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A failed batch's waiter that was cancelled meanwhile must not log "never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group commit")
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            outcomes = await self._outcomes([item for item, _ in batch])
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)

    async def _outcomes(self, items: list[T]) -> Sequence[Exception | None]:
        try:
            outcomes = await self._commit(items)
        except Exception as exc:  # every waiter of the batch hears why
            return [exc] * len(items)
        if outcomes is None:
            return [None] * len(items)
        if len(outcomes) != len(items):
            wrong = RuntimeError(f"a commit of {len(items)} items gave {len(outcomes)} outcomes")
            return [wrong] * len(items)
        return outcomes

    async def drain(self) -> None:
        """Wait for what is queued to be committed (or to have failed)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
