"""chain_step: after a step's calls, record a chain step and pick what runs next."""

from __future__ import annotations

from typing import Any, Literal

from cluster.errors import error_from_dict
from graph.state import RouterState
from policies.types import ExecutionMode


async def chain_step(state: RouterState) -> dict[str, Any]:
    """In a chain, keep the step's output as context for the next; a failed step ends the chain."""
    if state.get("planned_mode") != ExecutionMode.CHAINED.value:
        return {}
    index = state.get("chain_index", 0)
    done = [r for r in state.get("branch_results") or [] if r["step"] == index]
    outcome = done[-1]
    if outcome["result"] is None:
        raise error_from_dict(outcome["error"] or {"message": "chain step failed"})
    routing = state["routing"]
    step = {
        "step": index,
        "operation": routing["operation"],
        "task_type": routing["task_type"],
        "model": outcome["model"],
        "node_id": outcome["node_id"],
        "output": outcome["result"]["choices"][0]["message"]["content"],
        "latency_ms": outcome["result"]["latency_ms"],
        "scheduling": state.get("scheduling"),
    }
    return {"chain": [*(state.get("chain") or []), step], "chain_index": index + 1}


def after_step(state: RouterState) -> Literal["next_operation", "merge"]:
    """Back to classification for the chain's next operation, else merge."""
    chained = state.get("planned_mode") == ExecutionMode.CHAINED.value
    if chained and state.get("chain_index", 0) < len(state.get("operations") or []):
        return "next_operation"
    return "merge"
