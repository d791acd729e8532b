"""Tenant isolation, audit, rate limits and cache: embedded, and two replicas on Redis + PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.backends import open_audit_store
from app.settings import Settings
from server import create_app
from service.audit import AuditQuery
from service.auth import ADMIN, GLOBAL_ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer, free_port, wait_started
from tests.integration.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


def limits_file(tmp_path: Path, user_rpm: int = 10_000, tenant_rpm: int = 100_000) -> Path:
    path = tmp_path / "limits.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "default": {
                    "user": {"requests_per_minute": user_rpm, "tokens_per_minute": 10_000_000},
                    "tenant": {"requests_per_minute": tenant_rpm, "tokens_per_minute": 100_000_000},
                }
            }
        )
    )
    return path


class Replica(ThreadedServer):
    """One router in this test process; long keep-alive and backlog for bursts of requests."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings), timeout_keep_alive=60, backlog=4096)


@pytest.fixture
def tenant() -> str:
    """A tenant of this test alone, so shared Redis and PostgreSQL state never collides."""
    return f"t-{uuid.uuid4().hex[:10]}"


def settings_for(fake: FakeCluster, tmp_path: Path, shared: bool, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "health_interval_s": 0,
        "policy_reload_s": 0,
        "state_dir": tmp_path / "state",
    }
    if shared:
        values.update(database_url=POSTGRES, redis_url=REDIS)
    values.update(extra)
    return fake.settings(**values)


async def audit_count(settings: Settings, tenant: str) -> int:
    store = await open_audit_store(settings.database_url, settings.state_dir)
    try:
        return await store.count(AuditQuery({"tenant": tenant}))
    finally:
        await store.close()


