"""The audit trail: one record for every LLM request, accepted or refused.

SQLite by default; PostgreSQL when `DATABASE_URL` is set. Records are written before the
response leaves, so a client that got an answer has an audit record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg

from cluster.postgres import open_pool
from service.group_commit import GroupCommit, Outcomes

R = TypeVar("R")

#: What PostgreSQL raises for a record it will never take (bad data). Any other database
#: error (a dropped table, a revoked grant) is about the store, not the record.
REFUSED = (psycopg.DataError, psycopg.IntegrityError)

COLUMNS = (
    "id",
    "at",
    "tenant",
    "user_id",
    "job_id",
    "prompt_sha256",
    "prompt_chars",
    "prompt_text",
    "task_type",
    "model",
    "node",
    "mode",
    "status",
    "http_status",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cache_hit",
    "error_code",
    "entry_point",
)
FILTERS = (
    "tenant",
    "user_id",
    "job_id",
    "status",
    "model",
    "task_type",
    "error_code",
    "entry_point",
)


@dataclass
class AuditRecord:
    """What happened to one request."""

    tenant: str
    user_id: str
    prompt_sha256: str
    prompt_chars: int
    status: str
    http_status: int
    job_id: str | None = None
    prompt_text: str | None = None
    task_type: str | None = None
    model: str | None = None
    node: str | None = None
    mode: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit: bool = False
    error_code: str | None = None
    entry_point: str | None = None
    """Where the request came in: `process`, `graph/invoke`, `test-classification`, ..."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: float = field(default_factory=time.time)

    def row(self) -> tuple[Any, ...]:
        data = asdict(self)
        return tuple(data[c] if c != "cache_hit" else int(self.cache_hit) for c in COLUMNS)


def prompt_fingerprint(prompt: str) -> tuple[str, int]:
    return hashlib.sha256(prompt.encode()).hexdigest(), len(prompt)


@dataclass(frozen=True)
class AuditQuery:
    """Filters (exact matches), a time range and a page."""

    filters: dict[str, str]
    since: float | None = None
    until: float | None = None
    limit: int = 100
    offset: int = 0


