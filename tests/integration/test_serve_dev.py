"""`gb10-router serve --dev` starts with an ephemeral secret and prints a working admin token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import FakeCluster
from tests.fakes.net import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]


def test_dev_mode_prints_an_admin_token_that_works(fake_cluster: FakeCluster) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(
        LLM_NODE_1_URL=fake_cluster.node1.url,
        LLM_NODE_2_URL=fake_cluster.node2.url,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "admin token" in proc.stdout.readline()
        token = proc.stdout.readline().strip()
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", alive=proc)
        headers = {"Authorization": f"Bearer {token}"}
        update = {"node_id": "gb10-node-1", "compute_utilization": 0.5}
        r = httpx.post(f"{url}/api/llm/nodes/status", json=update, headers=headers)
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
