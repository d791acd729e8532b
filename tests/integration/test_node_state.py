"""Node state an operator sets sticks (through probes and restarts), and replicas share it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server import create_app
from service.auth import OPERATOR, issue_token
from tests.conftest import FakeCluster
from tests.integration.conftest import SECRET
from tests.integration.test_governance import POSTGRES, REDIS, Replica

NODE = "gb10-node-1"


def operator() -> dict[str, str]:
    token = issue_token(SECRET, user="noc", tenant="noc", roles=[OPERATOR])
    return {"Authorization": f"Bearer {token}"}


def status_of(nodes: dict[str, Any], node_id: str = NODE) -> str:
    status: str = next(n for n in nodes["nodes"] if n["node_id"] == node_id)["status"]
    return status


def test_a_drain_sticks_through_probes_and_a_restart(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = fake_cluster.settings(
        jwt_secret=SECRET, health_interval_s=0.2, policy_reload_s=0, state_dir=tmp_path
    )
    with TestClient(create_app(settings)) as c:
        r = c.post(
            "/api/llm/nodes/status", json={"node_id": NODE, "status": "offline"}, headers=operator()
        )
        assert r.status_code == 200, r.text
        time.sleep(1.0)  # five probes, every one of them answered
        assert status_of(c.get("/api/llm/nodes", headers=operator()).json()) == "offline"
        ask = {"prompt": "Summarize the incident", "model": "deepseek", "timeout_s": 0.5}
        refused = c.post("/api/llm/process", json=ask, headers=operator())
        assert refused.status_code == 503, refused.text
    with TestClient(create_app(settings)) as c:  # the router restarts
        assert status_of(c.get("/api/llm/nodes", headers=operator()).json()) == "offline"
        r = c.post(
            "/api/llm/nodes/status",
            json={"node_id": NODE, "status": "available"},
            headers=operator(),
        )
        assert r.status_code == 200
        time.sleep(0.5)
        assert status_of(c.get("/api/llm/nodes", headers=operator()).json()) == "available"
        assert c.post("/api/llm/process", json=ask, headers=operator()).status_code == 200


def test_a_node_that_stops_answering_is_offline_whatever_the_operator_set(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = fake_cluster.settings(
        jwt_secret=SECRET, health_interval_s=0.2, policy_reload_s=0, state_dir=tmp_path
    )
    with TestClient(create_app(settings)) as c:
        c.post(
            "/api/llm/nodes/status", json={"node_id": NODE, "status": "busy"}, headers=operator()
        )
        fake_cluster.node1.behaviour.healthy = False
        time.sleep(0.6)
        assert status_of(c.get("/api/llm/nodes", headers=operator()).json()) == "offline"
        fake_cluster.node1.behaviour.healthy = True
        time.sleep(0.6)
        assert status_of(c.get("/api/llm/nodes", headers=operator()).json()) == "busy"


def test_replicas_see_an_update_posted_to_any_of_them_within_a_second(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:10]}"

    def settings() -> Any:
        return fake_cluster.settings(
            jwt_secret=SECRET,
            health_interval_s=0.5,
            policy_reload_s=0,
            state_dir=tmp_path / uuid.uuid4().hex[:6],
            database_url=POSTGRES,
            redis_url=REDIS,
            redis_prefix=prefix,
        )

    first, second = Replica(settings()), Replica(settings())
    try:
        with httpx.Client(headers=operator(), timeout=10) as c:
            report = {"node_id": NODE, "vram_used_gb": 42.5, "compute_utilization": 0.7}
            started = time.monotonic()
            assert c.post(f"{first.url}/api/llm/nodes/status", json=report).status_code == 200
            while True:
                node = next(
                    n
                    for n in c.get(f"{second.url}/api/llm/nodes").json()["nodes"]
                    if n["node_id"] == NODE
                )
                if node["compute_utilization"] == 0.7:
                    break
                assert time.monotonic() - started < 1.0, node
                time.sleep(0.02)
            drain = {"node_id": NODE, "status": "offline"}
            started = time.monotonic()
            assert c.post(f"{second.url}/api/llm/nodes/status", json=drain).status_code == 200
            # A node agent's report lands on the other replica at once, maybe before the
            # drain's notice: it must not write back the node's old status.
            report["vram_used_gb"] = 12.0
            assert c.post(f"{first.url}/api/llm/nodes/status", json=report).status_code == 200
            while status_of(c.get(f"{first.url}/api/llm/nodes").json()) != "offline":
                assert time.monotonic() - started < 1.0
                time.sleep(0.02)
            time.sleep(1.5)  # resyncs and probes on both
            for router in (first, second):
                nodes = c.get(f"{router.url}/api/llm/nodes").json()
                assert status_of(nodes) == "offline"
                node = next(n for n in nodes["nodes"] if n["node_id"] == NODE)
                assert node["vram_used_gb"] == 12.0, node
        second.stop()
        third = Replica(settings())  # a replica that starts now sees the drain too
        try:
            with httpx.Client(headers=operator(), timeout=10) as c:
                time.sleep(1.2)  # probes have run on both
                for router in (first, third):
                    assert status_of(c.get(f"{router.url}/api/llm/nodes").json()) == "offline"
        finally:
            third.stop()
    finally:
        first.stop()
        second.stop()
