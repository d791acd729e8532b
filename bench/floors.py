"""The floor under the router's overhead: what bare FastAPI, ChatOpenAI and LangGraph cost.

    uv run python bench/floors.py [--requests 500] [--concurrency 32]

Starts one zero-latency fake node, LiteLLM's proxy (as `bench/compare_litellm.py` builds it)
and three minimal proxies (`bench/floor_proxy.py`: FastAPI forwarding with httpx, FastAPI
calling one ChatOpenAI, FastAPI running a four-node LangGraph graph around that ChatOpenAI),
each one uvicorn worker in its own process. Prints, from one run, each one's overhead over a
direct call (interleaved sequential requests) and requests per second at `--concurrency`,
with each overhead as a share of LiteLLM's, and the router (`task_type` given) last. The
floors have no authentication, limits, audit, routing or scheduling: whatever the router adds
over the LangGraph row is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import ROOT, fake_node, interleaved, percentile, router_process
from bench.compare_litellm import (
    CHAT,
    GIVEN,
    MASTER_KEY,
    PROMPT,
    SECRET,
    Call,
    litellm_proxy,
    posting,
    throughput,
)
from service.auth import issue_token
from tests.fakes.net import free_port, wait_http

FLAVOURS = {
    "httpx": "FastAPI + httpx forward",
    "chatopenai": "FastAPI + ChatOpenAI",
    "langgraph": "FastAPI + 4-node LangGraph + ChatOpenAI",
}


@contextlib.contextmanager
def floor_proxy(flavour: str, node: str) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = str(ROOT / "bench" / "floor_proxy.py")
    proc = subprocess.Popen([sys.executable, script, flavour, str(port), node], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", alive=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def calls(
    c: httpx.AsyncClient, node: str, proxy: str, floors: dict[str, str], router: str
) -> dict[str, Call]:
    token = issue_token(SECRET, user="bench", tenant="bench")
    paths = {
        "direct to the node": posting(c, f"{node}/llama31/v1/chat/completions", CHAT),
        "LiteLLM proxy": posting(
            c, f"{proxy}/v1/chat/completions", CHAT, {"Authorization": f"Bearer {MASTER_KEY}"}
        ),
    }
    for flavour, url in floors.items():
        paths[FLAVOURS[flavour]] = posting(c, f"{url}/chat", {"prompt": PROMPT})
    paths["gb10-router, task_type given"] = posting(
        c, f"{router}/api/llm/process", GIVEN, {"Authorization": f"Bearer {token}"}
    )
    return paths


async def measure(
    node: str, proxy: str, floors: dict[str, str], router: str, n: int, concurrency: int
) -> None:
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        paths = calls(c, node, proxy, floors, router)
        samples = await interleaved(paths, n, warmup=50)
        base = percentile(samples["direct to the node"], 50)
        litellm = percentile(samples["LiteLLM proxy"], 50) - base
        print(f"\nSequential, {n} interleaved requests each (ms)")
        print("| path | p50 | p99 | overhead p50 | share of LiteLLM's |")
        print("|---|---|---|---|---|")
        for name, values in samples.items():
            p50, p99 = percentile(values, 50), percentile(values, 99)
            share = (p50 - base) / litellm
            print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 - base:.2f} | {share:.2f} |")
        total = max(n, concurrency * 20)
        print(f"\nConcurrency {concurrency}, {total} requests each")
        print("| path | requests/s | p99 ms |\n|---|---|---|")
        for name, call in paths.items():
            await throughput(call, concurrency * 2, concurrency)
            rate, p99 = await throughput(call, total, concurrency)
            print(f"| {name} | {rate:.1f} | {p99:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        node = stack.enter_context(fake_node())
        proxy = stack.enter_context(litellm_proxy(node))
        floors = {f: stack.enter_context(floor_proxy(f, node)) for f in FLAVOURS}
        nodes = {"LLM_NODE_1_URL": node, "LLM_NODE_2_URL": node}
        router = stack.enter_context(router_process(SECRET, **nodes))
        asyncio.run(measure(node, proxy, floors, router, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
