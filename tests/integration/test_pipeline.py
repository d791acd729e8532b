"""What the request pipeline guarantees beyond the entry-point matrix: a run that fails in any
way, or never starts, still ends with its one audit record."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server import create_app
from service.auth import ADMIN, Principal, issue_token
from service.pipeline import Pipeline
from tests.conftest import FakeCluster
from tests.integration.conftest import SECRET

ASK = {"prompt": "Summarize this alert", "task_type": "general_reasoning"}
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def auth(tenant: str, user: str = "ann", roles: tuple[str, ...] = ()) -> dict[str, str]:
    token = issue_token(SECRET, user=user, tenant=tenant, roles=list(roles))
    return {"Authorization": f"Bearer {token}"}


def trail(c: TestClient, tenant: str) -> list[dict[str, Any]]:
    body = c.get("/api/llm/audit", headers=auth(tenant, "auditor", (ADMIN,))).json()
    records: list[dict[str, Any]] = body["records"]
    return records


@pytest.fixture
def app(fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    return create_app(
        fake_cluster.settings(
            jwt_secret=SECRET,
            health_interval_s=0,
            policy_reload_s=0,
            state_dir=tmp_path / "state",
        )
    )


async def _explode(graph_input: dict[str, Any], config: Any = None) -> Any:
    raise RuntimeError("a bug, not a RouterError")


def test_a_run_that_raises_anything_answers_500_and_is_audited_failed(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = f"e-{uuid.uuid4().hex[:8]}"
    with TestClient(app, raise_server_exceptions=False) as c:
        monkeypatch.setattr(app.state.service, "run", _explode)
        r = c.post("/api/llm/process", json=ASK, headers=auth(tenant))
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        [record] = trail(c, tenant)
    assert (record["status"], record["error_code"]) == ("failed", "internal_error")


def test_an_async_job_that_raises_anything_ends_failed_not_running(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = f"a-{uuid.uuid4().hex[:8]}"
    with TestClient(app) as c:
        monkeypatch.setattr(app.state.service, "run", _explode)
        r = c.post("/api/llm/process", json={**ASK, "async": True}, headers=auth(tenant))
        assert r.status_code == 202
        deadline = time.monotonic() + 10
        while (job := c.get(r.json()["status_url"], headers=auth(tenant)).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job["status"] == "failed" and job["error"]["code"] == "internal_error"
        [record] = trail(c, tenant)
    assert (record["status"], record["error_code"]) == ("failed", "internal_error")


def test_an_admitted_request_whose_run_never_starts_is_closed_as_abandoned(app: Any) -> None:
    tenant = f"u-{uuid.uuid4().hex[:8]}"
    pipeline: Pipeline = app.state.pipeline
    principal = Principal("ann", tenant)
    with TestClient(app) as c:

        async def admit_and_forget() -> int:
            await pipeline.admit(principal, [{"prompt": "x"}], "graph/stream")
            kept = await pipeline.close_unclaimed()  # too young: kept for its run
            return kept + await pipeline.close_unclaimed(older_than_s=0)

        assert c.portal.call(admit_and_forget) == 1
        [record] = trail(c, tenant)
    assert (record["status"], record["error_code"], record["http_status"]) == (
        "abandoned",
        "client_gone",
        499,
    )


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_client_that_leaves_mid_stream_is_audited_abandoned(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path, store: str
) -> None:
    import httpx

    from tests.fakes.net import ThreadedServer

    tenant = f"s-{uuid.uuid4().hex[:8]}"
    extra: dict[str, Any] = {"database_url": POSTGRES} if store == "postgres" else {}
    settings = fake_cluster.settings(
        jwt_secret=SECRET,
        health_interval_s=0,
        policy_reload_s=0,
        state_dir=tmp_path / "state",
        **extra,
    )
    server = ThreadedServer(create_app(settings))
    fake_cluster.node1.behaviour.delay_s = 3.0  # the model call is still running when it leaves
    try:
        with (
            httpx.Client(base_url=server.url, headers=auth(tenant), timeout=30) as c,
            c.stream("POST", "/graph/stream", json={"input": ASK}) as r,
        ):
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data:") and "schedule" in line:
                    break  # routed and scheduled: now the client goes away
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while True:
                admin = auth(tenant, "auditor", (ADMIN,))
                records = c.get("/api/llm/audit", headers=admin).json()["records"]
                if records and records[0]["status"] != "accepted":
                    break
                assert time.monotonic() < deadline, records
                time.sleep(0.1)
    finally:
        server.stop()
    [record] = records
    assert (record["status"], record["error_code"]) == ("abandoned", "client_gone")
    assert record["entry_point"] == "graph/stream" and record["model"] == "deepseek"


def test_a_run_that_fails_midway_spends_the_tokens_its_finished_steps_used(
    app: Any, fake_cluster: FakeCluster
) -> None:
    tenant = f"c-{uuid.uuid4().hex[:8]}"
    chain = {
        "prompt": "Extract the IOCs from this alert, classify them, write a Sigma rule",
        "requires_chaining": True,
        "operations": ["extract", "classify", "generate"],
    }
    fake_cluster.node2.behaviour.per_model_fail_status = {"granite-guardian": 400}
    with TestClient(app) as c:
        r = c.post("/api/llm/process", json=chain, headers=auth(tenant))
        assert r.status_code == 400, r.text
        [record] = trail(c, tenant)
    assert fake_cluster.node2.models_called()[:2] == ["phi4", "granite-guardian"]
    assert (record["status"], record["error_code"]) == ("failed", "backend_rejected")
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0


def test_shutdown_closes_every_admitted_request_still_open(app: Any) -> None:
    tenant = f"d-{uuid.uuid4().hex[:8]}"
    pipeline: Pipeline = app.state.pipeline
    with TestClient(app) as c:

        async def admit() -> None:
            await pipeline.admit(Principal("ann", tenant), [{"prompt": "x"}], "graph/invoke")

        c.portal.call(admit)
    assert pipeline.open_tickets() == 0
    with TestClient(app) as c:
        [record] = trail(c, tenant)
    assert (record["status"], record["http_status"], record["error_code"]) == (
        "abandoned",
        503,
        "router_stopped",
    )
