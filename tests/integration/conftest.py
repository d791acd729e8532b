"""A real router over HTTP (uvicorn on a loopback port) in front of the fake nodes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.runtime import RouterRuntime
from graph.builder import build_graph
from server import create_app
from service.auth import ADMIN, OPERATOR, issue_token
from service.responses import response_json
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer

SECRET = "test-secret-0123456789abcdef0123456789"


@dataclass
class RouterServer:
    """A running router and tokens for two tenants."""

    url: str
    admin: str
    operator: str
    analyst: str
    other_tenant: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def router_server(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch
) -> Iterator[RouterServer]:
    server = ThreadedServer(create_app(fake_cluster.settings(jwt_secret=SECRET)))
    yield RouterServer(
        url=server.url,
        admin=issue_token(SECRET, user="alice", tenant="acme", roles=[ADMIN]),
        operator=issue_token(SECRET, user="olga", tenant="noc", roles=[OPERATOR]),
        analyst=issue_token(SECRET, user="bob", tenant="acme"),
        other_tenant=issue_token(SECRET, user="eve", tenant="globex"),
    )
    server.stop()


@pytest.fixture
def router(fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A router's URL, without background probes or policy reloads (tests drive both)."""
    settings = fake_cluster.settings(jwt_secret=SECRET, health_interval_s=0, policy_reload_s=0)
    server = ThreadedServer(create_app(settings))
    yield server.url
    server.stop()


@pytest.fixture
def graph() -> Any:
    """The routing graph, compiled without a checkpointer."""
    return build_graph().compile()


async def run(graph: Any, runtime: RouterRuntime, **request: Any) -> dict[str, Any]:
    """The run's output as the service renders it: the specification's JSON."""
    return response_json(await graph.ainvoke(request, context=runtime.context))
