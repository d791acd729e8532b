"""Single-mode latency through the router against calling the same vLLM server directly.

    uv run python bench/vllm_latency.py [--model tiny|smollm2] [--requests 300]

Starts the two local vLLM nodes and a router (`gb10-router serve`, its own process), then
interleaves a direct chat completion to node 2's vLLM server with the same request through
`POST /api/llm/process` (model llama31, same parameters), and prints both.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import added, interleaved, print_table, router_on_local_nodes
from service.auth import issue_token

SECRET = "bench-secret-0123456789abcdef0123456789"
PROMPT = "Analyze this suspicious PowerShell script for malicious intent: IEX(...)"
PARAMS = {"max_tokens": 16, "temperature": 0}


async def measure(router_url: str, node_url: str, n: int) -> dict[str, list[float]]:
    token = issue_token(SECRET, user="bench", tenant="bench")
    # A distinct prompt per call: at temperature 0 the router's response cache would
    # answer a repeated one without calling vLLM at all.
    rounds = itertools.count()
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:

        async def direct() -> None:
            body = {
                "model": "llama31",
                "messages": [{"role": "user", "content": f"{PROMPT} #{next(rounds)}"}],
                "logprobs": True,
                **PARAMS,
            }
            (await c.post(f"{node_url}/v1/chat/completions", json=body)).raise_for_status()

        async def routed() -> None:
            body = {"prompt": f"{PROMPT} #{next(rounds)}", "model": "llama31", "parameters": PARAMS}
            r = await c.post(f"{router_url}/api/llm/process", json=body)
            r.raise_for_status()

        return await interleaved(
            {"vLLM directly": direct, "through the router (single)": routed}, n, warmup=10
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--base-port", type=int, default=8200)
    args = parser.parse_args()
    with router_on_local_nodes(SECRET, args.model, args.base_port) as (router_url, node2_url):
        samples = asyncio.run(measure(router_url, node2_url, args.requests))
    print(f"\nmodel: {args.model}, {args.requests} interleaved requests, max_tokens 16")
    print_table(samples)
    print(
        f"\nadded by the router: {added(samples, 'through the router (single)', 'vLLM directly')}"
    )


if __name__ == "__main__":
    main()
