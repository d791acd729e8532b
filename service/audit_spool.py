"""The shared audit trail, and a local spool for the records written while PostgreSQL is away.

No record is lost and no request is refused for an audit outage: a write PostgreSQL cannot
take goes to a SQLite file on local disk, and so does every write after it until the spool is
drained into PostgreSQL again, in the order written (so a request's outcome never lands
before its "accepted" record). Reads come from PostgreSQL: spooled records show once drained.

A record PostgreSQL refuses for what it holds (bad data, not an outage) would block the spool
for ever, or fail its request: it goes to a `dead_letter` table in the spool's file instead,
with the error, for someone to look at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg

from cluster.postgres import UNREACHABLE, Deadline
from policies.errors import StoreUnavailable
from service.audit import REFUSED, AuditQuery, AuditRecord, PostgresAuditStore

log = logging.getLogger(__name__)

#: What keeps records in the spool: PostgreSQL away, or unable to take any record now (a
#: dropped table, a revoked grant: about the store, not the record).
UNAVAILABLE: tuple[type[BaseException], ...] = (*UNREACHABLE, psycopg.DatabaseError)


class AuditSpool:
    """Records waiting for PostgreSQL, oldest first, and those it refused, in a SQLite file."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> AuditSpool:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT)"
        )
        await db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letter (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " record TEXT, error TEXT, at REAL)"
        )
        await db.commit()
        return cls(db)

    async def append(self, record: AuditRecord) -> None:
        await self._db.execute("INSERT INTO spool (record) VALUES (?)", (_dumps(record),))
        await self._db.commit()

    async def oldest(self, limit: int) -> list[tuple[int, AuditRecord]]:
        """Up to `limit` records, oldest first. A row this version cannot read (corrupt, or
        written by a version with other fields) is moved to the dead letters."""
        sql = "SELECT seq, record FROM spool ORDER BY seq LIMIT ?"
        async with self._db.execute(sql, (limit,)) as cursor:
            rows = await cursor.fetchall()
        waiting = []
        for seq, raw in rows:
            try:
                waiting.append((int(seq), AuditRecord(**json.loads(raw))))
            except (ValueError, TypeError) as exc:
                log.error(
                    "unreadable spooled audit record %s moved to the dead letters: %s", seq, exc
                )
                await self.bury(raw, f"unreadable: {exc}", seq)
        return waiting

    async def drop_through(self, seq: int) -> None:
        await self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))
        await self._db.commit()

    async def bury(self, record: str, error: str, seq: int | None = None) -> None:
        """Keep `record` (JSON) among the dead letters; `seq`: the spool row it leaves."""
        await self._db.execute(
            "INSERT INTO dead_letter (record, error, at) VALUES (?, ?, ?)",
            (record, error, time.time()),
        )
        if seq is not None:
            await self._db.execute("DELETE FROM spool WHERE seq = ?", (seq,))
        await self._db.commit()

    async def count(self) -> int:
        return await self._count("SELECT COUNT(*) FROM spool")

    async def dead_letters(self) -> int:
        return await self._count("SELECT COUNT(*) FROM dead_letter")

    async def _count(self, sql: str) -> int:
        async with self._db.execute(sql) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        await self._db.close()


def _dumps(record: AuditRecord) -> str:
    return json.dumps(dataclasses.asdict(record))


