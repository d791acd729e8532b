"""PostgreSQL connections for the stores replicas share, and what "unreachable" looks like."""

from __future__ import annotations

from typing import Any

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
