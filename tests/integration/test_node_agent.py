"""The node agent: NVML readings (through a stand-in module) posted to a real router."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from cli.main import main
from cluster.node_agent import (
    NodeAgent,
    NvmlReader,
    NvmlUnavailable,
    command_line_matches,
    status_update,
)
from server import create_app
from service.auth import OPERATOR, issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer, free_port
from tests.fakes.nvml import FakeGpu, FakeNvml
from tests.integration.conftest import SECRET, RouterServer

TOKEN = issue_token(SECRET, user="agent", tenant="acme", roles=[OPERATOR])


def node_1(client: httpx.Client) -> dict[str, Any]:
    """gb10-node-1 as `GET /api/llm/nodes` shows it."""
    nodes: list[dict[str, Any]] = client.get("/api/llm/nodes").json()["nodes"]
    return next(n for n in nodes if n["node_id"] == "gb10-node-1")


async def report(
    router_server: RouterServer, nvml: FakeNvml, model_server_pid: int | None, iterations: int
) -> None:
    """Run the agent for gb10-node-1 against the router: `iterations` readings of `nvml`."""
    reader = NvmlReader(nvml, is_model_server=lambda pid: pid == model_server_pid)  # type: ignore[arg-type]
    agent = NodeAgent("gb10-node-1", router_server.url, TOKEN, reader, interval_s=0.01)
    await agent.run(iterations=iterations)
    await agent.aclose()


def test_reader_sums_every_gpu() -> None:
    nvml = FakeNvml(
        [
            FakeGpu(used_gib=21.6, util_percent=100, processes=1, power_mw=692_000),
            FakeGpu(used_gib=0.6, util_percent=0, temperature_c=55),
        ]
    )
    sample = NvmlReader(nvml, is_model_server=lambda pid: False).read()  # type: ignore[arg-type]
    assert sample.gpus == 2
    assert sample.vram_used_gb == pytest.approx(22.2, abs=0.01)
    assert sample.vram_total_gb == pytest.approx(279.6, abs=0.01)
    assert sample.utilization == 0.5
    assert (sample.processes, sample.power_w, sample.temperature_c) == (1, 810.0, 55.0)


def test_missing_nvml_is_a_clear_error() -> None:
    with pytest.raises(NvmlUnavailable, match="Shared Library Not Found"):
        NvmlReader(FakeNvml(missing=True))  # type: ignore[arg-type]


def test_cli_exits_with_one_line_where_nvml_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    # The real nvidia-ml-py: CI machines have no NVIDIA driver.
    code = main(
        ["node-agent", "--node-id", "gb10-node-1", "--router", "http://127.0.0.1:9", "--token", "t"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "NVML is not available" in err and err.count("\n") == 1


async def test_agent_reports_and_the_router_shows_it(router_server: RouterServer) -> None:
    nvml = FakeNvml(
        [FakeGpu(used_gib=21.6, util_percent=99, processes=1, power_mw=692_000, temperature_c=44)]
    )
    await report(router_server, nvml, model_server_pid=None, iterations=2)
    with router_server.client(router_server.analyst) as c:
        node = node_1(c)
    assert node["vram_used_gb"] == pytest.approx(21.6, abs=0.01)
    assert node["compute_utilization"] == 0.99
    assert node["gpu"]["power_w"] == 692.0 and node["gpu"]["processes"] == 1
    assert node["telemetry_at"] is not None


def test_model_server_memory_is_reported_apart() -> None:
    # vLLM holds 100 GiB (weights and its preallocated KV cache), a fine-tune 8 GiB.
    nvml = FakeNvml([FakeGpu(used_gib=108.6, total_gib=128, process_gib=[100.0, 8.0, None])])
    sample = NvmlReader(nvml, is_model_server=lambda pid: pid == 1000).read()  # type: ignore[arg-type]
    assert sample.model_server_vram_gb == pytest.approx(100.0)
    assert sample.other_vram_gb == pytest.approx(8.6, abs=0.01)
    body = status_update("gb10-node-1", sample)
    assert body["vram_used_gb"] == pytest.approx(8.6, abs=0.01)
    assert body["gpu"]["vram_used_gb"] == pytest.approx(108.6, abs=0.01)


def test_model_servers_are_found_by_command_line() -> None:
    matches = command_line_matches(r"vllm\.entrypoints")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "vllm.entrypoints.openai"]
    )
    try:
        # Until the child has exec'd, its command line is still this process's.
        deadline = time.monotonic() + 10
        while not matches(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert matches(proc.pid)
        assert not matches(os.getpid())
        assert not matches(2**22 + 17)  # no such process
    finally:
        proc.kill()
        proc.wait()


async def test_a_vllm_node_reported_by_the_agent_still_takes_work(
    router_server: RouterServer,
) -> None:
    nvml = FakeNvml([FakeGpu(used_gib=75.0, total_gib=80, process_gib=[74.0])])
    await report(router_server, nvml, model_server_pid=1000, iterations=1)
    with router_server.client(router_server.analyst) as c:
        node = node_1(c)
        assert node["vram_used_gb"] == pytest.approx(1.0, abs=0.01)
        assert node["gpu"]["model_server_vram_gb"] == pytest.approx(74.0)
        r = c.post("/api/llm/process", json={"prompt": "hello", "model": "deepseek"})
    assert r.status_code == 200, r.text
    assert r.json()["scheduling"]["node"]["node_id"] == "gb10-node-1"


async def test_agent_rides_out_a_router_restart(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch
) -> None:
    port = free_port()
    waits: list[float] = []

    async def short_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0.05)

    agent = NodeAgent(
        "gb10-node-2",
        f"http://127.0.0.1:{port}",
        TOKEN,
        NvmlReader(FakeNvml()),  # type: ignore[arg-type]
        interval_s=0.01,
        sleep=short_sleep,
    )
    run = asyncio.create_task(agent.run(iterations=1))
    await asyncio.sleep(0.4)  # no router yet: the agent backs off 1, 2, 4, ... seconds
    assert agent.failures >= 3 and waits[:3] == [1.0, 2.0, 4.0]
    server = await asyncio.to_thread(
        ThreadedServer, create_app(fake_cluster.settings(jwt_secret=SECRET)), port
    )
    try:
        await asyncio.wait_for(run, 15)
        assert agent.sent == 1
    finally:
        await asyncio.to_thread(server.stop)
        await agent.aclose()


async def test_a_refused_report_stops_the_agent(router_server: RouterServer) -> None:
    analyst = issue_token(SECRET, user="x", tenant="acme")
    agent = NodeAgent("gb10-node-1", router_server.url, analyst, NvmlReader(FakeNvml()))  # type: ignore[arg-type]
    with pytest.raises(PermissionError, match="403"):
        await agent.run(iterations=1)
    await agent.aclose()
