"""Where asynchronous jobs are kept: SQLite under the state directory on one machine, or
PostgreSQL, shared by every replica.

Both run the same statements, written with `:name` parameters and `:now` for the store's
clock. PostgreSQL's clock stands in for the replicas' own, so leases hold whatever their
clocks say; SQLite's `now` is this machine's.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from cluster.postgres import Deadline, open_pool
from service.jobs import QUEUED, UNFINISHED, JobKey, JobRecord

log = logging.getLogger(__name__)

COLUMNS = (
    "tenant",
    "job_id",
    "user_id",
    "roles",
    "graph_input",
    "entry_point",
    "record_id",
    "accepted_at",
    "status",
    "response",
    "error",
    "created_at",
    "finished_at",
    "owner",
    "lease_expires_at",
    "attempts",
)
_JSON = frozenset({"roles", "graph_input", "response", "error"})
_CHOSEN = ", ".join(COLUMNS)
_UNFINISHED = "(" + ", ".join(f"'{s}'" for s in UNFINISHED) + ")"
_MINE = f"tenant = :tenant AND job_id = :job_id AND owner = :owner AND status IN {_UNFINISHED}"

SCHEMA = """
CREATE TABLE IF NOT EXISTS async_jobs (
    tenant TEXT NOT NULL, job_id TEXT NOT NULL, user_id TEXT NOT NULL, roles TEXT NOT NULL,
    graph_input TEXT NOT NULL, entry_point TEXT NOT NULL, record_id TEXT NOT NULL,
    accepted_at DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, response TEXT, error TEXT,
    created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION, owner TEXT,
    lease_expires_at DOUBLE PRECISION, attempts INTEGER NOT NULL,
    PRIMARY KEY (tenant, job_id)
)
"""
INDEX = "CREATE INDEX IF NOT EXISTS async_jobs_lease ON async_jobs (status, lease_expires_at)"

# A finished job's id may be used again: the new job replaces it. An unfinished one's may not.
ADD = (
    f"INSERT INTO async_jobs ({_CHOSEN}) VALUES "
    f"({', '.join(':now + :lease_s' if c == 'lease_expires_at' else f':{c}' for c in COLUMNS)}) "
    "ON CONFLICT (tenant, job_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
    + f" WHERE async_jobs.status NOT IN {_UNFINISHED} RETURNING job_id"
)
GET = f"SELECT {_CHOSEN} FROM async_jobs WHERE tenant = :tenant AND job_id = :job_id"
START = (
    "UPDATE async_jobs SET status = 'running' WHERE tenant = :tenant AND job_id = :job_id "
    "AND owner = :owner AND status = 'queued'"
)
RENEW = f"UPDATE async_jobs SET lease_expires_at = :now + :lease_s WHERE {_MINE}"
FINISH = (
    "UPDATE async_jobs SET status = :status, response = :response, error = :error, "
    f"finished_at = :finished_at, lease_expires_at = NULL WHERE {_MINE}"
)
# A handover is not a failed start: the claim that follows counts it back.
RELEASE = (
    f"UPDATE async_jobs SET status = '{QUEUED}', lease_expires_at = :now, "
    f"attempts = attempts - 1 WHERE {_MINE}"
)
PRUNE = (
    f"DELETE FROM async_jobs WHERE status NOT IN {_UNFINISHED} AND finished_at < :finished_before"
)
_CLAIM_SET = (
    "UPDATE async_jobs{alias} SET owner = :owner, lease_expires_at = :now + :lease_s, "
    "attempts = attempts + 1, status = 'running'"
)
_LAPSED = f"status IN {_UNFINISHED} AND lease_expires_at < :now"
# One statement: SQLite runs it under the database's write lock, from its read to its write,
# so a second claimer (another connection, another process) sees the new lease, not the lapsed.
SQLITE_CLAIM = (
    _CLAIM_SET.format(alias="")
    + " WHERE rowid IN (SELECT rowid FROM async_jobs WHERE "
    + _LAPSED
    + " ORDER BY lease_expires_at LIMIT :limit) AND "
    + _LAPSED
    + f" RETURNING {_CHOSEN}"
)
# The rows are locked as they are picked, and those another replica is claiming are skipped:
# concurrent claimers get disjoint jobs, and none waits for another.
POSTGRES_CLAIM = (
    _CLAIM_SET.format(alias=" AS j")
    + " FROM (SELECT tenant, job_id FROM async_jobs WHERE "
    + _LAPSED
    + " ORDER BY lease_expires_at LIMIT :limit FOR UPDATE SKIP LOCKED) AS due"
    + " WHERE j.tenant = due.tenant AND j.job_id = due.job_id"
    + " RETURNING "
    + ", ".join(f"j.{c}" for c in COLUMNS)
)


def _params(record: JobRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tenant": record.tenant,
        "job_id": record.job_id,
        "user_id": record.user,
        "roles": list(record.roles),
        "graph_input": record.graph_input,
        "entry_point": record.entry_point,
        "record_id": record.record_id,
        "accepted_at": record.accepted_at,
        "status": record.status,
        "response": record.response,
        "error": record.error,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "owner": record.owner,
        "lease_expires_at": record.lease_expires_at,
        "attempts": record.attempts,
    }
    return {k: _dumps(v) if k in _JSON else v for k, v in values.items()}


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _record(row: Sequence[Any]) -> JobRecord:
    data = dict(zip(COLUMNS, row, strict=True))
    for name in _JSON:
        raw = data[name]
        data[name] = None if raw is None else json.loads(raw)
    return JobRecord(
        job_id=data["job_id"],
        tenant=data["tenant"],
        user=data["user_id"],
        graph_input=data["graph_input"],
        record_id=data["record_id"],
        accepted_at=float(data["accepted_at"]),
        roles=tuple(data["roles"]),
        entry_point=data["entry_point"],
        status=data["status"],
        response=data["response"],
        error=data["error"],
        created_at=float(data["created_at"]),
        finished_at=None if data["finished_at"] is None else float(data["finished_at"]),
        owner=data["owner"],
        lease_expires_at=None
        if data["lease_expires_at"] is None
        else float(data["lease_expires_at"]),
        attempts=int(data["attempts"]),
    )


def _finished(key: JobKey, owner: str, status: str, response: Any, error: Any) -> dict[str, Any]:
    return {
        "tenant": key[0],
        "job_id": key[1],
        "owner": owner,
        "status": status,
        "response": _dumps(response),
        "error": _dumps(error),
        "finished_at": time.time(),
    }


def _mine(key: JobKey, owner: str, **extra: Any) -> dict[str, Any]:
    return {"tenant": key[0], "job_id": key[1], "owner": owner, **extra}


class SqliteJobStore:
    """One SQLite file (WAL, each statement its own transaction): one machine's routers."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteJobStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(SCHEMA)
        await db.execute(INDEX)
        return cls(db)

    async def _rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, {"now": time.time(), **params}))

    async def _count(self, sql: str, params: dict[str, Any]) -> int:
        async with self._db.execute(sql, {"now": time.time(), **params}) as cursor:
            return max(0, cursor.rowcount)

    async def add(self, record: JobRecord, lease_s: float) -> bool:
        return bool(await self._rows(ADD, {**_params(record), "lease_s": lease_s}))

    async def get(self, job_id: str, tenant: str) -> JobRecord | None:
        rows = await self._rows(GET, {"tenant": tenant, "job_id": job_id})
        return _record(rows[0]) if rows else None

    async def start(self, key: JobKey, owner: str) -> bool:
        return await self._count(START, _mine(key, owner)) > 0

    async def renew(self, owner: str, keys: Sequence[JobKey], lease_s: float) -> set[JobKey]:
        return {k for k in keys if await self._count(RENEW, _mine(k, owner, lease_s=lease_s))}

    async def claim(self, owner: str, lease_s: float, limit: int) -> list[JobRecord]:
        params = {"owner": owner, "lease_s": lease_s, "limit": limit}
        return [_record(r) for r in await self._rows(SQLITE_CLAIM, params)]

    async def finish(
        self,
        key: JobKey,
        owner: str,
        status: str,
        response: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> bool:
        return await self._count(FINISH, _finished(key, owner, status, response, error)) > 0

    async def release(self, owner: str, keys: Sequence[JobKey]) -> int:
        return sum([await self._count(RELEASE, _mine(k, owner)) for k in keys])

    async def prune(self, finished_before: float) -> int:
        return await self._count(PRUNE, {"finished_before": finished_before})

    async def close(self) -> None:
        await self._db.close()


def _postgres(sql: str) -> str:
    """`:name` parameters as psycopg's `%(name)s`, and `:now` as PostgreSQL's clock."""
    sql = sql.replace(":now", "extract(epoch from clock_timestamp())::float8")
    return re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)