class AuditStore(Protocol):
    async def write(self, record: AuditRecord) -> None: ...

    async def spooled(self) -> int:
        """Records written but not yet in the shared trail (waiting for it to come back)."""
        ...

    async def query(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def count(self, q: AuditQuery) -> int: ...

    async def close(self) -> None: ...


def _where(q: AuditQuery, placeholder: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for key, value in q.filters.items():
        if key not in FILTERS:
            raise ValueError(f"unknown audit filter {key!r}; valid: {', '.join(FILTERS)}")
        clauses.append(f"{key} = {placeholder}")
        args.append(value)
    if q.since is not None:
        clauses.append(f"at >= {placeholder}")
        args.append(q.since)
    if q.until is not None:
        clauses.append(f"at < {placeholder}")
        args.append(q.until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _to_dict(row: Sequence[Any]) -> dict[str, Any]:
    data = dict(zip(COLUMNS, row, strict=True))
    data["cache_hit"] = bool(data["cache_hit"])
    return data


SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, tenant TEXT NOT NULL,
    user_id TEXT NOT NULL, job_id TEXT, prompt_sha256 TEXT NOT NULL, prompt_chars INTEGER NOT NULL,
    prompt_text TEXT, task_type TEXT, model TEXT, node TEXT, mode TEXT, status TEXT NOT NULL,
    http_status INTEGER NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    cache_hit INTEGER NOT NULL, error_code TEXT, entry_point TEXT
)
"""
#: Columns added after the first release, for trails created before them.
ADDED_COLUMNS = {"entry_point": "TEXT"}
INDEX = "CREATE INDEX IF NOT EXISTS audit_log_tenant_at ON audit_log (tenant, at)"


async def _create_postgres_schema(conn: Any) -> None:
    async with conn.transaction():
        # CREATE ... IF NOT EXISTS is not atomic: replicas reconnecting together would race on
        # the catalog (a unique violation). One at a time.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('audit_log schema'))")
        await conn.execute(SCHEMA)
        await conn.execute(INDEX)
        for column, kind in ADDED_COLUMNS.items():
            await conn.execute(f"ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS {column} {kind}")


class SqliteAuditStore:
    """The embedded default: one SQLite file, WAL journal, full sync. Its one connection
    lives on a thread of its own; records that queue up while a commit runs share the next."""

    def __init__(self, db: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._db = db
        self._thread = thread
        self._writes = GroupCommit(self._insert)

    @classmethod
    async def open(cls, path: Path) -> SqliteAuditStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-sqlite")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(SCHEMA)
            db.execute(INDEX)
            present = {row[1] for row in db.execute("PRAGMA table_info(audit_log)")}
            for column, kind in ADDED_COLUMNS.items():
                if column not in present:
                    db.execute(f"ALTER TABLE audit_log ADD COLUMN {column} {kind}")
            return db

        db = await asyncio.get_running_loop().run_in_executor(thread, connect)
        return cls(db, thread)

    async def _run(self, work: Callable[[], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def write(self, record: AuditRecord) -> None:
        """Insert, or replace the record with the same id (an async job's final state);
        durable when this returns."""
        await self._writes.submit(record.row())

    async def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        def insert() -> None:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(_SQLITE_INSERT, rows)

        await self._run(insert)

    async def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        where, args = _where(q, "?")
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log{where} ORDER BY at, id LIMIT ? OFFSET ?"
        rows = await self._run(lambda: self._db.execute(sql, [*args, q.limit, q.offset]).fetchall())
        return [_to_dict(r) for r in rows]

    async def count(self, q: AuditQuery) -> int:
        where, args = _where(q, "?")
        sql = f"SELECT COUNT(*) FROM audit_log{where}"
        row = await self._run(lambda: self._db.execute(sql, args).fetchone())
        return int(row[0]) if row else 0

    async def spooled(self) -> int:
        return 0

    async def close(self) -> None:
        await self._writes.drain()
        await self._run(self._db.close)
        self._thread.shutdown(wait=True)


_SQLITE_INSERT = (
    f"INSERT OR REPLACE INTO audit_log ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


class PostgresAuditStore:
    """Shared by every router replica. Records that queue up while a commit runs share the
    next transaction."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._schema_ready = False
        self._writes = GroupCommit(self._insert)

    @classmethod
    async def open(cls, url: str, *, lazy: bool = False) -> PostgresAuditStore:
        """The trail at `url`, its table created if missing. With `lazy`, PostgreSQL need not
        answer now: the table is created on the first connection that works."""
        # Two writes per request: a burst of them waits for connections, not for PostgreSQL.
        store = cls(await open_pool(url, max_size=20))
        if not lazy:
            try:
                await store.ping()
            except BaseException:
                await store.close()
                raise
        return store

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; the first that works creates the table."""
        async with self._pool.connection() as conn:
            if not self._schema_ready:
                await _create_postgres_schema(conn)
                self._schema_ready = True
            yield conn

    async def ping(self) -> None:
        """Check that PostgreSQL answers (creating the table, the first time); raises as a
        write would."""
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    async def write(self, record: AuditRecord) -> None:
        """Insert, or replace the record with the same id (an async job's final state);
        committed when this returns."""
        await self._writes.submit(record.row())

    async def _insert(self, rows: Sequence[tuple[Any, ...]]) -> Outcomes:
        try:
            # One transaction: the pool commits a connection's open one when it takes it back.
            async with self._connection() as conn:
                if len(rows) == 1:
                    await conn.execute(POSTGRES_UPSERT, rows[0])
                else:
                    await conn.cursor().executemany(POSTGRES_UPSERT, rows)
            return None
        except REFUSED:
            if len(rows) == 1:
                raise
        # One record PostgreSQL will not take fails its whole transaction: the batch again,
        # a record at a time, so that only that record's write fails.
        return [await self._insert_alone(row) for row in rows]

    async def _insert_alone(self, row: tuple[Any, ...]) -> Exception | None:
        try:
            async with self._connection() as conn:
                await conn.execute(POSTGRES_UPSERT, row)
        except REFUSED as exc:
            return exc
        return None

    async def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        where, args = _where(q, "%s")
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM audit_log{where} ORDER BY at, id LIMIT %s OFFSET %s"
        )
        async with self._connection() as conn:
            cursor = await conn.execute(sql, [*args, q.limit, q.offset])
            return [_to_dict(r) for r in await cursor.fetchall()]

    async def count(self, q: AuditQuery) -> int:
        where, args = _where(q, "%s")
        async with self._connection() as conn:
            cursor = await conn.execute(f"SELECT COUNT(*) FROM audit_log{where}", args)
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        await self._writes.drain()
        await self._pool.close()


POSTGRES_UPSERT = (
    f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS[1:])}"
)


def to_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
