"""The specification's Python API snippets, unchanged but for their import lines.

Run against live nodes (LLM_NODE_1_URL / LLM_NODE_2_URL) with:
    uv run python examples/python_api.py
"""

import asyncio
import json

from app.api import (
    Job,
    MergeStrategy,
    get_job_scheduler,
    get_llm_pool,
    get_llm_router,
    get_merger_agent,
)


def route() -> dict:
    router = get_llm_router()
    routing_decision = router.route_request(
        {"prompt": "Analyze this threat...", "task_hints": ["threat", "adversary"]}
    )
    # Routes to LLaMA 3.1 for adversarial reasoning
    return routing_decision


async def schedule() -> dict:
    scheduler = get_job_scheduler()
    job = Job(
        job_id="threat_analysis_001",
        model="llama31",
        priority=1,
        estimated_vram_gb=10,
        requires_parallel=False,
        requires_chaining=False,
        payload={"prompt": "..."},
    )

    scheduling_decision = await scheduler.schedule_job(job)
    # Returns node assignment and execution mode
    scheduler.complete_job(job.job_id)
    return scheduling_decision


async def call() -> tuple[dict, list]:
    pool = get_llm_pool()

    # Single model call
    result = await pool.call_model(
        model_name="llama31",
        prompt="Analyze this threat pattern...",
        parameters={"temperature": 0.7, "max_tokens": 2048},
    )

    # Multiple models in parallel
    results = await pool.call_multiple_models(
        model_names=["llama31", "deepseek"],
        prompt="Complex threat analysis...",
        parameters={"temperature": 0.7},
    )
    return result, results


def merge() -> dict:
    merger = get_merger_agent()

    # Multiple model results
    results = [
        {"model": "llama31", "response": "...", "confidence": 0.9},
        {"model": "deepseek", "response": "...", "confidence": 0.85},
    ]

    # Merge with consensus strategy
    merged = merger.merge_results(results, strategy=MergeStrategy.CONSENSUS)
    return merged


async def main() -> None:
    single, several = await call()
    report = {
        "routing_decision": route(),
        "scheduling_decision": await schedule(),
        "call_model": single,
        "call_multiple_models": several,
        "merged": merge(),
    }
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())