class PostgresJobStore:
    """Shared by every replica: any of them answers for, and takes over, any job."""

    _ADD, _GET, _START, _RENEW, _FINISH, _RELEASE, _PRUNE, _CLAIM = map(
        _postgres, (ADD, GET, START, RENEW, FINISH, RELEASE, PRUNE, POSTGRES_CLAIM)
    )

    def __init__(self, pool: Any, timeout_s: float = 3.0) -> None:
        self._pool = pool
        self._bounded = Deadline(timeout_s)
        self._schema_ready = False

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 3.0) -> PostgresJobStore:
        """The jobs at `url`; PostgreSQL need not answer yet: the table is created on the
        first connection that works. A call it does not answer within `timeout_s` raises
        TimeoutError."""
        return cls(await open_pool(url), timeout_s)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection, one transaction, committed when the block ends."""
        async with self._pool.connection() as conn:
            if not self._schema_ready:
                async with conn.transaction():
                    # CREATE ... IF NOT EXISTS is not atomic: replicas starting together would
                    # race on the catalog. One at a time.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('async_jobs'))")
                    await conn.execute(SCHEMA)
                    await conn.execute(INDEX)
                self._schema_ready = True
            yield conn

    async def _rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        async def work() -> list[Any]:
            async with self._connection() as conn:
                cursor = await conn.execute(sql, params)
                return list(await cursor.fetchall())

        return await self._bounded(work())

    async def _counts(self, sql: str, many: Sequence[dict[str, Any]]) -> list[int]:
        """Each statement's row count, all in one transaction."""

        async def work() -> list[int]:
            async with self._connection() as conn:
                return [max(0, (await conn.execute(sql, p)).rowcount) for p in many]

        return await self._bounded(work())

    async def add(self, record: JobRecord, lease_s: float) -> bool:
        return bool(await self._rows(self._ADD, {**_params(record), "lease_s": lease_s}))

    async def get(self, job_id: str, tenant: str) -> JobRecord | None:
        rows = await self._rows(self._GET, {"tenant": tenant, "job_id": job_id})
        return _record(rows[0]) if rows else None

    async def start(self, key: JobKey, owner: str) -> bool:
        return (await self._counts(self._START, [_mine(key, owner)]))[0] > 0

    async def renew(self, owner: str, keys: Sequence[JobKey], lease_s: float) -> set[JobKey]:
        counts = await self._counts(self._RENEW, [_mine(k, owner, lease_s=lease_s) for k in keys])
        return {k for k, n in zip(keys, counts, strict=True) if n}

    async def claim(self, owner: str, lease_s: float, limit: int) -> list[JobRecord]:
        params = {"owner": owner, "lease_s": lease_s, "limit": limit}
        return [_record(r) for r in await self._rows(self._CLAIM, params)]

    async def finish(
        self,
        key: JobKey,
        owner: str,
        status: str,
        response: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> bool:
        params = _finished(key, owner, status, response, error)
        return (await self._counts(self._FINISH, [params]))[0] > 0

    async def release(self, owner: str, keys: Sequence[JobKey]) -> int:
        return sum(await self._counts(self._RELEASE, [_mine(k, owner) for k in keys]))

    async def prune(self, finished_before: float) -> int:
        return (await self._counts(self._PRUNE, [{"finished_before": finished_before}]))[0]

    async def close(self) -> None:
        await self._pool.close()