class SpooledAuditStore:
    """PostgreSQL's audit store, falling back to a local spool while it is unreachable."""

    def __init__(
        self,
        primary: PostgresAuditStore,
        spool: AuditSpool,
        *,
        spooling: bool,
        timeout_s: float = 3.0,
    ) -> None:
        self._primary = primary
        self._spool = spool
        self._spooling = spooling
        self._bounded = Deadline(timeout_s)
        self._lock = asyncio.Lock()
        """Held to read or change spool mode, so no write slips past the spool's order."""
        self._drain_lock = asyncio.Lock()
        """One drain at a time: two would write the same records, an older over a newer."""

    @classmethod
    async def open(cls, url: str, spool_path: Path, *, timeout_s: float = 3.0) -> SpooledAuditStore:
        """PostgreSQL at `url`, and the spool left by an earlier run. While PostgreSQL does not
        answer it opens spooling (its table is created once it does)."""
        primary = await PostgresAuditStore.open(url, lazy=True)
        spool = await AuditSpool.open(spool_path)
        store = cls(primary, spool, spooling=await spool.count() > 0, timeout_s=timeout_s)
        if not store._spooling:
            try:
                await store._bounded(primary.ping())
            except UNREACHABLE as exc:
                log.warning("audit trail unreachable at start, spooling records locally: %s", exc)
                store._spooling = True
        return store

    async def _bury(self, record: AuditRecord, exc: Exception, seq: int | None = None) -> None:
        log.error(
            "PostgreSQL refused audit record %s (kept in the spool's dead letters): %s",
            record.id,
            exc,
        )
        await self._spool.bury(_dumps(record), f"{type(exc).__name__}: {exc}", seq)

    async def write(self, record: AuditRecord) -> None:
        async with self._lock:
            if self._spooling:
                await self._spool.append(record)
                return
        try:
            await self._bounded(self._primary.write(record))
        except REFUSED as exc:
            # Refused, not away: the record is kept aside rather than fail its request.
            await self._bury(record, exc)
        except UNAVAILABLE as exc:
            log.warning("audit trail unavailable, spooling records locally: %s", exc)
            async with self._lock:
                self._spooling = True
                await self._spool.append(record)

    async def drain(self, batch: int = 200) -> int:
        """Move spooled records to PostgreSQL, oldest first; how many moved. While PostgreSQL
        is still away it moves none and tries again at the next call (an expected state, not
        a failure: the caller keeps its pace)."""
        async with self._drain_lock:
            moved = 0
            while True:
                waiting = await self._spool.oldest(batch)
                if waiting:
                    written, reachable = await self._forward(waiting)
                    moved += written
                    if not reachable:
                        return moved
                    continue
                if self._spooling and not await self._answers():
                    return moved
                async with self._lock:
                    if await self._spool.count() == 0:
                        if self._spooling:
                            log.info("audit trail reachable again; spool drained")
                        self._spooling = False
                        return moved

    async def _forward(self, waiting: list[tuple[int, AuditRecord]]) -> tuple[int, bool]:
        """Write `waiting` to PostgreSQL in order, burying what it refuses, and drop it from
        the spool: (records written, whether PostgreSQL was reachable throughout)."""
        written, done, reachable = 0, None, True
        for seq, record in waiting:
            try:
                await self._bounded(self._primary.write(record))
                written += 1
            except REFUSED as exc:
                await self._bury(record, exc, seq)
            except UNAVAILABLE as exc:
                log.info("audit trail still unavailable, records stay spooled: %s", exc)
                reachable = False
                break
            done = seq
        if done is not None:
            await self._spool.drop_through(done)
        return written, reachable

    async def _answers(self) -> bool:
        """Whether PostgreSQL answers now (spool mode ends only then, even with nothing
        spooled: the store may have opened while PostgreSQL was away)."""
        try:
            await self._bounded(self._primary.ping())
        except UNREACHABLE as exc:
            log.info("audit trail still unreachable: %s", exc)
            return False
        return True

    async def spooled(self) -> int:
        """Records waiting in the spool."""
        return await self._spool.count()

    async def dead_letters(self) -> int:
        """Records PostgreSQL refused, kept in the spool's file."""
        return await self._spool.dead_letters()

    async def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        try:
            return await self._bounded(self._primary.query(q))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"the audit trail (PostgreSQL) is unreachable: {exc}") from exc

    async def count(self, q: AuditQuery) -> int:
        try:
            return await self._bounded(self._primary.count(q))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"the audit trail (PostgreSQL) is unreachable: {exc}") from exc

    async def close(self) -> None:
        """Drain what the spool holds if PostgreSQL answers (a burst that found the pool
        busy spools too), then close; what stays is drained at the next start."""
        await self.drain()
        await self._primary.close()
        await self._spool.close()
