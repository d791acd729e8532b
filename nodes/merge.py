"""merge: turn the calls' results into the job's result."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Send

from cluster.completion import CallResult, Completion
from cluster.merger import candidate
from graph.context import RouterContext
from graph.records import BranchResult, JobResult, JobStatus
from graph.state import RouterState, planned_mode, reservations
from policies.errors import ErrorInfo, error_from_info
from policies.merge import MergeReport, expectation_for
from policies.modes import default_merge_strategy
from policies.types import ExecutionMode, MergeStrategy
from policies.usage import Usage


def _merged(job_id: str, answer: str, calls: list[CallResult]) -> Completion:
    cut = [c for c in calls if c.completion.finish_reason == "length"]
    return Completion(
        id=job_id,
        model="+".join(dict.fromkeys(c.model for c in calls)),
        content=answer,
        # A merged answer that holds one cut off at its token limit is cut short too.
        finish_reason="length" if any(c.completion.content in answer for c in cut) else "stop",
        usage=functools.reduce(lambda a, b: a + b, (c.completion.usage for c in calls), Usage()),
    )


async def merge(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """One answer from one call, a chain's last step, or several calls merged by strategy."""
    done: dict[str, Any] = {"status": JobStatus.COMPLETED}
    if planned_mode(state) is ExecutionMode.CHAINED:
        last = [r.call for r in state["branch_results"] if r.call is not None][-1]
        return {**done, "result": JobResult(call=last, chain=list(state.get("chain") or []))}

    step = [r for r in state["branch_results"] if r.step == 0]
    step.sort(key=lambda r: (r.first_item if r.first_item is not None else 0, r.branch))
    ok = [r for r in step if r.call is not None]
    failed = [r for r in step if r.call is None]
    # A request the router should have refused fails whole, not as a partial answer.
    invalid = [r.error for r in failed if r.error is not None and r.error.http_status == 422]
    if invalid:
        raise error_from_info(invalid[0])
    if not ok:
        raise error_from_info(
            failed[0].error or ErrorInfo("router_error", "every call failed", 500)
        )
    items = list(state.get("batch_items") or [])
    for item in items:
        runtime.context.metrics.batch_items.labels(item.status.value).inc()
    validation = state.get("validation")
    if len(step) == 1 or (validation is not None and planned_mode(state) is ExecutionMode.SINGLE):
        # A repaired answer is the later call's.
        answer = ok[-1].call
        return {**done, "result": JobResult(call=answer, items=items, validation=validation)}

    calls = [r.call for r in ok if r.call is not None]
    candidates = [candidate(c) for c in calls]
    strategy = MergeStrategy.parse(
        state.get("merge_strategy")
        or default_merge_strategy(state["routing"].task_type, bool(state.get("items")))
    )
    merged = await runtime.context.merger.amerge(
        candidates,
        strategy,
        job_id=reservations(state),
        priority=state["routing"].priority,
        question=state["prompt"],
        expect=dataclasses.replace(
            expectation_for(state["prompt"]), labels=tuple(state.get("labels") or ())
        ),
    )
    outcome = merged.outcome
    report = MergeReport.of(outcome, candidates)
    if failed:
        report = dataclasses.replace(
            report, notes=[*report.notes, _failures_note(failed, len(step))]
        )
    result = JobResult(
        merged=_merged(state["job_id"], outcome.answer, calls),
        merge=report,
        branches=step,
        items=items,
    )
    return {**done, "result": result, "usage": merged.usage}


def _failures_note(failed: list[BranchResult], calls: int) -> str:
    return f"{len(failed)} of {calls} calls failed: " + "; ".join(
        f"{r.label}: {r.error.code if r.error else None}" for r in failed
    )


def planned_calls_or_merge(state: RouterState) -> list[Send] | Literal["merge"]:
    """The calls a node planned after the step's answers (a batch's retries, a repair), or
    merge when it planned none."""
    plan = state.get("plan") or []
    return [Send("call_model", task) for task in plan] if plan else "merge"
