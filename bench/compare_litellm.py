"""gb10-router against LiteLLM's proxy, in one run, in front of the same zero-latency fake node.

    uv run python bench/compare_litellm.py [--requests 1000] [--concurrency 32]

Builds LiteLLM's proxy (`litellm[proxy]==1.80.0`, later releases' proxy extra needs a package
the registry lacks) in a virtual environment of its own under the gb10-router cache, then
starts one fake OpenAI-compatible node, the proxy (one worker, a master key) and the router
(`gb10-router serve`, one worker), each in its own process. Prints, from the same run:
- overhead over a direct call to the node, p50 and p99, from interleaved sequential requests:
  LiteLLM's `/v1/chat/completions`, the router's `/api/llm/process` with `task_type` given,
  and the router classifying a distinct prompt each time (no cache serves those);
- requests per second and p99 at the given concurrency, LiteLLM against the router
  (`task_type` given), the median of three alternating rounds;
- at that concurrency, the p99 of requests that give their `task_type`, alone and when every
  other request is classified (whether classifying holds the others up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import fake_node, interleaved, percentile, router_process
from devnodes.environment import cache_dir
from service.auth import issue_token
from tests.fakes.net import free_port, wait_http

LITELLM = "litellm[proxy]==1.80.0"
SECRET = "bench-secret-0123456789abcdef0123456789"
MASTER_KEY = "sk-bench-0123456789"
#: Throughput rounds per contender, and the pause before each.
ROUNDS = 3
PAUSE_S = 2.0
PROMPT = "Is this login from a new country malicious? user=ann src=203.0.113.7"


def litellm_python() -> Path:
    """LiteLLM's own environment, built on first use."""
    venv = cache_dir() / "litellm-1.80.0"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "litellm").exists():
        print(f"[bench] building {LITELLM} in {venv} ...", flush=True)
        subprocess.run(["uv", "venv", "--python", "3.11", str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "--python", str(python), LITELLM], check=True)
    return python


@contextlib.contextmanager
def litellm_proxy(node_url: str) -> Iterator[str]:
    """LiteLLM's proxy, one worker, routing model `llama31` to the fake node."""
    python = litellm_python()
    port = free_port()
    config = cache_dir() / "litellm-bench.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: llama31\n"
        "    litellm_params:\n"
        "      model: openai/llama31\n"
        f"      api_base: {node_url}/llama31/v1\n"
        "      api_key: unused\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False")
    command = [str(python.parent / "litellm"), "--config", str(config), "--port", str(port)]
    proc = subprocess.Popen([*command, "--num_workers", "1"], env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health/liveliness", alive=proc, timeout_s=180)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


Call = Callable[[], Awaitable[None]]


#: The chat request sent straight to the node and through LiteLLM.
CHAT: dict[str, Any] = {"model": "llama31", "messages": [{"role": "user", "content": PROMPT}]}
#: The router request that names its task type (no classification).
GIVEN: dict[str, Any] = {"prompt": PROMPT, "task_type": "adversarial_reasoning"}


def posting(
    c: httpx.AsyncClient, url: str, body: Mapping[str, Any], headers: dict[str, str] | None = None
) -> Call:
    """A call that POSTs `body` to `url` and fails on an error status."""

    async def call() -> None:
        (await c.post(url, json=body, headers=headers)).raise_for_status()

    return call


def calls(c: httpx.AsyncClient, node: str, proxy: str, router: str, token: str) -> dict[str, Call]:
    router_headers = {"Authorization": f"Bearer {token}"}
    distinct = itertools.count()

    async def classified() -> None:
        ask = {"prompt": f"{PROMPT} (event {next(distinct)})"}
        r = await c.post(f"{router}/api/llm/process", json=ask, headers=router_headers)
        r.raise_for_status()

    return {
        "direct to the node": posting(c, f"{node}/llama31/v1/chat/completions", CHAT),
        "LiteLLM proxy": posting(
            c, f"{proxy}/v1/chat/completions", CHAT, {"Authorization": f"Bearer {MASTER_KEY}"}
        ),
        "gb10-router, task_type given": posting(
            c, f"{router}/api/llm/process", GIVEN, router_headers
        ),
        "gb10-router, classified": classified,
    }


async def throughput(call: Call, total: int, concurrency: int) -> tuple[float, float]:
    """Requests per second and p99 ms of `total` calls, `concurrency` at a time."""
    latencies: list[float] = []
    pending = iter(range(total))

    async def worker() -> None:
        for _ in pending:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), percentile(latencies, 99)


