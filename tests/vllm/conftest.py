"""Two real vLLM servers on the CPU (the tiny test model) and a router in front of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.settings import Settings
from cluster.config import load_cluster_config
from devnodes.environment import cache_dir, model_dir, vllm_python
from devnodes.servers import DEFAULT_CLUSTER, VllmServer, node_models, write_cluster_config
from server import create_app
from service.auth import ADMIN, OPERATOR, issue_token
from tests.fakes.net import ThreadedServer, free_port

SECRET = "vllm-suite-secret-0123456789abcdef0123"


@dataclass
class VllmCluster:
    """The two stand-in nodes and the cluster file that points at them."""

    servers: dict[str, VllmServer]
    config: Path


@dataclass
class LiveRouter:
    url: str
    token: str
    admin: str


def process(router: LiveRouter, body: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
    """`POST /api/llm/process` as the router's analyst; the JSON of a 200, else the test fails."""
    with httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {router.token}"}) as c:
        r = c.post(f"{router.url}/api/llm/process", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture(scope="session")
def vllm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmCluster]:
    python = vllm_python()
    model = model_dir("tiny")
    logs = cache_dir() / "logs"
    servers = {
        node: VllmServer(node, python, model, names, free_port(), logs / f"test-{node}.log")
        for node, names in node_models(load_cluster_config(DEFAULT_CLUSTER)).items()
    }
    for server in servers.values():
        server.start()
    try:
        for server in servers.values():
            server.wait_ready()
        config = write_cluster_config(
            list(servers.values()), tmp_path_factory.mktemp("vllm") / "cluster.yaml"
        )
        yield VllmCluster(servers, config)
    finally:
        for server in servers.values():
            server.stop()


def router_settings(cluster: VllmCluster) -> Settings:
    return Settings(
        cluster_config=cluster.config,
        jwt_secret=SecretStr(SECRET),
        health_interval_s=0.5,
        health_timeout_s=1.0,
        telemetry_max_age_s=5,
        llm_default_timeout=30,
        llm_max_retries=0,
    )


@pytest.fixture
def live_router(vllm_cluster: VllmCluster, clean_env: pytest.MonkeyPatch) -> Iterator[LiveRouter]:
    server = ThreadedServer(create_app(router_settings(vllm_cluster)))
    yield LiveRouter(
        server.url,
        issue_token(SECRET, user="analyst", tenant="soc"),
        issue_token(SECRET, user="admin", tenant="soc", roles=[ADMIN, OPERATOR]),
    )
    server.stop()
