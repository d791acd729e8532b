"""Where durable chains keep their checkpoints: a SQLite file, or PostgreSQL for replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from cluster.postgres import open_pool


@asynccontextmanager
async def sqlite_checkpointer(
    path: Path, serde: SerializerProtocol
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """A checkpointer on the SQLite file at `path`, set up and closed with the context."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        yield AsyncSqliteSaver(conn, serde=serde)


@asynccontextmanager
async def postgres_checkpointer(
    dsn: str, serde: SerializerProtocol
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """A checkpointer in the PostgreSQL database at `dsn`, set up and closed with the context."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row

    # A pool rather than one connection: a PostgreSQL restart costs the calls made while it
    # is away, not every chain until the router restarts.
    pool = await open_pool(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    try:
        saver = AsyncPostgresSaver(pool, serde=serde)
        await saver.setup()
        yield saver
    finally:
        await pool.close()
