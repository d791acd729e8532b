"""call_model: one model call on its reserved node; the reservation ends with the call."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from cluster.errors import RouterError
from graph.context import RouterContext
from graph.state import BranchResult, BranchTask


async def call_model(state: BranchTask, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Call the model; a failure is recorded on the branch so sibling branches still count."""
    ctx = runtime.context
    task = state
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    try:
        result = await ctx.pool.call_model(
            task["model"], task["prompt"], task["parameters"], node_id=task["node_id"]
        )
    except RouterError as exc:
        error = exc.to_dict()
    finally:
        ctx.scheduler.release_lease(task["lease_id"])
    outcome = BranchResult(
        step=task["step"],
        branch=task["branch"],
        label=task["label"],
        model=task["model"],
        node_id=task["node_id"],
        first_item=task["first_item"],
        item_count=task["item_count"],
        result=result,
        error=error,
    )
    return {"branch_results": [outcome]}
