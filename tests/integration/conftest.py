"""A real router over HTTP (uvicorn on a loopback port) in front of the fake nodes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from server import create_app
from service.auth import ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import free_port

SECRET = "test-secret-0123456789abcdef0123456789"


@dataclass
class RouterServer:
    """A running router and tokens for two tenants."""

    url: str
    admin: str
    analyst: str
    other_tenant: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def serve(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("router did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def router_server(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch
) -> Iterator[RouterServer]:
    app = create_app(fake_cluster.settings(jwt_secret=SECRET))
    server, thread, url = serve(app)
    yield RouterServer(
        url=url,
        admin=issue_token(SECRET, user="alice", tenant="acme", roles=[ADMIN]),
        analyst=issue_token(SECRET, user="bob", tenant="acme"),
        other_tenant=issue_token(SECRET, user="eve", tenant="globex"),
    )
    server.should_exit = True
    thread.join(timeout=10)
