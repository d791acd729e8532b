"""Redis or PostgreSQL going away mid-run, against the machine's real servers behind a proxy
the test cuts (the servers stay up for everything else).

- Redis (rate-limit counters): requests are refused with 503 `limits_unavailable`, each
  refusal audited; served again once Redis answers. The response cache just misses.
- PostgreSQL (audit trail): requests are served; their records wait in a local spool and
  reach PostgreSQL, in order, when it is back — also across a restart of the router. One
  that holds connections open without answering costs a request seconds, not a hang.
- PostgreSQL (chain checkpoints): chains answer 503 `store_unavailable` until it is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.backends import open_audit_store
from app.settings import Settings
from cluster.cache import RedisCache, cache_key
from server import create_app
from service.audit import AuditQuery
from service.auth import ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.proxy import TcpProxy
from tests.integration.conftest import SECRET

ASK = {"prompt": "Summarize this alert", "task_type": "general_reasoning"}


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 6379))
    yield proxy
    proxy.close()


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5432))
    yield proxy
    proxy.close()


def postgres_url(proxy: TcpProxy) -> str:
    return f"postgresql://postgres@127.0.0.1:{proxy.port}/test"


def headers(tenant: str, user: str = "ann", roles: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {issue_token(SECRET, user=user, tenant=tenant, roles=list(roles))}"
    }


def settings(fake: FakeCluster, tmp_path: Path, **extra: Any) -> Settings:
    return fake.settings(
        jwt_secret=SECRET,
        health_interval_s=0,
        policy_reload_s=0,
        state_dir=tmp_path / "state",
        **extra,
    )


def records(c: TestClient, tenant: str) -> dict[str, Any]:
    r = c.get("/api/llm/audit", headers=headers(tenant, "auditor", (ADMIN,)))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_redis_down_refuses_requests_clearly_and_audits_them(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path, redis_proxy: TcpProxy
) -> None:
    tenant = f"r-{uuid.uuid4().hex[:8]}"
    app = create_app(
        settings(fake_cluster, tmp_path, redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")
    )
    with TestClient(app) as c:
        assert c.post("/api/llm/process", json=ASK, headers=headers(tenant)).status_code == 200
        redis_proxy.cut()
        for _ in range(3):
            r = c.post("/api/llm/process", json=ASK, headers=headers(tenant))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "limits_unavailable"
            assert r.headers["Retry-After"]
        r = c.post("/graph/invoke", json={"input": ASK}, headers=headers(tenant))
        assert r.status_code == 503 and r.json()["error"]["code"] == "limits_unavailable"
        redis_proxy.restore()
        deadline = time.monotonic() + 10
        while (
            r := c.post("/api/llm/process", json=ASK, headers=headers(tenant))
        ).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        trail = records(c, tenant)["records"]
    refused = [r for r in trail if r["status"] == "refused"]
    assert [r["error_code"] for r in refused] == ["limits_unavailable"] * (len(refused))
    assert len(refused) >= 4
    assert sum(r["status"] == "completed" for r in trail) == 2


async def test_redis_down_the_cache_misses_and_forgets(redis_proxy: TcpProxy) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{redis_proxy.port}/0", 60)
    key = cache_key(f"t-{uuid.uuid4().hex}", "phi4", "x", None, {})
    redis_proxy.cut()
    assert await cache.get(key) is None
    from tests.integration.test_cache import RESULT

    await cache.set(key, RESULT)  # no error: the answer is simply not cached
    redis_proxy.restore()
    await cache.set(key, RESULT)
    assert await cache.get(key) == RESULT
    await cache.close()


def test_postgres_down_requests_are_served_and_no_audit_record_is_lost(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_proxy: TcpProxy,
) -> None:
    tenant = f"p-{uuid.uuid4().hex[:8]}"
    config = settings(fake_cluster, tmp_path, database_url=postgres_url(postgres_proxy))
    with TestClient(create_app(config)) as c:
        for _ in range(3):
            assert c.post("/api/llm/process", json=ASK, headers=headers(tenant)).status_code == 200
        postgres_proxy.cut()
        for _ in range(5):
            r = c.post("/api/llm/process", json=ASK, headers=headers(tenant))
            assert r.status_code == 200, r.text
        r = c.post("/graph/invoke", json={"input": ASK}, headers=headers(tenant))
        assert r.status_code == 200, r.text
        # Reading the shared trail needs PostgreSQL: a clear 503 meanwhile.
        r = c.get("/api/llm/audit", headers=headers(tenant, "auditor", (ADMIN,)))
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        postgres_proxy.restore()
        deadline = time.monotonic() + 20
        while (trail := records(c, tenant))["spooled"] or trail["total"] < 9:
            assert time.monotonic() < deadline, trail
            time.sleep(0.2)
    assert trail["total"] == 9
    assert {r["status"] for r in trail["records"]} == {"completed"}


def test_postgres_hanging_costs_requests_seconds_and_loses_no_audit_record(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_proxy: TcpProxy,
) -> None:
    tenant = f"h-{uuid.uuid4().hex[:8]}"
    config = settings(fake_cluster, tmp_path, database_url=postgres_url(postgres_proxy))
    with TestClient(create_app(config)) as c:
        assert c.post("/api/llm/process", json=ASK, headers=headers(tenant)).status_code == 200
        postgres_proxy.freeze()
        for _ in range(3):
            started = time.monotonic()
            r = c.post("/api/llm/process", json=ASK, headers=headers(tenant))
            assert r.status_code == 200, r.text
            # The audit write gives up after 3 s and spools (psycopg alone would wait 13 s).
            assert time.monotonic() - started < 6
        started = time.monotonic()
        r = c.get("/api/llm/audit", headers=headers(tenant, "auditor", (ADMIN,)))
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        assert time.monotonic() - started < 6
        postgres_proxy.thaw()
        deadline = time.monotonic() + 30
        while (trail := records(c, tenant))["spooled"] or trail["total"] < 4:
            assert time.monotonic() < deadline, trail
            time.sleep(0.2)
    assert trail["total"] == 4
    assert {r["status"] for r in trail["records"]} == {"completed"}
    assert asyncio.run(stored(postgres_url(postgres_proxy), tmp_path, tenant)) == 4


def test_records_spooled_before_a_restart_reach_postgres_after_it(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_proxy: TcpProxy,
) -> None:
    tenant = f"s-{uuid.uuid4().hex[:8]}"
    config = settings(fake_cluster, tmp_path, database_url=postgres_url(postgres_proxy))
    with TestClient(create_app(config)) as c:
        postgres_proxy.cut()
        for _ in range(4):
            assert c.post("/api/llm/process", json=ASK, headers=headers(tenant)).status_code == 200
    # The router stopped with four records on local disk; the next one starts with PostgreSQL.
    postgres_proxy.restore()
    with TestClient(create_app(config)) as c:
        deadline = time.monotonic() + 20
        while (trail := records(c, tenant))["total"] < 4:
            assert time.monotonic() < deadline, trail
            time.sleep(0.2)
    assert trail["total"] == 4 and trail["spooled"] == 0
    assert asyncio.run(stored(postgres_url(postgres_proxy), tmp_path, tenant)) == 4


async def stored(url: str, tmp_path: Path, tenant: str) -> int:
    """Records of `tenant` in PostgreSQL itself, read by a store of its own."""
    store = await open_audit_store(url, tmp_path / "reader")
    try:
        return len(await store.query(AuditQuery({"tenant": tenant})))
    finally:
        await store.close()


def test_postgres_down_chains_answer_503_until_it_returns(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_proxy: TcpProxy,
) -> None:
    tenant = f"c-{uuid.uuid4().hex[:8]}"
    chain = {
        "prompt": "Triage this",
        "requires_chaining": True,
        "operations": ["extract", "classify"],
    }
    config = settings(fake_cluster, tmp_path, checkpoint_dsn=postgres_url(postgres_proxy))
    with TestClient(create_app(config)) as c:
        assert c.post("/api/llm/process", json=chain, headers=headers(tenant)).status_code == 200
        postgres_proxy.cut()
        r = c.post("/api/llm/process", json=chain, headers=headers(tenant))
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        postgres_proxy.restore()
        deadline = time.monotonic() + 20
        while (
            r := c.post("/api/llm/process", json=chain, headers=headers(tenant))
        ).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.3)
        assert [s["operation"] for s in r.json()["chain"]] == ["extract", "classify"]
