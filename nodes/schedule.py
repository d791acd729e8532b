"""schedule: reserve capacity for the step's calls, or send the job to the queue."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Send

from cluster.cache import cacheable
from cluster.completion import branch_label
from cluster.scheduler import Lease
from graph.context import RouterContext
from graph.records import JobStatus, SchedulingReport
from graph.state import BranchTask, RouterState, planned_mode, reservations
from nodes.chain_step import chain_prompt
from policies.batching import chunk_items, label_format, numbered_prompt
from policies.types import ExecutionMode


def _task(
    lease: Lease, branch: int, prompt: str, state: RouterState, first_item: int | None, count: int
) -> BranchTask:
    return branch_task(
        lease,
        branch,
        prompt,
        state,
        first_item,
        count,
        list(range(first_item or 0, (first_item or 0) + count)),
    )


def branch_task(
    lease: Lease,
    branch: int,
    prompt: str,
    state: RouterState,
    first_item: int | None,
    count: int,
    items_asked: list[int],
) -> BranchTask:
    """A call of `prompt` on `lease`, asking about the batch items `items_asked`."""
    routing = state["routing"]
    parameters = dict(state.get("parameters") or {})
    labels = list(state.get("labels") or [])
    if labels and items_asked and "response_format" not in parameters:
        parameters["response_format"] = label_format(items_asked, labels)
        # The alternatives at each label's place give each item's confidence.
        parameters.setdefault("top_logprobs", min(20, len(labels) + 3))
    return BranchTask(
        step=state.get("chain_index", 0),
        branch=branch,
        label=branch_label(lease.model, lease.node_id),
        model=lease.model,
        node_id=lease.node_id,
        lease_id=lease.lease_id,
        prompt=prompt,
        parameters=parameters,
        first_item=first_item,
        item_count=count,
        items_asked=items_asked,
        job_id=reservations(state),
        priority=routing.priority,
        # A fan-out across models keeps each branch on its own model.
        failover_models=[lease.model] if state.get("models") else list(routing.candidates),
        tenant=state.get("tenant", ""),
        cacheable=cacheable(parameters, bool(state.get("cache"))),
        # The conversation goes with calls of the request's own prompt, not chunks or steps.
        messages=list(state.get("messages") or []) if prompt == state["prompt"] else [],
        grammar=None,
        labels=labels if items_asked else [],
    )


def _fan_out_targets(ctx: RouterContext, state: RouterState) -> list[tuple[str, str | None]]:
    """(model, node or None) pairs a parallel step may use, in preference order."""
    models = list(state.get("models") or [])
    if models:
        return [(ctx.router.require_model(m), None) for m in models]
    return [
        (model, node_id)
        for model in state["routing"].candidates
        for node_id in ctx.scheduler.serving_nodes(model)
    ]


async def _parallel_leases(
    ctx: RouterContext, state: RouterState, job_id: str, priority: int, first: Lease | None
) -> list[Lease]:
    leases = [first] if first is not None else []
    for model, node_id in _fan_out_targets(ctx, state):
        if len(leases) >= ctx.max_parallel_jobs:
            break
        if any(
            lease.model == model and (node_id is None or lease.node_id == node_id)
            for lease in leases
        ):
            continue
        lease = await ctx.scheduler.reserve(job_id, [model], priority=priority, node_id=node_id)
        if lease is not None:
            leases.append(lease)
    return leases


async def schedule(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Plan the step's calls on reserved capacity; an empty plan means wait in the queue."""
    ctx = runtime.context
    job_id = reservations(state)
    routing = state["routing"]
    mode = planned_mode(state)
    assert mode is not None, "classify plans the mode before schedule runs"
    granted = state.get("granted_lease")
    first = ctx.scheduler.lease(granted)
    items = list(state.get("items") or [])
    labels = list(state.get("labels") or [])
    prompt = state["prompt"]

    if mode is ExecutionMode.PARALLEL:
        leases = await _parallel_leases(ctx, state, job_id, routing.priority, first)
    else:
        lease = first or await ctx.scheduler.reserve(
            job_id, routing.candidates, priority=routing.priority
        )
        leases = [lease] if lease is not None else []
    if not leases:
        return {"plan": [], "granted_lease": None, "status": JobStatus.QUEUED}

    plan: list[BranchTask] = []
    if mode is ExecutionMode.CHAINED:
        plan.append(
            _task(leases[0], 0, chain_prompt(state, state.get("chain_index", 0)), state, None, 0)
        )
    elif items and mode is ExecutionMode.PARALLEL:
        weights = [ctx.scheduler.free_vram_gb(lease.node_id) + lease.vram_gb for lease in leases]
        chunks = chunk_items(items, weights)
        for branch, ((start, chunk), lease) in enumerate(zip(chunks, leases, strict=False)):
            plan.append(
                _task(
                    lease,
                    branch,
                    numbered_prompt(prompt, chunk, start, labels),
                    state,
                    start,
                    len(chunk),
                )
            )
        for lease in leases[len(chunks) :]:
            ctx.scheduler.release(lease)
        leases = leases[: len(chunks)]
    elif items:
        plan.append(
            _task(leases[0], 0, numbered_prompt(prompt, items, 0, labels), state, 0, len(items))
        )
    else:
        plan.extend(_task(lease, i, prompt, state, None, 0) for i, lease in enumerate(leases))

    waited = state.get("queue_wait_s", 0.0)
    ctx.metrics.queue_wait_seconds.observe(waited)
    shown_mode = ExecutionMode.QUEUED if waited and mode is not ExecutionMode.CHAINED else mode
    scheduling = SchedulingReport(
        job_id=state["job_id"],
        execution_mode=shown_mode,
        dispatched_as=mode,
        nodes=[ctx.scheduler.node_ref(lease) for lease in leases],
        reason=leases[0].reason,
        queue_wait_s=waited,
    )
    return {
        "plan": plan,
        "granted_lease": None,
        "scheduling": scheduling,
        "execution_mode": shown_mode,
        "status": JobStatus.RUNNING,
    }


def dispatch(state: RouterState) -> list[Send] | Literal["wait_for_capacity"]:
    """One `call_model` per planned call, or the queue when nothing could be reserved."""
    plan = state.get("plan") or []
    if not plan:
        return "wait_for_capacity"
    return [Send("call_model", task) for task in plan]
