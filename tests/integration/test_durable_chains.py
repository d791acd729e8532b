"""A chain interrupted by a router restart resumes from its last finished step."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from server import create_app
from service.auth import issue_token
from tests.conftest import FakeCluster
from tests.integration.conftest import SECRET

CHAIN = {
    "prompt": "First extract IOCs, then classify threats, finally generate a rule",
    "requires_chaining": True,
    "operations": ["extract", "classify", "generate"],
}


async def call(app: FastAPI, body: dict[str, Any], tenant: str = "acme") -> httpx.Response:
    token = issue_token(SECRET, user="u", tenant=tenant)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
        return await client.post(
            "/api/llm/process", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_chain_resumes_after_a_restart(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, store: str
) -> None:
    extra: dict[str, Any] = {"checkpoint_dsn": POSTGRES} if store == "postgres" else {}
    settings = fake_cluster.settings(
        jwt_secret=SECRET, health_interval_s=0, policy_reload_s=0, **extra
    )
    chain = {**CHAIN, "job_id": f"chain-restart-{uuid.uuid4().hex[:8]}"}
    node2 = fake_cluster.node2
    first = create_app(settings)
    # Step 2 (granite-guardian) is slow: the router stops while it runs.
    node2.behaviour.per_model_delay_s = {"granite-guardian": 2.0}
    async with first.router.lifespan_context(first):
        task = asyncio.create_task(call(first, chain))
        for _ in range(200):
            if node2.models_called() == ["phi4", "granite-guardian"]:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert node2.models_called() == ["phi4", "granite-guardian"]

    node2.behaviour.per_model_delay_s = {}
    second = create_app(settings)  # a new process: fresh runtime, same checkpoint store
    async with second.router.lifespan_context(second):
        # Another job's reservation: the resumed step's saved lease id must never name it.
        scheduler = second.state.service.context.scheduler
        bystander = scheduler.try_acquire("bystander", ["granite-guardian"])
        assert bystander is not None
        r = await call(second, chain)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [s["operation"] for s in body["chain"]] == ["extract", "classify", "generate"]
        # Step 1 was not run again; step 2 re-ran after the interruption; step 3 ran once.
        assert node2.models_called() == [
            "phi4",
            "granite-guardian",
            "granite-guardian",
            "qwen-coder",
        ]
        again = await call(second, chain)
        assert again.json()["chain"] == body["chain"]
        assert node2.models_called().count("qwen-coder") == 1
        # Job ids are the tenant's own: another tenant's job of the same id is a chain of its
        # own, run from its first step, and never sees acme's.
        other = await call(second, chain, tenant="globex")
        assert other.status_code == 200, other.text
        assert node2.models_called()[4:] == ["phi4", "granite-guardian", "qwen-coder"]
        # The resumed step reserved afresh and released only its own reservation.
        assert [lease.job_id for lease in scheduler.leases()] == ["bystander"]
        scheduler.release(bystander)
