"""Per-request overhead of the routing graph against a zero-latency fake node.

    uv run python bench/graph_overhead.py [--requests 1000]

Times, in one run and against the same fake node (its own process): a raw httpx POST, a
ChatOpenAI call (what the graph's call_model makes), and a full graph `ainvoke` in single
mode. Graph overhead is the graph's time minus the ChatOpenAI call's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from app.runtime import build_runtime
from app.settings import Settings
from bench.common import added, fake_node, interleaved, print_table
from graph.builder import build_graph

PROMPT = "Analyze this suspicious PowerShell script for malicious intent: IEX(...)"
HINTS = ["threat", "adversary"]


async def measure(url: str, n: int) -> dict[str, list[float]]:
    runtime = build_runtime(Settings(llm_node_1_url=url, llm_node_2_url=url, llm_max_retries=0))
    graph = build_graph().compile()
    body = {"model": "llama31", "messages": [{"role": "user", "content": PROMPT}], "logprobs": True}
    endpoint = runtime.pool.endpoint("llama31", "gb10-node-2")
    async with httpx.AsyncClient() as client:

        async def raw() -> None:
            r = await client.post(f"{endpoint.base_url}/chat/completions", json=body)
            r.raise_for_status()

        async def pool_call() -> None:
            await runtime.pool.call_model("llama31", PROMPT, node_id="gb10-node-2")

        async def graph_call() -> None:
            request = {"prompt": PROMPT, "task_hints": HINTS}
            out = await graph.ainvoke(request, context=runtime.context)
            assert out["routing"].model == "llama31"

        samples = await interleaved(
            {
                "raw httpx POST": raw,
                "ChatOpenAI call (pool)": pool_call,
                "graph ainvoke (single)": graph_call,
            },
            n,
        )
    await runtime.pool.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with fake_node() as url:
        samples = asyncio.run(measure(url, args.requests))
    print_table(samples)
    overhead = added(samples, "graph ainvoke (single)", "ChatOpenAI call (pool)")
    print(f"\ngraph overhead over the model call: {overhead}")


if __name__ == "__main__":
    main()
