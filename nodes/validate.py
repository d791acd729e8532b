"""validate: check an answer whose form a tool can verify; a failure goes back to the same
model once, with the tool's error, for a corrected answer."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from graph.context import RouterContext
from graph.records import BranchResult, Validation, ValidationStatus
from graph.state import BranchTask, RouterState, planned_mode, reservations
from nodes.schedule import branch_task
from policies.types import ExecutionMode
from policies.validators import CheckOptions, Validator, Verdict, asked_for, checks, pick, validator


def check_options(state: RouterState) -> CheckOptions:
    """What the request asked of the output: a Sigma target, a JSON schema."""
    response_format = (state.get("parameters") or {}).get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    return CheckOptions(target=state.get("target"), schema=schema)


def validates(state: RouterState) -> bool:
    """Whether a single call's answer is checked: its task type's output has a checkable
    form, or the caller gave a schema."""
    routing = state.get("routing")
    return (
        routing is not None
        and planned_mode(state) is ExecutionMode.SINGLE
        and checks(routing.task_type, check_options(state))
    )


async def validate(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Check the latest answer; plan the one repair call when it fails."""
    results = [r for r in state.get("branch_results") or [] if r.step == 0]
    latest = results[-1]
    if latest.call is None:
        return {"plan": []}  # merge reports the failed call
    options = check_options(state)
    task_type = state["routing"].task_type
    wanted = asked_for(task_type, state["prompt"], options)
    found = pick(task_type, latest.call.completion.content, options, wanted)
    if found is not None:
        checker, artifact = found
        # Compiling or converting takes milliseconds: off the event loop.
        verdict = await asyncio.to_thread(checker.check, artifact, options)
        fix = (
            f"The {checker.noun} above fails its check: {verdict.error}. "
            f"Reply with the corrected {checker.noun} only."
        )
    elif wanted is not None:
        checker = validator(wanted)
        verdict = Verdict(wanted, False, f"the answer holds no {checker.noun}")
        fix = f"The answer above holds no {checker.noun}. Reply with the {checker.noun} only."
    else:
        return {"plan": []}
    previous = state.get("validation")
    counted = runtime.context.metrics.validations
    if verdict.ok:
        status = ValidationStatus.PASSED if previous is None else ValidationStatus.REPAIRED
        counted.labels(verdict.kind, status.value).inc()
        first_error = None if previous is None else previous.error
        return {"plan": [], "validation": _record(verdict, status, first_error, len(results))}
    counted.labels(verdict.kind, ValidationStatus.FAILED.value).inc()
    failed = _record(verdict, ValidationStatus.FAILED, verdict.error, len(results))
    if previous is not None or not state.get("repair", True):
        return {"plan": [], "validation": failed}
    repair = await _repair_task(runtime.context, state, latest, checker, fix, len(results))
    return {"plan": [repair] if repair is not None else [], "validation": failed}


def _record(
    verdict: Verdict, status: ValidationStatus, error: str | None, attempts: int
) -> Validation:
    return Validation(
        verdict.kind, status, error, attempts, list(verdict.warnings), dict(verdict.conversions)
    )


async def _repair_task(
    ctx: RouterContext,
    state: RouterState,
    latest: BranchResult,
    checker: Validator,
    fix: str,
    branch: int,
) -> BranchTask | None:
    """The same model, asked to correct its answer, on its node when that has room; held to
    the format's grammar where vLLM has one, as the repair is the last try."""
    assert latest.call is not None, "only an answer is repaired"
    answer = latest.call.completion.content
    job_id, priority = reservations(state), state["routing"].priority
    lease = await ctx.scheduler.reserve(
        job_id, [latest.model], priority=priority, node_id=latest.node_id
    ) or await ctx.scheduler.reserve(job_id, [latest.model], priority=priority)
    if lease is None:
        return None
    asked = list(state.get("messages") or []) or [{"role": "user", "content": state["prompt"]}]
    task = branch_task(lease, branch, state["prompt"], state, None, 0, [])
    constraint = checker.constraint(check_options(state))
    if constraint is not None:
        task["parameters"] = {**task["parameters"], **constraint}
    task["messages"] = [
        *asked,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": fix},
    ]
    return task
