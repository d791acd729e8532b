"""collect_items: each batch item's answer, read back from the calls that asked about it; the
items a call skipped or garbled get one retry on another branch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from cluster.scheduler import Lease
from graph.context import RouterContext
from graph.records import BatchItem, BranchResult, ItemStatus
from graph.state import BranchTask, RouterState, reservations
from nodes.schedule import branch_task
from policies.batch_answers import read_answers
from policies.batching import item_prompt


def batch_items(state: RouterState) -> list[BatchItem]:
    """Every item's answer from the step's calls, the retry's winning over the first's."""
    labels = list(state.get("labels") or [])
    first: dict[int, BatchItem] = {}
    latest: dict[int, BatchItem] = {}
    for result in (r for r in state.get("branch_results") or [] if r.step == 0):
        for item in _read(result, labels):
            first.setdefault(item.index, item)
            before = latest.get(item.index)
            if before is None or item.answer is not None:
                latest[item.index] = item
            elif before.answer is None:
                why = f"{before.problem}; on the retry: {item.problem}"
                latest[item.index] = replace(item, status=ItemStatus.MISSING, problem=why)
    out = []
    for index in range(len(state.get("items") or [])):
        found = latest.get(index)
        if found is None:
            out.append(BatchItem(index, ItemStatus.MISSING, None, None, None, None, "not asked"))
        elif found.answer is not None and first[index].answer is None:
            out.append(replace(found, status=ItemStatus.RETRIED, problem=first[index].problem))
        else:
            out.append(found)
    return out


def _read(result: BranchResult, labels: list[str]) -> list[BatchItem]:
    if result.call is None:
        why = f"call failed: {result.error.code}" if result.error else "call failed"
        return [
            BatchItem(i, ItemStatus.MISSING, None, result.model, result.node_id, None, why)
            for i in result.items_asked
        ]
    content = result.call.completion.content
    cut_short = result.call.completion.finish_reason == "length"
    answers = read_answers(content, result.items_asked, labels, cut_short=cut_short)
    sure = result.call.item_confidence
    return [
        BatchItem(
            a.index,
            ItemStatus.ANSWERED if a.answer is not None else ItemStatus.MISSING,
            a.answer,
            result.model,
            result.node_id,
            sure.get(a.index + 1, result.call.confidence),
            a.problem,
        )
        for a in answers
    ]


async def collect_items(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Read the answers back; plan one retry per failed call's items, on another node."""
    items = batch_items(state)
    missing = [i for i in items if i.status is ItemStatus.MISSING]
    if state.get("items_retried") or not missing:
        return {"batch_items": items, "plan": []}
    ctx = runtime.context
    by_branch: dict[tuple[str | None, str | None], list[int]] = {}
    for item in missing:
        by_branch.setdefault((item.model, item.node_id), []).append(item.index)
    results = state.get("branch_results") or []
    branch = max((r.branch for r in results), default=-1) + 1
    plan: list[BranchTask] = []
    for (model, node_id), indices in by_branch.items():
        lease = await _elsewhere(ctx, state, model, node_id)
        if lease is None:
            continue
        prompt = item_prompt(
            state["prompt"],
            [(i, state["items"][i]) for i in indices],
            list(state.get("labels") or []),
        )
        plan.append(branch_task(lease, branch, prompt, state, indices[0], len(indices), indices))
        branch += 1
    return {"batch_items": items, "plan": plan, "items_retried": True}


async def _elsewhere(
    ctx: RouterContext, state: RouterState, model: str | None, node_id: str | None
) -> Lease | None:
    """A reservation for the retry: another node first, the same one if none has room."""
    routing = state["routing"]
    models = [model] if state.get("models") and model else list(routing.candidates)
    job_id, priority = reservations(state), routing.priority
    avoid = frozenset({node_id}) if node_id else frozenset()
    lease = await ctx.scheduler.reserve(job_id, models, priority=priority, exclude_nodes=avoid)
    return lease or await ctx.scheduler.reserve(job_id, models, priority=priority)
