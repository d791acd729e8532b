"""Group commit: writes that arrive while one commit runs go together in the next.

A request waits for its own write to be durable, as before; under load, one transaction (one
fsync) carries every record that queued up meanwhile, instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

Commit = Callable[[Sequence[T]], Awaitable[None]]


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
            try:
                await self._commit([item for item, _ in batch])
            except Exception as exc:  # every waiter of the batch hears why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def drain(self) -> None:
        """Wait for what is queued to be committed (or to have failed)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
