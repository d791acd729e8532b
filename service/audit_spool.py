"""The shared audit trail, and a local spool for the records written while PostgreSQL is away.

No record is lost and no request is refused for an audit outage: a write PostgreSQL cannot
take goes to a SQLite file on local disk, and so does every write after it until the spool is
drained into PostgreSQL again, in the order written (so a request's outcome never lands
before its "accepted" record). Reads come from PostgreSQL: spooled records show once drained.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import aiosqlite

from cluster.postgres import UNREACHABLE
from policies.errors import StoreUnavailable
from service.audit import AuditQuery, AuditRecord, PostgresAuditStore

log = logging.getLogger(__name__)


class AuditSpool:
    """Records waiting for PostgreSQL, oldest first, in a SQLite file."""

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
        await db.commit()
        return cls(db)

    async def append(self, record: AuditRecord) -> None:
        await self._db.execute(
            "INSERT INTO spool (record) VALUES (?)", (json.dumps(dataclasses.asdict(record)),)
        )
        await self._db.commit()

    async def oldest(self, limit: int) -> list[tuple[int, AuditRecord]]:
        sql = "SELECT seq, record FROM spool ORDER BY seq LIMIT ?"
        async with self._db.execute(sql, (limit,)) as cursor:
            rows = await cursor.fetchall()
        return [(int(seq), AuditRecord(**json.loads(raw))) for seq, raw in rows]

    async def drop_through(self, seq: int) -> None:
        await self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))
        await self._db.commit()

    async def count(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM spool") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        await self._db.close()


class SpooledAuditStore:
    """PostgreSQL's audit store, falling back to a local spool while it is unreachable."""

    def __init__(self, primary: PostgresAuditStore, spool: AuditSpool, *, spooling: bool) -> None:
        self._primary = primary
        self._spool = spool
        self._spooling = spooling
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, spool_path: Path) -> SpooledAuditStore:
        """PostgreSQL at `url` (it must answer now), and the spool left by an earlier run."""
        primary = await PostgresAuditStore.open(url)
        spool = await AuditSpool.open(spool_path)
        return cls(primary, spool, spooling=await spool.count() > 0)

    async def write(self, record: AuditRecord) -> None:
        async with self._lock:
            if self._spooling:
                await self._spool.append(record)
                return
        try:
            await self._primary.write(record)
        except UNREACHABLE as exc:
            log.warning("audit trail unreachable, spooling records locally: %s", exc)
            async with self._lock:
                self._spooling = True
                await self._spool.append(record)

    async def drain(self, batch: int = 200) -> int:
        """Move spooled records to PostgreSQL, oldest first; how many moved. While PostgreSQL
        is still away it moves none and tries again at the next call (an expected state, not
        a failure: the caller keeps its pace)."""
        moved = 0
        while True:
            waiting = await self._spool.oldest(batch)
            if not waiting:
                async with self._lock:
                    if await self._spool.count() == 0:
                        if self._spooling:
                            log.info("audit trail reachable again; spool drained")
                        self._spooling = False
                        return moved
                continue
            try:
                for _, record in waiting:
                    await self._primary.write(record)
            except UNREACHABLE as exc:
                # The batch stays spooled; the records it did write go again (upserts).
                log.info("audit trail still unreachable, records stay spooled: %s", exc)
                return moved
            await self._spool.drop_through(waiting[-1][0])
            moved += len(waiting)

    async def spooled(self) -> int:
        """Records waiting in the spool."""
        return await self._spool.count()

    async def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        try:
            return await self._primary.query(q)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"the audit trail (PostgreSQL) is unreachable: {exc}") from exc

    async def count(self, q: AuditQuery) -> int:
        try:
            return await self._primary.count(q)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"the audit trail (PostgreSQL) is unreachable: {exc}") from exc

    async def close(self) -> None:
        await self._primary.close()
        await self._spool.close()
