"""HTTP-level overhead of `POST /api/llm/process` (single mode) against a zero-latency fake node.

    uv run python bench/http_overhead.py [--requests 1000]

One run, one fake node (its own process), one router (`gb10-router serve`, its own process):
times a raw POST to the fake node and the same request through the router's HTTP API.
Router overhead = HTTP time - raw POST time. The graph alone is `bench/graph_overhead.py`:
running it in this process too would put a second set of BLAS threads on the same two cores
as the router's and measure their contention instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import added, fake_node, interleaved, print_table, router_process
from service.auth import issue_token

PROMPT = "Analyze this suspicious PowerShell script for malicious intent: IEX(...)"
SECRET = "bench-secret-0123456789abcdef0123456789"


async def measure(router_url: str, node_url: str, n: int) -> dict[str, list[float]]:
    token = issue_token(SECRET, user="bench", tenant="bench")
    body = {"model": "llama31", "messages": [{"role": "user", "content": PROMPT}], "logprobs": True}
    request = {"prompt": PROMPT, "task_hints": ["threat"]}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:

        async def raw() -> None:
            r = await client.post(f"{node_url}/llama31/v1/chat/completions", json=body)
            r.raise_for_status()

        async def http() -> None:
            r = await client.post(f"{router_url}/api/llm/process", json=request)
            r.raise_for_status()
            assert r.json()["routing"]["model"] == "llama31"

        samples = await interleaved(
            {
                "raw POST to the node": raw,
                "POST /api/llm/process": http,
            },
            n,
        )
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with (
        fake_node() as node_url,
        router_process(
            SECRET, LLM_NODE_1_URL=node_url, LLM_NODE_2_URL=node_url, LLM_MAX_RETRIES="0"
        ) as router_url,
    ):
        samples = asyncio.run(measure(router_url, node_url, args.requests))
    print_table(samples)
    overhead = added(samples, "POST /api/llm/process", "raw POST to the node")
    print(f"\nrouter overhead over a raw POST: {overhead}")


if __name__ == "__main__":
    main()
