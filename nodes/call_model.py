"""call_model: one model call on its reserved node; the reservation ends with the call."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from cluster.errors import BackendTimeout, BackendUnavailable, RouterError
from cluster.runtime import RouterRuntime
from graph.context import RouterContext
from graph.state import BranchResult, BranchTask
from service.cache import cache_key


async def _call(ctx: RouterRuntime, task: BranchTask, model: str, node_id: str) -> dict[str, Any]:
    return await ctx.pool.call_model(model, task["prompt"], task["parameters"], node_id=node_id)


async def call_model(state: BranchTask, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Call the model; if its server is down, once more on another node that has room.

    A failure is recorded on the branch, so sibling branches still count.
    """
    ctx = runtime.context
    task = state
    model, node_id = task["model"], task["node_id"]
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    key = cache_key(task["tenant"], model, task["prompt"], None, task["parameters"])
    if task["cacheable"] and (cached := await ctx.cache.get(key)) is not None:
        ctx.scheduler.release_lease(task["lease_id"])
        return {
            "branch_results": [_outcome(task, model, node_id, {**cached, "cache_hit": True}, None)]
        }
    try:
        result = await _call(ctx, task, model, node_id)
        if task["cacheable"]:
            await ctx.cache.set(key, result)
    except (BackendUnavailable, BackendTimeout) as exc:
        ctx.scheduler.release_lease(task["lease_id"])
        failover = ctx.scheduler.try_acquire(
            task["job_id"],
            task["failover_models"],
            priority=task["priority"],
            exclude_nodes=frozenset({node_id}),
        )
        if failover is None:
            error = exc.to_dict()
        else:
            try:
                result = await _call(ctx, task, failover.model, failover.node_id)
                result["failed_over_from"] = {"node_id": node_id, "model": model, "error": exc.code}
                model, node_id = failover.model, failover.node_id
            except RouterError as again:
                error = again.to_dict()
            finally:
                ctx.scheduler.release(failover)
    except RouterError as exc:
        error = exc.to_dict()
    finally:
        ctx.scheduler.release_lease(task["lease_id"])
    return {"branch_results": [_outcome(task, model, node_id, result, error)]}


def _outcome(
    task: BranchTask,
    model: str,
    node_id: str,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> BranchResult:
    return BranchResult(
        step=task["step"],
        branch=task["branch"],
        label=f"{model}@{node_id}",
        model=model,
        node_id=node_id,
        first_item=task["first_item"],
        item_count=task["item_count"],
        result=result,
        error=error,
    )
