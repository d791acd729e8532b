"""call_model: one model call on its reserved node; the reservation ends with the call."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from langgraph.runtime import Runtime

from cluster.cache import cache_key
from cluster.completion import CallResult, FailedOver
from graph.context import RouterContext
from graph.records import BranchResult
from graph.state import BranchTask, RouterState, planned_mode
from graph.tracing import span
from nodes.validate import validates
from policies.errors import BackendTimeout, BackendUnavailable, ErrorInfo, RouterError
from policies.item_confidence import label_confidences
from policies.types import ExecutionMode
from policies.usage import Usage


async def _call(ctx: RouterContext, task: BranchTask, model: str, node_id: str) -> CallResult:
    with span(ctx.tracer, "gb10.model_call", **{"gb10.model": model, "gb10.node": node_id}):
        result = await ctx.pool.call_model(
            model,
            task["prompt"],
            task["parameters"],
            node_id=node_id,
            messages=task.get("messages") or None,
            grammar=task.get("grammar"),
        )
    # The tokens are read here, once: what the state and the cache keep is their reading.
    labels = task.get("labels") or []
    sure = label_confidences(result.completion.content, result.tokens, labels) if labels else {}
    return dataclasses.replace(result, tokens=[], item_confidence=sure)


async def call_model(state: BranchTask, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Call the model; if its server is down, once more on another node that has room.

    A failure is recorded on the branch, so sibling branches still count.
    """
    ctx = runtime.context
    task = await _reserved(ctx, state)
    model, node_id = task["model"], task["node_id"]
    result: CallResult | None = None
    error: ErrorInfo | None = None
    failures = ctx.metrics.backend_errors
    conversation = task.get("messages")
    asked = json.dumps(conversation, sort_keys=True) if conversation else task["prompt"]
    held = {"grammar": task["grammar"]} if task.get("grammar") else {}
    key = cache_key(task["tenant"], model, asked, None, {**task["parameters"], **held})
    if task["cacheable"] and (cached := await ctx.cache.get(key)) is not None:
        ctx.scheduler.release_lease(task["lease_id"])
        ctx.metrics.cache_hits.inc()
        hit = dataclasses.replace(cached, cache_hit=True)
        return {"branch_results": [_outcome(task, model, node_id, hit, None)], "usage": Usage()}
    try:
        result = await _call(ctx, task, model, node_id)
        if task["cacheable"]:
            await ctx.cache.set(key, result)
    except (BackendUnavailable, BackendTimeout) as exc:
        failures.labels(model, node_id, exc.code).inc()
        ctx.scheduler.release_lease(task["lease_id"])
        failover = await ctx.scheduler.reserve(
            task["job_id"],
            task["failover_models"],
            priority=task["priority"],
            exclude_nodes=frozenset({node_id}),
        )
        if failover is None:
            error = exc.info()
        else:
            try:
                answer = await _call(ctx, task, failover.model, failover.node_id)
                moved = FailedOver(node_id=node_id, model=model, error=exc.code)
                result = dataclasses.replace(answer, failed_over_from=moved)
                model, node_id = failover.model, failover.node_id
            except RouterError as again:
                failures.labels(failover.model, failover.node_id, again.code).inc()
                error = again.info()
            finally:
                ctx.scheduler.release(failover)
    except RouterError as exc:
        failures.labels(model, node_id, exc.code).inc()
        error = exc.info()
    finally:
        ctx.scheduler.release_lease(task["lease_id"])
    if result is not None:
        ctx.metrics.model_call_seconds.labels(model, node_id).observe(result.latency_ms / 1000)
    spent = Usage() if result is None else result.completion.usage
    return {"branch_results": [_outcome(task, model, node_id, result, error)], "usage": spent}


async def _reserved(ctx: RouterContext, task: BranchTask) -> BranchTask:
    """The task, with a live reservation: one resumed from a checkpoint after a restart holds
    an id that died with the old process, so it reserves afresh (waiting if it must)."""
    if ctx.scheduler.holds(task["lease_id"]):
        return task
    lease = await ctx.scheduler.acquire(
        task["job_id"], task["failover_models"], priority=task["priority"]
    )
    return {**task, "lease_id": lease.lease_id, "model": lease.model, "node_id": lease.node_id}


def _outcome(
    task: BranchTask,
    model: str,
    node_id: str,
    result: CallResult | None,
    error: ErrorInfo | None,
) -> BranchResult:
    return BranchResult(
        step=task["step"],
        branch=task["branch"],
        model=model,
        node_id=node_id,
        first_item=task["first_item"],
        item_count=task["item_count"],
        call=result,
        error=error,
        items_asked=list(task["items_asked"]),
    )


def after_call(
    state: RouterState,
) -> Literal["chain_step", "collect_items", "validate", "merge"]:
    """A chain's call goes on to record its step, a batch's to have its items read back, a
    single answer of a checkable form to its check; anything else straight to merge."""
    if planned_mode(state) is ExecutionMode.CHAINED:
        return "chain_step"
    if state.get("items"):
        return "collect_items"
    return "validate" if validates(state) else "merge"