async def mixed(calls: dict[str, Call], total: int, concurrency: int) -> dict[str, list[float]]:
    """Latencies (ms) of each kind of call when `total` calls of the kinds in turn run
    `concurrency` at a time."""
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    pending = iter(itertools.islice(itertools.cycle(calls.items()), total))

    async def worker() -> None:
        for name, call in pending:
            started = time.perf_counter()
            await call()
            latencies[name].append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(node: str, proxy: str, router: str, n: int, concurrency: int) -> None:
    token = issue_token(SECRET, user="bench", tenant="bench")
    pool = concurrency * 2
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        paths = calls(c, node, proxy, router, token)
        samples = await interleaved(paths, n, warmup=50)
        base50 = percentile(samples["direct to the node"], 50)
        base99 = percentile(samples["direct to the node"], 99)
        print(f"\nSequential, {n} interleaved requests each (ms)")
        print("| path | p50 | p99 | overhead p50 | overhead p99 |")
        print("|---|---|---|---|---|")
        for name, values in samples.items():
            p50, p99 = percentile(values, 50), percentile(values, 99)
            print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 - base50:.2f} | {p99 - base99:.2f} |")
        litellm50 = percentile(samples["LiteLLM proxy"], 50) - base50
        for name in ("gb10-router, task_type given", "gb10-router, classified"):
            ours = percentile(samples[name], 50) - base50
            print(f"{name}: overhead {ours / litellm50:.2f}x LiteLLM's at p50")

        total = max(n, concurrency * 20)
        print(f"\nConcurrency {concurrency}, {total} requests each, median of {ROUNDS} rounds")
        print("| path | requests/s | p99 ms |")
        print("|---|---|---|")
        contenders = ["LiteLLM proxy", "gb10-router, task_type given"]
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        for round_ in range(ROUNDS):
            # Alternating who goes first, with a pause: neither inherits the other's
            # after-load work (LiteLLM flushes its logs in the background).
            for name in contenders if round_ % 2 == 0 else contenders[::-1]:
                await asyncio.sleep(PAUSE_S)
                await throughput(paths[name], concurrency * 2, concurrency)  # warm the pools
                runs[name].append(await throughput(paths[name], total, concurrency))
        rates = {}
        for name in contenders:
            rates[name] = statistics.median(rate for rate, _ in runs[name])
            p99 = statistics.median(p99 for _, p99 in runs[name])
            print(f"| {name} | {rates[name]:.1f} | {p99:.1f} |")
        ratio = rates["gb10-router, task_type given"] / rates["LiteLLM proxy"]
        print(f"gb10-router serves {ratio:.2f}x LiteLLM's requests/s")

        given, classified = "gb10-router, task_type given", "gb10-router, classified"
        await asyncio.sleep(PAUSE_S)
        alone = (await mixed({given: paths[given]}, total, concurrency))[given]
        await asyncio.sleep(PAUSE_S)
        both = await mixed({given: paths[given], classified: paths[classified]}, total, concurrency)
        print(f"\nConcurrency {concurrency}: task_type given alone, then half of them classified")
        print("| requests | p50 ms | p99 ms |\n|---|---|---|")
        for name, values in (
            ("task_type given, alone", alone),
            ("task_type given, among classified ones", both[given]),
            ("classified, among those given their task_type", both[classified]),
        ):
            print(f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} |")
        slowdown = percentile(both[given], 99) / percentile(alone, 99)
        print(f"their p99 among classified requests is {slowdown:.2f}x their p99 alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with fake_node() as node, litellm_proxy(node) as proxy:
        nodes = {"LLM_NODE_1_URL": node, "LLM_NODE_2_URL": node}
        with router_process(SECRET, **nodes) as router:
            asyncio.run(measure(node, proxy, router, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
