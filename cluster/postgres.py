"""PostgreSQL connections for the stores replicas share, and what "unreachable" looks like."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

#: What a PostgreSQL that went away (or never answered) raises.
UNREACHABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
    OSError,
)


async def open_pool(url: str, *, max_size: int = 10, **kwargs: Any) -> AsyncConnectionPool[Any]:
    """An open pool whose callers wait at most 2 s for a connection: while PostgreSQL is
    away they fail fast (and their caller falls back) rather than queue for half a minute."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=1, max_size=max_size, timeout=2, open=False, kwargs=kwargs or None
    )
    await pool.open()
    return pool
