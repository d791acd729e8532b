"""LangGraph Studio: `langgraph dev` loads langgraph.json offline and runs the graph."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from tests.conftest import FakeCluster
from tests.fakes.net import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.studio


@pytest.fixture
def studio(fake_cluster: FakeCluster, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="1",
        LLM_NODE_1_URL=fake_cluster.node1.url,
        LLM_NODE_2_URL=fake_cluster.node2.url,
    )
    cli = Path(sys.executable).with_name("langgraph")
    log = (tmp_path / "langgraph-dev.log").open("w")
    proc = subprocess.Popen(
        [
            str(cli),
            "dev",
            "--no-browser",
            "--no-reload",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(f"{url}/ok", timeout_s=90, alive=proc)
        except RuntimeError as exc:
            raise RuntimeError((tmp_path / "langgraph-dev.log").read_text()[-3000:]) from exc
        yield url
    finally:
        stop_process(proc, grace_s=15)
        log.close()


async def test_studio_lists_draws_and_runs_the_graph(
    studio: str, fake_cluster: FakeCluster
) -> None:
    client = get_client(url=studio)
    assistants = await client.assistants.search()
    assert [a["graph_id"] for a in assistants] == ["gb10_router"]
    assistant_id = assistants[0]["assistant_id"]

    drawing = await client.assistants.get_graph(assistant_id)
    nodes = {n["id"] for n in drawing["nodes"]}
    assert {
        "classify",
        "schedule",
        "wait_for_capacity",
        "call_model",
        "chain_step",
        "merge",
    } <= nodes

    schemas = await client.assistants.get_schemas(assistant_id)
    knobs = schemas["context_schema"]["properties"]
    assert set(knobs) == {"enable_parallel", "max_parallel_jobs"}

    thread = await client.threads.create()
    out = await client.runs.wait(
        thread["thread_id"],
        assistant_id,
        input={
            "prompt": "Generate a YARA rule to detect this malware family",
            "task_hints": ["code"],
        },
    )
    assert isinstance(out, dict)
    assert out["status"] == "completed"
    assert out["routing"]["model"] == "qwen-coder"
    # The echo holds no rule: asked once more of the same model, and reported failed.
    assert fake_cluster.node2.models_called() == ["qwen-coder", "qwen-coder"]
    assert out["result"]["validation"]["status"] == "failed"

    # A run may turn the knobs: parallel off, a batch runs as one call.
    batch = await client.runs.wait(
        (await client.threads.create())["thread_id"],
        assistant_id,
        input={"prompt": "Label each alert", "items": ["a", "b", "c"]},
        context={"enable_parallel": False},
    )
    assert isinstance(batch, dict)
    assert batch["execution_mode"] == "single"
