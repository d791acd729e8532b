"""Helpers shared by the benchmark scripts: a fake node in a subprocess and percentiles."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

from devnodes.environment import ModelKind
from tests.fakes.net import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent


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


async def interleaved(
    calls: dict[str, Callable[[], Awaitable[None]]], n: int, warmup: int = 50
) -> dict[str, list[float]]:
    """Milliseconds per call of each path, interleaved so machine noise hits all alike."""
    for fn in calls.values():
        for _ in range(warmup):
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(n):
        for name, fn in calls.items():
            started = time.perf_counter()
            await fn()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


@contextlib.contextmanager
def router_process(secret: str, *args: str, **env: str) -> Iterator[str]:
    """`gb10-router serve` in its own process, signing tokens with `secret`; yields its URL."""
    with router_server(secret, *args, **env) as (url, _pid):
        yield url


@contextlib.contextmanager
def router_server(secret: str, *args: str, **env: str) -> Iterator[tuple[str, int]]:
    """`router_process`, yielding the URL and the server's process id (for a profiler)."""
    port = free_port()
    # Limits high enough never to refuse a benchmark request; the limiter still runs.
    limits = Path(tempfile.mkdtemp()) / "limits.yaml"
    quota = "{requests_per_minute: 1000000000, tokens_per_minute: 1000000000}"
    limits.write_text(f"default:\n  user: {quota}\n  tenant: {quota}\n")
    environment = dict(
        os.environ,
        ROUTER_JWT_SECRET=secret,
        PYTHONPATH=str(ROOT),
        ROUTER_LIMITS_CONFIG=str(limits),
        **env,
    )
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *args,
    ]
    proc = subprocess.Popen(command, env=environment, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", alive=proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def router_on_local_nodes(
    secret: str, kind: ModelKind, base_port: int
) -> Iterator[tuple[str, str]]:
    """The two local vLLM nodes and a router in front of them; yields the router's URL and
    node 2's vLLM server's, for calling the same server directly."""
    from cli.local import running_nodes

    with (
        running_nodes(kind, base_port) as (servers, config),
        router_process(secret, "--cluster-config", str(config)) as router_url,
    ):
        yield router_url, next(s.url for s in servers if s.name == "gb10-node-2")


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(name: str, samples_ms: Sequence[float]) -> str:
    return (
        f"| {name:<34} | {len(samples_ms):>5} | {percentile(samples_ms, 50):>7.2f} "
        f"| {percentile(samples_ms, 99):>7.2f} | {sum(samples_ms) / len(samples_ms):>7.2f} |"
    )


HEADER = (
    "| path                               |     n |  p50 ms |  p99 ms | mean ms |\n"
    "|------------------------------------|-------|---------|---------|---------|"
)


def print_table(samples: dict[str, list[float]]) -> None:
    """The HEADER table, a row per path."""
    print(HEADER)
    for name, values in samples.items():
        print(row(name, values))


def added(samples: dict[str, list[float]], path: str, base: str) -> str:
    """What `path` adds over `base` at p50 and p99, as text."""
    p50 = percentile(samples[path], 50) - percentile(samples[base], 50)
    p99 = percentile(samples[path], 99) - percentile(samples[base], 99)
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
