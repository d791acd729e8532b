"""The audit spool against the machine's real PostgreSQL (127.0.0.1:5432, database `test`),
behind a proxy a test can cut: drains one at a time and in order, records PostgreSQL refuses
set aside as dead letters, a store opened while PostgreSQL is away, the entry point filter;
and the PostgreSQL store's group commit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
import pytest

from cluster.postgres import open_pool
from service.audit import (
    AuditQuery,
    AuditRecord,
    PostgresAuditStore,
    SqliteAuditStore,
)
from service.audit_spool import AuditSpool, SpooledAuditStore
from tests.fakes.proxy import TcpProxy

SERVER = "postgresql://postgres@127.0.0.1:5432"
URL = f"{SERVER}/test"


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5432))
    yield proxy
    proxy.close()


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """The name of a new, empty database, dropped after the test."""
    name = f"audit_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(URL, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
    yield name
    async with await psycopg.AsyncConnection.connect(URL, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def record(tenant: str, **fields: Any) -> AuditRecord:
    base: dict[str, Any] = {
        "tenant": tenant,
        "user_id": "ann",
        "prompt_sha256": "0" * 64,
        "prompt_chars": 5,
        "status": "completed",
        "http_status": 200,
    }
    return AuditRecord(**{**base, **fields})


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def in_postgres(url: str, tenant: str) -> list[dict[str, Any]]:
    """`tenant`'s records in PostgreSQL, read by a store of its own."""
    store = await PostgresAuditStore.open(url)
    try:
        return await store.query(AuditQuery({"tenant": tenant}, limit=1000))
    finally:
        await store.close()


async def drain_all(store: SpooledAuditStore, deadline_s: float = 20) -> int:
    """Drain until the spool is empty, as the service's loop does: the pool reconnects to a
    PostgreSQL back from an outage with a backoff of its own, so the first drains may miss it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    moved = await store.drain()
    while await store.spooled():
        assert loop.time() < deadline, "the spool did not drain"
        await asyncio.sleep(0.2)
        moved += await store.drain()
    return moved


class RecordingStore(PostgresAuditStore):
    """Notes each write, in order, and how many were in flight at once."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self.written: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def write(self, record: AuditRecord) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)  # room for a second drain to interleave, were it let in
            await super().write(record)
            self.written.append((record.id, record.status))
        finally:
            self.in_flight -= 1


async def test_drains_run_one_at_a_time_in_spool_order(tmp_path: Path) -> None:
    tenant = new_tenant()
    spool = await AuditSpool.open(tmp_path / "spool.sqlite")
    spooled = []
    for _ in range(5):  # each request: its "accepted" record, then its outcome (the same id)
        accepted = record(tenant, status="accepted", http_status=202)
        spooled += [accepted, record(tenant, id=accepted.id, at=accepted.at)]
    for r in spooled:
        await spool.append(r)
    primary = RecordingStore(await open_pool(URL))
    store = SpooledAuditStore(primary, spool, spooling=True)
    try:
        moved = await asyncio.gather(*(store.drain(batch=3) for _ in range(3)))
        assert sum(moved) == len(spooled)
        assert primary.most_in_flight == 1
        assert primary.written == [(r.id, r.status) for r in spooled]
        assert await store.spooled() == 0
    finally:
        await store.close()
    rows = await in_postgres(URL, tenant)
    assert len(rows) == 5 and {r["status"] for r in rows} == {"completed"}


async def test_records_postgres_refuses_become_dead_letters_and_the_drain_goes_on(
    tmp_path: Path,
) -> None:
    tenant = new_tenant()
    path = tmp_path / "spool.sqlite"
    spool = await AuditSpool.open(path)
    first, last = record(tenant), record(tenant)
    nul = record(tenant, prompt_text="a\x00b")  # psycopg: text cannot hold NUL (DataError)
    huge = record(tenant, prompt_chars=2**40)  # PostgreSQL: integer out of range (DataError)
    for r in (first, nul, huge, last):
        await spool.append(r)
    await spool.close()

    store = await SpooledAuditStore.open(URL, path)
    try:
        assert await store.drain() == 2
        assert await store.spooled() == 0
        assert await store.dead_letters() == 2
    finally:
        await store.close()
    assert {r["id"] for r in await in_postgres(URL, tenant)} == {first.id, last.id}
    async with aiosqlite.connect(path) as db:
        dead = list(
            await db.execute_fetchall("SELECT record, error, at FROM dead_letter ORDER BY seq")
        )
    assert [json.loads(raw)["id"] for raw, _, _ in dead] == [nul.id, huge.id]
    assert "NUL" in dead[0][1] and "out of range" in dead[1][1]
    assert all(at > 0 for _, _, at in dead)


async def test_a_direct_write_postgres_refuses_becomes_a_dead_letter_not_an_error(
    tmp_path: Path,
) -> None:
    tenant = new_tenant()
    store = await SpooledAuditStore.open(URL, tmp_path / "spool.sqlite")
    try:
        await store.write(record(tenant, prompt_text="a\x00b"))
        good = record(tenant)
        await store.write(good)  # not spooling: PostgreSQL is there, only the record was bad
        assert await store.dead_letters() == 1
        assert await store.spooled() == 0
        assert [r["id"] for r in await store.query(AuditQuery({"tenant": tenant}))] == [good.id]
    finally:
        await store.close()