async def fire(urls: list[str], token: str, n: int, body: dict[str, Any]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=200)
    # The burst queues for the fake nodes' few slots: on a busy two-core host the last
    # answers come a minute or more after they were sent, and are still answers.
    async with httpx.AsyncClient(
        timeout=300, limits=limits, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        return await asyncio.gather(
            *(client.post(f"{urls[i % len(urls)]}/api/llm/process", json=body) for i in range(n))
        )


# 500 requests through a few fake slots: 30-80 s here, past the suite's 120 s default when busy.
@pytest.mark.timeout(400)
@pytest.mark.parametrize("shared", [False, True], ids=["embedded", "redis+postgres"])
async def test_500_concurrent_requests_leave_500_audit_records(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str,
    shared: bool,
) -> None:
    settings = settings_for(fake_cluster, tmp_path, shared, limits_config=limits_file(tmp_path))
    replica = Replica(settings)
    try:
        token = issue_token(SECRET, user="load", tenant=tenant)
        body = {"prompt": "Label this alert", "task_type": "classification", "timeout_s": 120}
        responses = await fire([replica.url], token, 500, body)
        failed = [(r.status_code, r.text[:300]) for r in responses if r.status_code != 200]
        assert not failed, failed
    finally:
        replica.stop()
    # A burst wider than the audit pool spools some records locally for a moment; they all
    # reach the shared trail (the spool drains at shutdown, and writes it abandoned commit).
    for _ in range(40):
        if (count := await audit_count(settings, tenant)) == 500:
            break
        await asyncio.sleep(0.5)
    assert count == 500


@pytest.mark.parametrize("shared", [False, True], ids=["embedded", "redis+postgres"])
async def test_a_limit_of_10_per_minute_admits_exactly_10(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str,
    shared: bool,
) -> None:
    settings = settings_for(
        fake_cluster, tmp_path, shared, limits_config=limits_file(tmp_path, user_rpm=10)
    )
    # Two replicas share the counters when they share Redis; embedded, one replica.
    replicas = [Replica(settings) for _ in range(2 if shared else 1)]
    try:
        token = issue_token(SECRET, user="burst", tenant=tenant)
        responses = await fire([r.url for r in replicas], token, 50, {"prompt": "Summarize"})
    finally:
        for r in replicas:
            r.stop()
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 10 and codes.count(429) == 40, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert (
        refused.headers["x-ratelimit-limit"] == "10"
        and refused.headers["x-ratelimit-remaining"] == "0"
    )
    admitted = next(r for r in responses if r.status_code == 200)
    assert int(admitted.headers["x-ratelimit-remaining"]) < 10
    assert await audit_count(settings, tenant) == 50  # refusals are audited too


@pytest.mark.parametrize("shared", [False, True], ids=["embedded", "redis+postgres"])
async def test_a_cached_answer_is_never_served_to_another_tenant(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str,
    shared: bool,
) -> None:
    settings = settings_for(fake_cluster, tmp_path, shared)
    replicas = [Replica(settings) for _ in range(2 if shared else 1)]
    other = f"{tenant}-other"
    body = {"prompt": f"Summarize incident {tenant}", "parameters": {"temperature": 0}}
    try:

        async def ask(replica: Replica, who: str) -> dict[str, Any]:
            token = issue_token(SECRET, user="u", tenant=who)
            async with httpx.AsyncClient(
                timeout=30, headers={"Authorization": f"Bearer {token}"}
            ) as c:
                r = await c.post(f"{replica.url}/api/llm/process", json=body)
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()
            return result

        first = await ask(replicas[0], tenant)
        again = await ask(replicas[-1], tenant)  # the other replica, when shared
        stranger = await ask(replicas[-1], other)
    finally:
        for r in replicas:
            r.stop()
    assert first["cache_hit"] is False and again["cache_hit"] is True
    assert again["result"]["choices"] == first["result"]["choices"]
    assert stranger["cache_hit"] is False
    ours = [c for c in fake_cluster.node1.calls if tenant in str(c.messages[-1]["content"])]
    assert len(ours) == 2  # tenant A's first ask and tenant B's: never the repeat
    store = await open_audit_store(settings.database_url, settings.state_dir)
    try:
        hits = [r["cache_hit"] for r in await store.query(AuditQuery({"tenant": tenant}))]
    finally:
        await store.close()
    assert hits == [False, True]


def test_audit_endpoint_filters_pages_and_keeps_tenants_apart(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path, tenant: str
) -> None:
    from fastapi.testclient import TestClient

    app = create_app(settings_for(fake_cluster, tmp_path, False))
    user = {"Authorization": f"Bearer {issue_token(SECRET, user='ann', tenant=tenant)}"}
    admin = {
        "Authorization": f"Bearer {issue_token(SECRET, user='boss', tenant=tenant, roles=[ADMIN])}"
    }
    root = {
        "Authorization": f"Bearer {issue_token(SECRET, user='root', tenant='ops', roles=[GLOBAL_ADMIN])}"
    }
    outsider = {
        "Authorization": f"Bearer {issue_token(SECRET, user='x', tenant='other', roles=[ADMIN])}"
    }
    with TestClient(app) as c:
        for i in range(5):
            assert (
                c.post(
                    "/api/llm/process", headers=user, json={"prompt": f"Summarize {i}"}
                ).status_code
                == 200
            )
        assert (
            c.post(
                "/api/llm/process",
                headers=user,
                json={"prompt": "x", "model": "deepseek", "parameters": {"temprature": 1}},
            ).status_code
            == 422
        )
        assert c.get("/api/llm/audit", headers=user).status_code == 403
        page = c.get("/api/llm/audit", headers=admin, params={"limit": 2, "offset": 1}).json()
        assert page["total"] == 6 and len(page["records"]) == 2
        # The last offset a database takes is an empty page; past it, a 422, never a 500.
        last = c.get("/api/llm/audit", headers=admin, params={"offset": 2**63 - 1})
        assert last.status_code == 200 and last.json()["records"] == []
        past = c.get("/api/llm/audit", headers=admin, params={"offset": 2**63})
        assert past.status_code == 422, past.text
        record = page["records"][0]
        assert record["tenant"] == tenant and record["user_id"] == "ann"
        assert len(record["prompt_sha256"]) == 64 and record["prompt_text"] is None
        assert (
            record["model"] == "deepseek"
            and record["node"] == "gb10-node-1"
            and record["mode"] == "single"
        )
        # An unknown generation parameter is refused before it is admitted, and audited.
        refused = c.get("/api/llm/audit", headers=admin, params={"status": "refused"}).json()
        assert refused["total"] == 1
        assert refused["records"][0]["error_code"] == "validation_error"
        assert c.get("/api/llm/audit", headers=outsider).json()["total"] == 0
        assert (
            c.get("/api/llm/audit", headers=outsider, params={"tenant": tenant}).status_code == 403
        )
        assert c.get("/api/llm/audit", headers=root, params={"tenant": tenant}).json()["total"] == 6


def test_killing_a_replica_loses_no_audit_record_of_an_answered_request(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path, tenant: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(
        ROUTER_JWT_SECRET=SECRET,
        LLM_NODE_1_URL=fake_cluster.node1.url,
        LLM_NODE_2_URL=fake_cluster.node2.url,
        DATABASE_URL=POSTGRES,
        REDIS_URL=REDIS,
        ROUTER_HEALTH_INTERVAL_S="0",
        ROUTER_STATE_DIR=str(tmp_path / "state"),
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_started(proc, f"{url}/healthz")
    fake_cluster.node1.behaviour.delay_s = 0.05
    token = issue_token(SECRET, user="u", tenant=tenant)
    answered: list[str] = []

    def client(i: int) -> None:
        try:
            r = httpx.post(
                f"{url}/api/llm/process",
                json={"prompt": f"Summarize {i}"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=20,
            )
        except httpx.HTTPError:
            return
        answered.append(r.headers["x-job-id"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(answered) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-load: some answered, the rest in flight
    for t in threads:
        t.join(timeout=30)
    proc.wait(timeout=10)
    assert 0 < len(answered) < 60, len(answered)

    async def audited() -> set[str]:
        store = await open_audit_store(POSTGRES, tmp_path)
        try:
            rows = await store.query(AuditQuery({"tenant": tenant}, limit=1000))
        finally:
            await store.close()
        return {r["job_id"] for r in rows}

    assert set(answered) <= asyncio.run(audited())


def test_cli_exports_the_audit_trail_as_json_lines(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from fastapi.testclient import TestClient

    from cli.main import main

    settings = settings_for(fake_cluster, tmp_path, False)
    headers = {"Authorization": f"Bearer {issue_token(SECRET, user='ann', tenant=tenant)}"}
    with TestClient(create_app(settings)) as c:
        for i in range(3):
            c.post("/api/llm/process", headers=headers, json={"prompt": f"Summarize {i}"})
    clean_env.setenv("ROUTER_STATE_DIR", str(settings.state_dir))
    assert main(["audit-export", "--tenant", tenant]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3 and {r["tenant"] for r in rows} == {tenant}
    assert "exported 3 audit records" in err
