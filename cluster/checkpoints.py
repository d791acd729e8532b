"""Where durable chains keep their checkpoints: a SQLite file, or PostgreSQL for replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol


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

    async with AsyncPostgresSaver.from_conn_string(dsn, serde=serde) as saver:
        await saver.setup()
        yield saver
