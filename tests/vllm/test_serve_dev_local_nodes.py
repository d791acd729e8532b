"""`gb10-router serve --dev` on a machine with no reachable node starts local vLLM nodes on
the CPU, routes real requests to them, and stops them when it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.net import bindable, free_port

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[2]


def test_serve_dev_with_no_nodes_starts_local_ones_and_routes_to_them() -> None:
    port, base = free_port(), free_port(count=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    command = [
        *(sys.executable, "-m", "cli.main", "serve", "--dev", "--port", str(port)),
        *("--local-model", "tiny", "--local-base-port", str(base), "--log-level", "warning"),
    ]
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        lines += [proc.stdout.readline(), proc.stdout.readline()]
        token = lines[1].strip()
        deadline = time.monotonic() + 240
        while "routing to the local nodes" not in lines[-1]:
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(proc.stdout.readline())
        assert any("no node of the default cluster answers" in line for line in lines)
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        r = httpx.post(
            f"{url}/api/llm/process",
            json={"prompt": "Write a YARA rule for the loader", "parameters": {"max_tokens": 4}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["routing"]["task_type"] == "rule_generation"
        assert body["scheduling"]["node"]["endpoint"].startswith(f"http://127.0.0.1:{base + 2}")
        assert body["result"]["usage"]["completion_tokens"] == 4
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
    # The local nodes stopped with the router.
    assert bindable(base + 1) and bindable(base + 2)
