"""`gb10-router local-nodes` and `gb10-router demo` against real vLLM (tiny model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.net import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.vllm


# Starts the CLI with SIGINT ignored, as a background job of a non-interactive shell has it
# (an ignored signal stays ignored across exec).
SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'cli.main', *sys.argv[1:]])"
)


def cli(*args: str, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    """`gb10-router *args` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    start = ["-c", SIGINT_IGNORED] if ignore_sigint else ["-m", "cli.main"]
    return subprocess.Popen(
        [sys.executable, *start, *args],
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_local_nodes_serve_until_ctrl_c_then_stop_cleanly() -> None:
    base = free_port(count=3)
    proc = cli("local-nodes", "--model", "tiny", "--base-port", str(base), ignore_sigint=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while "Ctrl-C stops the servers" not in "".join(lines[-1:]):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        assert "gb10-node-1 ready" in text and "gb10-node-2 ready" in text
        models = httpx.get(f"http://127.0.0.1:{base + 2}/v1/models", timeout=5).json()
        assert {m["id"] for m in models["data"]} == {
            "phi4",
            "qwen-coder",
            "llama31",
            "granite-guardian",
        }
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        stop_process(proc, grace_s=60)  # the CLI stops its vLLM servers on SIGTERM
    assert proc.returncode == 0, rest
    assert "servers stopped" in rest
    for port in (base + 1, base + 2):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_demo_prints_routing_for_the_four_requests(tmp_path: Path) -> None:
    port = str(free_port(count=4))
    proc = cli("demo", "--model", "tiny", "--base-port", port, "--save", str(tmp_path))
    try:
        out, _ = proc.communicate(timeout=400)
    finally:
        stop_process(proc, grace_s=60)
    assert proc.returncode == 0, out
    for title, model in [
        ("threat analysis", "llama31"),
        ("YARA rule", "qwen-coder"),
        ("parallel batch", "granite-guardian"),
        ("chain", "phi4"),
    ]:
        block = out.split(f"== {title}")[1].split("==")[0]
        assert model in block, block
        assert "answer" in block
    assert "mode      : parallel" in out and "mode      : chained" in out
    # The batch's 50 items each come back with a status, whatever the tiny model wrote.
    assert "items     : 50 (" in out.split("== parallel batch")[1]
    # The tiny model's noise holds no rule; its repair is held to YARA's grammar.
    assert "validation: " in out.split("== YARA rule")[1].split("==")[0]
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == [
        "1-threat-analysis.json",
        "2-yara-rule.json",
        "3-parallel-batch.json",
        "4-chain.json",
    ]
    rule = json.loads((tmp_path / "2-yara-rule.json").read_text())["result"]["validation"]
    assert rule["kind"] == "yara" and rule["error"] == "the answer holds no YARA rule"
    batch = json.loads((tmp_path / "3-parallel-batch.json").read_text())["result"]["items"]
    assert [item["index"] for item in batch] == list(range(50))
