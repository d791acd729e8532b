"""Helpers shared by the benchmark scripts: a fake node in a subprocess and percentiles."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout_s}s")


@contextlib.contextmanager
def fake_node(name: str = "bench") -> Iterator[str]:
    """A zero-latency fake OpenAI-compatible node in its own process; yields its URL."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_backend", str(port), name], env=env, cwd=ROOT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(name: str, samples_ms: Sequence[float]) -> str:
    return (
        f"| {name:<34} | {len(samples_ms):>5} | {percentile(samples_ms, 50):>8.2f} "
        f"| {percentile(samples_ms, 99):>8.2f} | {sum(samples_ms) / len(samples_ms):>8.2f} |"
    )


HEADER = (
    "| path                               |     n |  p50 ms |  p99 ms | mean ms |\n"
    "|------------------------------------|-------|---------|---------|---------|"
)
