"""The specification's Python snippets run as a script against the fake nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FakeCluster

ROOT = Path(__file__).resolve().parents[2]


def test_specification_snippets_run(fake_cluster: FakeCluster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(
        LLM_NODE_1_URL=fake_cluster.node1.url,
        LLM_NODE_2_URL=fake_cluster.node2.url,
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python_api.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["routing_decision"]["model"] == "llama31"
    assert report["scheduling_decision"]["node"]["node_id"] == "gb10-node-2"
    single = report["call_model"]
    assert single["model_name"] == "llama31" and single["choices"][0]["message"]["content"]
    assert [r["model_name"] for r in report["call_multiple_models"]] == ["llama31", "deepseek"]
    assert report["merged"]["strategy"] == "consensus"
    assert fake_cluster.node2.calls[0].body["max_completion_tokens"] == 2048
    assert {c.path_model for c in fake_cluster.node1.calls} == {"deepseek"}
