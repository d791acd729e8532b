"""merge: turn the calls' results into the response's `result`."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from cluster.errors import error_from_dict
from cluster.merger import candidate_from_result, outcome_dict
from graph.context import RouterContext
from graph.state import BranchResult, RouterState
from policies.merge import expectation_for
from policies.modes import default_merge_strategy
from policies.types import ExecutionMode, MergeStrategy, TaskType


def _usage(results: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: sum(int(r["usage"].get(k, 0)) for r in results) for k in keys}


def _completion(job_id: str, answer: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": job_id,
        "object": "chat.completion",
        "model": "+".join(dict.fromkeys(r["model_name"] for r in results)),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(results),
    }


def _branch_summary(b: BranchResult) -> dict[str, Any]:
    summary: dict[str, Any] = {"label": b["label"], "model": b["model"], "node_id": b["node_id"]}
    if b["item_count"]:
        summary["items"] = [b["first_item"], (b["first_item"] or 0) + b["item_count"] - 1]
    if b["result"] is not None:
        summary["latency_ms"] = b["result"]["latency_ms"]
        summary["confidence"] = b["result"]["confidence"]
    else:
        summary["error"] = b["error"]
    return summary


async def merge(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """One answer from one call, a chain's last step, or several calls merged by strategy."""
    mode = ExecutionMode.parse(state["planned_mode"])
    if mode is ExecutionMode.CHAINED:
        last = [r for r in state["branch_results"] if r["result"] is not None][-1]
        result = dict(last["result"] or {})
        result["chain"] = state.get("chain") or []
        return {"result": result, "status": "completed"}

    step = [r for r in state["branch_results"] if r["step"] == 0]
    step.sort(key=lambda r: (r["first_item"] if r["first_item"] is not None else 0, r["branch"]))
    ok = [r for r in step if r["result"] is not None]
    failed = [r for r in step if r["result"] is None]
    if not ok:
        raise error_from_dict(failed[0]["error"] or {"message": "every call failed"})
    if len(step) == 1:
        return {"result": ok[0]["result"], "status": "completed"}

    results = [dict(r["result"] or {}, label=r["label"]) for r in ok]
    candidates = [candidate_from_result(r, i) for i, r in enumerate(results)]
    items = bool(state.get("items"))
    task_type = TaskType.parse(state["routing"]["task_type"])
    strategy = MergeStrategy.parse(
        state.get("merge_strategy") or default_merge_strategy(task_type, items)
    )
    outcome = await runtime.context.merger.amerge(
        candidates, strategy, question=state["prompt"], expect=expectation_for(state["prompt"])
    )
    merged = outcome_dict(outcome, candidates)
    if failed:
        merged["notes"].append(
            f"{len(failed)} of {len(step)} calls failed: "
            + "; ".join(f"{r['label']}: {(r['error'] or {}).get('code')}" for r in failed)
        )
    result = _completion(state["job_id"], outcome.answer, results)
    result["merge"] = merged
    result["branches"] = [_branch_summary(r) for r in step]
    return {"result": result, "status": "completed"}
