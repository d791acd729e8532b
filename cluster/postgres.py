"""PostgreSQL connections for the stores replicas share, and what "unreachable" looks like."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

#: What a PostgreSQL that went away, never answered or hangs raises. No bare OSError: psycopg
#: reports network failures as OperationalError, and a local disk error (the audit spool's)
#: must not pass for PostgreSQL being away.
UNREACHABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
    TimeoutError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class Deadline:
    """Runs PostgreSQL calls with a time limit: a PostgreSQL that holds its connections
    without answering must not hold a request, a heartbeat or a shutdown.

    Not asyncio.wait_for: that waits for the cancelled work to unwind, and psycopg, on a
    PostgreSQL that holds the connection open without answering, spends up to 10 s more
    trying to cancel the query. The late work is cancelled and left to unwind alone. An
    abandoned write commits nothing unless its COMMIT had already left, and then its row
    lock holds a later write of the same row until it is done: the order stands.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def __call__(self, work: Coroutine[Any, Any, T]) -> T:
        """`work`'s result, or TimeoutError once it has taken `timeout_s`."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        self._abandoned.add(task)  # a strong reference until it ends
        task.add_done_callback(self._forget)
        raise TimeoutError(f"PostgreSQL did not answer within {self.timeout_s:g} s")

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        # Its outcome is read here, or asyncio would warn that nobody retrieved it.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("abandoned PostgreSQL call ended: %s", exc)


async def open_pool(
    url: str, *, max_size: int = 10, connect_timeout: int = 3, **kwargs: Any
) -> AsyncConnectionPool[Any]:
    """An open pool whose callers wait at most 2 s for a connection: while PostgreSQL is
    away they fail fast (and their caller falls back) rather than queue for half a minute.
    A new connection gives up after `connect_timeout` s, so one that accepts TCP but never
    answers does not hold a pool slot (libpq's default is to wait for ever)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        timeout=2,
        open=False,
        kwargs={"connect_timeout": connect_timeout, **kwargs},
    )
    await pool.open()
    return pool
