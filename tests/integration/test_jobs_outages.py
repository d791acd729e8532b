"""Asynchronous jobs while PostgreSQL hangs, behind a proxy the test freezes: submitting and
polling answer 503 in seconds rather than hang, and a job accepted before completes after."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server import create_app
from service.auth import ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.proxy import TcpProxy
from tests.integration.conftest import SECRET

ASK = {"prompt": "Summarize this alert", "task_type": "general_reasoning", "async": True}


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5432))
    yield proxy
    proxy.close()


def auth(tenant: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {issue_token(SECRET, user='ann', tenant=tenant, roles=list(roles))}"
    }


def test_a_hanging_postgres_costs_job_requests_seconds_and_loses_no_job(
    fake_cluster: FakeCluster,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_proxy: TcpProxy,
) -> None:
    tenant = f"o-{uuid.uuid4().hex[:8]}"
    settings = fake_cluster.settings(
        jwt_secret=SECRET,
        health_interval_s=0,
        policy_reload_s=0,
        state_dir=tmp_path / "state",
        database_url=f"postgresql://postgres@127.0.0.1:{postgres_proxy.port}/test",
        job_lease_s=2.0,
        job_heartbeat_s=0.5,
    )
    fake_cluster.node1.behaviour.delay_s = 1.0
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/llm/process", json=ASK, headers=auth(tenant))
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        postgres_proxy.freeze()  # the job runs on, but can neither renew its lease nor finish
        for request in (
            lambda: c.post("/api/llm/process", json=ASK, headers=auth(tenant)),
            lambda: c.get(f"/api/llm/jobs/{job_id}", headers=auth(tenant)),
        ):
            started = time.monotonic()
            refused = request()
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "store_unavailable"
            assert time.monotonic() - started < 6
        postgres_proxy.thaw()
        deadline = time.monotonic() + 30
        while (job := c.get(f"/api/llm/jobs/{job_id}", headers=auth(tenant)).json())[
            "status"
        ] not in ("completed", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["status"] == "completed"
        admin = auth(tenant, (ADMIN,))
        deadline = time.monotonic() + 30
        while (trail := c.get("/api/llm/audit", headers=admin).json())["spooled"] or any(
            r["status"] == "accepted" for r in trail["records"]
        ):
            assert time.monotonic() < deadline, trail
            time.sleep(0.2)
    records: list[dict[str, Any]] = trail["records"]
    assert sorted((r["job_id"] == job_id, r["status"]) for r in records) == [
        (False, "refused"),
        (True, "completed"),
    ]
