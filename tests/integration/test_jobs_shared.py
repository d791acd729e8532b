"""Asynchronous jobs act as one router's: any replica answers for any job, a job whose replica
dies or stops is taken over and completes, and the caller sees one outcome, audited once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from app.backends import open_audit_store, open_job_store
from app.settings import Settings
from server import create_app
from service.audit import AuditQuery
from service.auth import issue_token
from service.jobs import JobKey, JobRecord
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer, free_port, stop_process, wait_http
from tests.integration.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
ASK = {"prompt": "Summarize this incident", "task_type": "general_reasoning", "async": True}
T = TypeVar("T")


class Replica(ThreadedServer):
    """One router in this test process."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        super().__init__(self.app)

    def client(self, tenant: str) -> httpx.Client:
        token = issue_token(SECRET, user="ann", tenant=tenant)
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def tenant() -> str:
    return f"j-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def slow(fake_cluster: FakeCluster) -> Callable[[float], None]:
    def set_delay(seconds: float) -> None:
        for node in (fake_cluster.node1, fake_cluster.node2):
            node.behaviour.delay_s = seconds

    return set_delay


def settings_for(fake: FakeCluster, state_dir: Path, **extra: Any) -> Settings:
    return fake.settings(
        jwt_secret=SECRET,
        health_interval_s=0,
        policy_reload_s=0,
        state_dir=state_dir,
        **extra,
    )


def eventually(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := check()) is None:
        assert time.monotonic() < deadline, f"{what} not within {timeout_s} s"
        time.sleep(0.05)
    return value


