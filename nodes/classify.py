"""classify: decide the task type and model of the request, or of the chain's next operation."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from graph.context import RouterContext
from graph.records import JobStatus, new_job_id, reservation_key
from graph.state import RouterState, planned_mode
from policies.errors import InvalidRequest
from policies.modes import choose_mode
from policies.types import ExecutionMode


async def classify(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Route the request; in a chain, route the current operation by its task type."""
    ctx = runtime.context
    update: dict[str, Any] = {
        "job_id": state.get("job_id") or new_job_id(),
        "status": JobStatus.ROUTED,
    }
    prompt = state.get("prompt", "")
    mode = planned_mode(state)
    if mode is None:
        mode = choose_mode(
            requires_parallel=bool(state.get("requires_parallel")),
            requires_chaining=bool(state.get("requires_chaining")),
            operations=list(state.get("operations") or []),
            items=list(state.get("items") or []),
            models=list(state.get("models") or []),
            parallel_enabled=ctx.enable_parallel,
        )
        if mode is ExecutionMode.CHAINED and not state.get("operations"):
            raise InvalidRequest("requires_chaining needs a non-empty operations list")
        update["planned_mode"] = mode

    if mode is ExecutionMode.CHAINED:
        index = state.get("chain_index", 0)
        operation = state["operations"][index]
        task_type = ctx.router.task_type_of(operation)
        decision = ctx.router.decide(prompt, task_type=task_type, priority=state.get("priority"))
        update["routing"] = decision.for_operation(operation, index)
        return update

    started = time.perf_counter()
    decision = await ctx.router.adecide(
        prompt,
        list(state.get("task_hints") or []),
        task_type=state.get("task_type"),
        model=state.get("model"),
        priority=state.get("priority"),
        job_id=reservation_key(state.get("tenant", ""), update["job_id"]),
    )
    metrics = ctx.metrics
    metrics.classification_seconds.observe(time.perf_counter() - started)
    metrics.classifications.labels(decision.layer.value, decision.task_type.value).inc()
    metrics.classification_confidence.observe(decision.confidence)
    update.update(routing=decision, usage=decision.usage)
    return update