async def transactions(tenant: str) -> int:
    """How many transactions wrote `tenant`'s records (their rows' `xmin`)."""
    async with await psycopg.AsyncConnection.connect(URL) as conn:
        cursor = await conn.execute(
            "SELECT count(DISTINCT xmin::text) FROM audit_log WHERE tenant = %s", (tenant,)
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_burst_of_writes_shares_transactions() -> None:
    tenant = new_tenant()
    store = await PostgresAuditStore.open(URL)
    try:
        await asyncio.gather(*(store.write(record(tenant)) for _ in range(100)))
        assert await store.count(AuditQuery({"tenant": tenant})) == 100
    finally:
        await store.close()
    assert await transactions(tenant) <= 3


async def test_one_refused_record_in_a_burst_fails_alone(tmp_path: Path) -> None:
    tenant = new_tenant()
    store = await SpooledAuditStore.open(URL, tmp_path / "spool.sqlite")
    good = [record(tenant) for _ in range(20)]
    bad = record(tenant, prompt_text="a\x00b")
    try:
        await asyncio.gather(*(store.write(r) for r in [*good[:10], bad, *good[10:]]))
        assert (await store.dead_letters(), await store.spooled()) == (1, 0)
        landed = await store.query(AuditQuery({"tenant": tenant}, limit=100))
        assert {r["id"] for r in landed} == {r.id for r in good}
    finally:
        await store.close()


async def test_a_records_later_state_in_the_same_batch_wins() -> None:
    tenant = new_tenant()
    store = await PostgresAuditStore.open(URL)
    accepted = record(tenant, status="accepted", http_status=202)
    final = dataclasses.replace(accepted, status="completed", http_status=200)
    try:
        await asyncio.gather(store.write(accepted), store.write(final))
        rows = await store.query(AuditQuery({"tenant": tenant}))
    finally:
        await store.close()
    assert [(r["id"], r["status"]) for r in rows] == [(accepted.id, "completed")]
    assert await transactions(tenant) == 1


async def test_an_unreadable_spooled_row_becomes_a_dead_letter(tmp_path: Path) -> None:
    tenant = new_tenant()
    path = tmp_path / "spool.sqlite"
    spool = await AuditSpool.open(path)
    await spool.append(record(tenant))
    async with aiosqlite.connect(path) as db:  # a row an older version wrote, say
        await db.execute("INSERT INTO spool (record) VALUES (?)", ('{"gone": 1}',))
        await db.commit()
    await spool.append(record(tenant))
    await spool.close()
    store = await SpooledAuditStore.open(URL, path)
    try:
        assert await store.drain() == 2
        assert (await store.spooled(), await store.dead_letters()) == (0, 1)
    finally:
        await store.close()


async def test_opens_while_postgres_is_away_and_creates_the_table_once_it_answers(
    tmp_path: Path, postgres_proxy: TcpProxy, fresh_database: str
) -> None:
    tenant = new_tenant()
    postgres_proxy.cut()
    store = await SpooledAuditStore.open(
        f"postgresql://postgres@127.0.0.1:{postgres_proxy.port}/{fresh_database}",
        tmp_path / "spool.sqlite",
    )
    try:
        written = [record(tenant) for _ in range(3)]
        for r in written:
            await store.write(r)
        assert await store.spooled() == 3
        assert await store.drain() == 0  # still away
        postgres_proxy.restore()
        assert await drain_all(store) == 3
        assert await store.spooled() == 0
    finally:
        await store.close()
    rows = await in_postgres(f"{SERVER}/{fresh_database}", tenant)
    assert [r["id"] for r in rows] == [r.id for r in written]


async def test_open_while_postgres_is_away_leaves_spool_mode_only_once_it_answers(
    tmp_path: Path, postgres_proxy: TcpProxy
) -> None:
    tenant = new_tenant()
    postgres_proxy.cut()
    url = f"postgresql://postgres@127.0.0.1:{postgres_proxy.port}/test"
    store = await SpooledAuditStore.open(url, tmp_path / "spool.sqlite")
    try:
        await store.drain()  # nothing spooled, but PostgreSQL does not answer: still spooling
        loop = asyncio.get_running_loop()
        started = loop.time()
        await store.write(record(tenant))
        assert loop.time() - started < 1  # spooled at once, not after a try at PostgreSQL (2 s)
        assert await store.spooled() == 1
        postgres_proxy.restore()
        assert await drain_all(store) == 1
        await store.write(record(tenant))  # straight to PostgreSQL now
        assert await store.spooled() == 0
        assert await store.count(AuditQuery({"tenant": tenant})) == 2
    finally:
        await store.close()


Store = SqliteAuditStore | PostgresAuditStore | SpooledAuditStore


@pytest.fixture(params=["sqlite", "postgres", "spooled"])
async def audit_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    store: Store
    if request.param == "sqlite":
        store = await SqliteAuditStore.open(tmp_path / "audit.sqlite")
    elif request.param == "postgres":
        store = await PostgresAuditStore.open(URL)
    else:
        store = await SpooledAuditStore.open(URL, tmp_path / "spool.sqlite")
    yield store
    await store.close()


async def test_query_and_count_filter_by_entry_point(audit_store: Store) -> None:
    tenant = new_tenant()
    for entry_point in ("process", "graph/invoke", "process", None):
        await audit_store.write(record(tenant, entry_point=entry_point))
    processed = AuditQuery({"tenant": tenant, "entry_point": "process"})
    assert [r["entry_point"] for r in await audit_store.query(processed)] == ["process"] * 2
    assert await audit_store.count(processed) == 2
    graph = AuditQuery({"tenant": tenant, "entry_point": "graph/invoke"}, limit=10)
    assert await audit_store.count(graph) == 1
    assert await audit_store.count(AuditQuery({"tenant": tenant})) == 4