def job_in(c: httpx.Client, job_id: str, *statuses: str) -> dict[str, Any] | None:
    r = c.get(f"/api/llm/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body if body["status"] in statuses else None


def stored(settings: Settings, key: JobKey) -> JobRecord:
    async def read() -> JobRecord:
        store = await open_job_store(settings)
        try:
            record = await store.get(key[1], key[0])
        finally:
            await store.close()
        assert record is not None
        return record

    return asyncio.run(read())


def audit_of(settings: Settings, tenant: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = await open_audit_store(settings.database_url, settings.state_dir)
        try:
            return await store.query(AuditQuery({"tenant": tenant}))
        finally:
            await store.close()

    return asyncio.run(read())


def calls_for(fake: FakeCluster, tenant: str) -> int:
    nodes = (fake.node1, fake.node2)
    return sum(tenant in str(c.messages[-1]["content"]) for n in nodes for c in n.calls)


@pytest.fixture
def shared(fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return settings_for(fake_cluster, tmp_path / "state", database_url=POSTGRES)


def test_a_job_accepted_on_one_replica_is_read_on_another_with_the_same_result(
    shared: Settings, tenant: str, slow: Callable[[float], None]
) -> None:
    slow(1.0)
    first, second = Replica(shared), Replica(shared)
    try:
        with first.client(tenant) as one, second.client(tenant) as two:
            job = {**ASK, "prompt": f"Summarize incident {tenant}", "job_id": "job-1"}
            r = one.post("/api/llm/process", json=job)
            assert r.status_code == 202, r.text
            assert job_in(two, "job-1", "queued", "running") is not None
            # The id is taken on every replica while the job runs.
            busy = two.post("/api/llm/process", json=job)
            assert busy.status_code == 409, busy.text
            with second.client(f"{tenant}-other") as stranger:
                assert stranger.get("/api/llm/jobs/job-1").status_code == 404
            done = eventually(lambda: job_in(two, "job-1", "completed", "failed"), 20, "done")
            assert done["status"] == "completed" and done["routing"]["model"] == "deepseek"
            assert one.get("/api/llm/jobs/job-1").json() == done
    finally:
        first.stop()
        second.stop()
    statuses = sorted(
        (r["status"], r["http_status"], r["error_code"]) for r in audit_of(shared, tenant)
    )
    assert statuses == [("completed", 200, None), ("refused", 409, "job_in_progress")]


def test_a_replica_whose_lease_lapsed_discards_its_result(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str,
    slow: Callable[[float], None],
) -> None:
    settings = settings_for(
        fake_cluster,
        tmp_path / "state",
        database_url=POSTGRES,
        job_lease_s=1.0,
        job_heartbeat_s=0.25,
    )
    stalled, taker = Replica(settings), Replica(settings)
    store = stalled.app.state.service.jobs.store

    # A replica stalled (a paused VM, a partition): it renews nothing and claims nothing, but
    # still believes it owns its job and finishes the run.
    async def renews_nothing(owner: str, keys: list[JobKey], lease_s: float) -> set[JobKey]:
        return set(keys)

    async def claims_nothing(owner: str, lease_s: float, limit: int) -> list[JobRecord]:
        return []

    store.renew, store.claim = renews_nothing, claims_nothing
    slow(2.5)
    try:
        with stalled.client(tenant) as c, taker.client(tenant) as t:
            body = {**ASK, "prompt": f"Summarize incident {tenant}"}
            r = c.post("/api/llm/process", json=body)
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            # Both runs call the model; the stalled one's answer comes first and is discarded.
            eventually(lambda: calls_for(fake_cluster, tenant) == 2 or None, 10, "a second run")
            done = eventually(lambda: job_in(t, job_id, "completed", "failed"), 20, "done")
            assert done["status"] == "completed"
    finally:
        stalled.stop()
        taker.stop()
    record = stored(settings, (tenant, job_id))
    assert record.owner == taker.app.state.service.replica_id and record.attempts == 2
    [audited] = audit_of(settings, tenant)
    assert (audited["status"], audited["job_id"]) == ("completed", job_id)


def test_a_job_survives_a_router_restart_on_sqlite(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str,
    slow: Callable[[float], None],
) -> None:
    settings = settings_for(fake_cluster, tmp_path / "state")
    slow(3.0)
    before = Replica(settings)
    try:
        with before.client(tenant) as c:
            r = c.post("/api/llm/process", json={**ASK, "prompt": f"Summarize {tenant}"})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            eventually(lambda: job_in(c, job_id, "running"), 10, "running")
            eventually(lambda: calls_for(fake_cluster, tenant) or None, 10, "the model call")
    finally:
        before.stop()  # mid-job: it hands the job over, neither failed nor audited
    [accepted] = audit_of(settings, tenant)
    assert accepted["status"] == "accepted"
    handed = stored(settings, (tenant, job_id))
    assert (handed.status, handed.attempts) == ("queued", 0)  # a handover is no attempt

    slow(0.0)
    after = Replica(settings)
    try:
        with after.client(tenant) as c:
            done = eventually(lambda: job_in(c, job_id, "completed", "failed"), 20, "done")
    finally:
        after.stop()
    assert done["status"] == "completed"
    assert stored(settings, (tenant, job_id)).attempts == 1
    [audited] = audit_of(settings, tenant)
    assert (audited["id"], audited["status"]) == (accepted["id"], "completed")
    assert audited["at"] == accepted["at"] and audited["latency_ms"] > 1000


@pytest.fixture
def router_process(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A router in a process of its own, on the shared PostgreSQL (defaults for the leases)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        ROUTER_JWT_SECRET=SECRET,
        LLM_NODE_1_URL=fake_cluster.node1.url,
        LLM_NODE_2_URL=fake_cluster.node2.url,
        DATABASE_URL=POSTGRES,
        ROUTER_HEALTH_INTERVAL_S="0",
        ROUTER_POLICY_RELOAD_S="0",
        ROUTER_STATE_DIR=str(tmp_path / "process-state"),
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", alive=proc)
        yield proc, url
    finally:
        stop_process(proc, grace_s=10)


def test_a_job_whose_router_is_killed_is_taken_over_and_completes_once(
    router_process: tuple[subprocess.Popen[bytes], str],
    shared: Settings,
    fake_cluster: FakeCluster,
    tenant: str,
    slow: Callable[[float], None],
) -> None:
    proc, url = router_process
    survivors = [Replica(shared), Replica(shared)]
    slow(3.0)
    token = issue_token(SECRET, user="ann", tenant=tenant)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as doomed:
            r = doomed.post("/api/llm/process", json={**ASK, "prompt": f"Summarize {tenant}"})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            eventually(lambda: job_in(doomed, job_id, "running"), 10, "running")
            eventually(lambda: calls_for(fake_cluster, tenant) or None, 10, "the model call")
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=10)
        key = (tenant, job_id)
        owners = {r.app.state.service.replica_id for r in survivors}
        eventually(lambda: stored(shared, key).owner in owners or None, 15, "a takeover")
        claimed_after = time.monotonic() - killed
        with survivors[0].client(tenant) as one, survivors[1].client(tenant) as two:
            done = eventually(lambda: job_in(one, job_id, "completed", "failed"), 20, "done")
            completed_after = time.monotonic() - killed
            assert done["status"] == "completed"
            assert two.get(f"/api/llm/jobs/{job_id}").json() == done
    finally:
        for replica in survivors:
            replica.stop()
    print(
        f"\ntakeover: claimed {claimed_after:.2f} s, completed {completed_after:.2f} s after kill"
    )
    lease = shared.job_lease_s
    assert claimed_after < lease + 2 * shared.job_heartbeat_s + 1.0
    assert stored(shared, key).attempts == 2
    assert calls_for(fake_cluster, tenant) == 2  # the dead router's run, and the taker's
    [audited] = audit_of(shared, tenant)
    assert (audited["job_id"], audited["status"], audited["http_status"]) == (
        job_id,
        "completed",
        200,
    )
