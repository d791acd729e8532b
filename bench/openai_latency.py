"""The OpenAI-compatible front door against calling the same vLLM server directly.

    uv run python bench/openai_latency.py [--model tiny|smollm2] [--requests 200]

Starts the two local vLLM nodes and a router (`gb10-router serve`, its own process), then
interleaves, per round, the same chat completion (model llama31, max_tokens 16, temperature 0,
a distinct prompt each round and path, so no cache answers):
- streamed, straight to node 2's vLLM server and through the router's `/v1/chat/completions`:
  time to the first token (the first chunk with text) and to the end of the stream;
- not streamed, straight to vLLM, through `/v1/chat/completions` and through
  `/api/llm/process`.
Prints both tables and what the router adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import added, print_table, router_on_local_nodes
from service.auth import issue_token

SECRET = "bench-secret-0123456789abcdef0123456789"
PROMPT = "Round {i} ({path}): is this PowerShell line malicious? IEX(New-Object Net.WebClient)"
PARAMS = {"max_tokens": 16, "temperature": 0}
WARMUP = 10


def chat(i: int, path: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "llama31",
        "messages": [{"role": "user", "content": PROMPT.format(i=i, path=path)}],
        **PARAMS,
    }
    if stream:
        body["stream"] = True
    return body


async def streamed(
    c: httpx.AsyncClient, url: str, body: dict[str, object]
) -> tuple[float | None, float]:
    """Milliseconds to the first chunk with text (None if none had any), and to the end."""
    started = time.perf_counter()
    first: float | None = None
    async with c.stream("POST", url, json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line.removeprefix("data: "))["choices"]
                if choices and choices[0]["delta"].get("content"):
                    first = time.perf_counter()
    end = time.perf_counter()
    return None if first is None else (first - started) * 1000, (end - started) * 1000


async def measure(router_url: str, node_url: str, n: int) -> tuple[dict[str, list[float]], ...]:
    token = issue_token(SECRET, user="bench", tenant="bench")
    ttft: dict[str, list[float]] = {"vLLM directly": [], "router /v1/chat/completions": []}
    total: dict[str, list[float]] = {k: [] for k in ttft}
    plain: dict[str, list[float]] = {
        "vLLM directly": [],
        "router /v1/chat/completions": [],
        "router /api/llm/process": [],
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=120, headers=headers) as c:
        direct, routed = f"{node_url}/v1/chat/completions", f"{router_url}/v1/chat/completions"

        for i in range(-WARMUP, n):
            for name, url in (("vLLM directly", direct), ("router /v1/chat/completions", routed)):
                first, end = await streamed(c, url, chat(i, f"{name} streamed", stream=True))
                if i >= 0:
                    total[name].append(end)
                    if first is not None:
                        ttft[name].append(first)
            process = {
                "prompt": PROMPT.format(i=i, path="process"),
                "model": "llama31",
                "parameters": PARAMS,
            }
            posts = {
                "vLLM directly": (direct, chat(i, "direct", stream=False)),
                "router /v1/chat/completions": (routed, chat(i, "chat", stream=False)),
                "router /api/llm/process": (f"{router_url}/api/llm/process", process),
            }
            for name, (url, body) in posts.items():
                started = time.perf_counter()
                (await c.post(url, json=body)).raise_for_status()
                if i >= 0:
                    plain[name].append((time.perf_counter() - started) * 1000)
    return ttft, total, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--base-port", type=int, default=8200)
    args = parser.parse_args()
    with router_on_local_nodes(SECRET, args.model, args.base_port) as (router_url, node2_url):
        ttft, total, plain = asyncio.run(measure(router_url, node2_url, args.requests))
    print(f"\nmodel: {args.model}, {args.requests} interleaved rounds, max_tokens 16\n")
    routed = "router /v1/chat/completions"
    print("Streamed: time to first token")
    print_table(ttft)
    print(f"added by the router: {added(ttft, routed, 'vLLM directly')}\n")
    print("Streamed: time to the end of the stream")
    print_table(total)
    print(f"added by the router: {added(total, routed, 'vLLM directly')}\n")
    print("Not streamed")
    print_table(plain)
    print(f"/v1/chat/completions adds: {added(plain, routed, 'vLLM directly')}")
    print(f"/api/llm/process adds:     {added(plain, 'router /api/llm/process', 'vLLM directly')}")


if __name__ == "__main__":
    main()
