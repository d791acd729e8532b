"""The job store's promises, on SQLite and the real PostgreSQL: a lapsed job is claimed by one
replica only, only its owner finishes it, once, and an unfinished job's id is not taken again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from service.job_stores import PostgresJobStore, SqliteJobStore
from service.jobs import COMPLETED, FAILED, RUNNING, JobRecord, JobStore

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
#: Every lapsed job in the shared database, so none of this test's is left out.
ALL = 100_000

Opener = Callable[[], Awaitable[JobStore]]


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a store on one database; each call is another replica's connection to it."""
    opened: list[JobStore] = []

    async def opener() -> JobStore:
        store: JobStore
        if request.param == "sqlite":
            store = await SqliteJobStore.open(tmp_path / "jobs.sqlite")
        else:
            store = await PostgresJobStore.open(POSTGRES)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


def job(tenant: str, job_id: str, owner: str = "dead-replica") -> JobRecord:
    return JobRecord(
        job_id=job_id,
        tenant=tenant,
        user="ann",
        graph_input={"prompt": "Summarize", "user": "ann", "tenant": tenant, "job_id": job_id},
        record_id=uuid.uuid4().hex,
        accepted_at=time.time(),
        roles=("admin",),
        owner=owner,
    )


async def test_a_lapsed_job_is_claimed_by_one_replica_and_only_its_owner_finishes_it(
    open_store: Opener,
) -> None:
    tenant = f"race-{uuid.uuid4().hex[:8]}"
    replicas = [await open_store() for _ in range(4)]
    first = replicas[0]
    jobs = [job(tenant, f"job-{i}") for i in range(20)]
    for record in jobs:
        assert await first.add(record, lease_s=-1)  # its replica died: the lease has lapsed
    claims = await asyncio.gather(
        *(store.claim(f"replica-{i}", 5.0, ALL) for i, store in enumerate(replicas))
    )
    ours = [[r for r in claimed if r.tenant == tenant] for claimed in claims]
    keys = [r.key for claimed in ours for r in claimed]
    assert sorted(keys) == sorted(r.key for r in jobs)  # each job claimed, and once
    assert not any(await asyncio.gather(*(s.claim("late", 5.0, ALL) for s in replicas)))

    winner, record = next((f"replica-{i}", c[0]) for i, c in enumerate(ours) if c)
    loser = "replica-9"
    assert (record.owner, record.status, record.attempts) == (winner, RUNNING, 2)
    assert record.graph_input["prompt"] == "Summarize" and record.principal.roles == {"admin"}
    assert await first.renew(loser, [record.key], 5.0) == set()
    assert await first.renew(winner, [record.key], 5.0) == {record.key}
    assert not await first.finish(record.key, loser, COMPLETED, {"answer": "late"}, None)
    assert not await first.finish(record.key, "dead-replica", COMPLETED, {"a": 0}, None)
    assert await replicas[1].finish(record.key, winner, COMPLETED, {"answer": "won"}, None)
    assert not await replicas[2].finish(record.key, winner, FAILED, None, {"code": "x"})
    done = await replicas[3].get(record.job_id, tenant)
    assert done is not None
    assert (done.status, done.response, done.error) == (COMPLETED, {"answer": "won"}, None)
    assert done.finished_at is not None and done.lease_expires_at is None
    assert done.to_dict()["answer"] == "won"


async def test_an_unfinished_jobs_id_is_refused_a_finished_ones_is_reused(
    open_store: Opener,
) -> None:
    tenant = f"ids-{uuid.uuid4().hex[:8]}"
    store, other = await open_store(), await open_store()
    assert await store.add(job(tenant, "job-1", owner="r1"), lease_s=30)
    assert not await other.add(job(tenant, "job-1", owner="r2"), lease_s=30)
    assert await other.add(job(f"{tenant}-b", "job-1", owner="r2"), lease_s=30)  # other tenant
    assert await other.get("job-1", "nobody") is None
    assert await store.finish((tenant, "job-1"), "r1", FAILED, None, {"code": "boom"})
    again = job(tenant, "job-1", owner="r2")
    assert await other.add(again, lease_s=30)
    fresh = await store.get("job-1", tenant)
    assert fresh is not None
    assert (fresh.owner, fresh.status, fresh.error, fresh.record_id) == (
        "r2",
        "queued",
        None,
        again.record_id,
    )


async def test_a_released_job_is_taken_over_at_once_and_old_finished_jobs_are_pruned(
    open_store: Opener,
) -> None:
    tenant = f"rel-{uuid.uuid4().hex[:8]}"
    store, taker = await open_store(), await open_store()
    record = job(tenant, "job-1", owner="stopping")
    assert await store.add(record, lease_s=30)
    assert await store.start(record.key, "stopping")
    assert [r for r in await taker.claim("taker", 5.0, ALL) if r.tenant == tenant] == []
    assert await store.release("someone-else", [record.key]) == 0
    assert await store.release("stopping", [record.key]) == 1
    [claimed] = [r for r in await taker.claim("taker", 5.0, ALL) if r.tenant == tenant]
    assert (claimed.owner, claimed.attempts) == ("taker", 1)  # the handover is not counted
    assert await taker.finish(record.key, "taker", COMPLETED, {"ok": True}, None)
    await store.prune(finished_before=time.time() - 60)
    assert await store.get("job-1", tenant) is not None  # finished a moment ago: kept
    assert await store.prune(finished_before=time.time() + 1) >= 1
    assert await store.get("job-1", tenant) is None
