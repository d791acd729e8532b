"""validate: check an answer whose form a tool can verify; a failure goes back to the same
model once, with the tool's error, for a corrected answer."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from langgraph.runtime import Runtime

from graph.context import RouterContext
from graph.records import BranchResult, Validation, ValidationStatus
from graph.state import BranchTask, RouterState, planned_mode, reservations
from nodes.schedule import branch_task
from policies.types import ExecutionMode
from policies.validators import CheckOptions, Validator, Verdict, asked_for, checks, pick, validator

#: Said of a rule written under a repair grammar: it compiles, but says less than a rule
#: of the model's own could.
HELD_TO_GRAMMAR = "written under the repair grammar: plain patterns, any or all of them"


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
    if latest.call is None or latest.call.completion.tool_calls:
        return {"plan": []}  # merge reports a failed call; a tool call is for the caller
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
        verdict = Verdict(wanted, False, missing(checker))
        fix = f"The answer above holds no {checker.noun}. Reply with the {checker.noun} only."
    else:
        return {"plan": []}
    previous = state.get("validation")
    counted = runtime.context.metrics.validations
    if verdict.ok:
        status = ValidationStatus.PASSED if previous is None else ValidationStatus.REPAIRED
        counted.labels(verdict.kind, status.value).inc()
        first_error = None if previous is None else previous.error
        record = _record(verdict, status, first_error, len(results))
        if first_error == missing(checker) and _held(state, checker, True)[0] is not None:
            record = dataclasses.replace(record, warnings=[*record.warnings, HELD_TO_GRAMMAR])
        return {"plan": [], "validation": record}
    counted.labels(verdict.kind, ValidationStatus.FAILED.value).inc()
    failed = _record(verdict, ValidationStatus.FAILED, verdict.error, len(results))
    if previous is not None or not state.get("repair", True):
        return {"plan": [], "validation": failed}
    repair = await _repair_task(
        runtime.context, state, latest, checker, fix, found is None, len(results)
    )
    return {"plan": [repair] if repair is not None else [], "validation": failed}


def missing(checker: Validator) -> str:
    """The error of an answer that holds none of what was asked for."""
    return f"the answer holds no {checker.noun}"


def _record(
    verdict: Verdict, status: ValidationStatus, error: str | None, attempts: int
) -> Validation:
    return Validation(
        verdict.kind, status, error, attempts, list(verdict.warnings), dict(verdict.conversions)
    )


def _held(
    state: RouterState, checker: Validator, absent: bool
) -> tuple[str | None, dict[str, Any] | None]:
    """The grammar and the response format a repair is held to, each None when not.

    A grammar narrows what the answer can say, so it holds only a repair of an answer that
    had none of the artifact; a response format fixes the syntax only. Neither overrides
    the request's own response format or tools: vLLM takes one constraint at a time.
    """
    params = state.get("parameters") or {}
    constraint = checker.constraint(check_options(state))
    if constraint is None or any(k in params for k in ("response_format", "tools", "tool_choice")):
        return None, None
    return (constraint.grammar if absent else None), constraint.response_format


async def _repair_task(
    ctx: RouterContext,
    state: RouterState,
    latest: BranchResult,
    checker: Validator,
    fix: str,
    absent: bool,
    branch: int,
) -> BranchTask | None:
    """The same model, asked to correct its answer, on its node when that has room; held to
    the format where vLLM can hold it, as the repair is the last try."""
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
    grammar, response_format = _held(state, checker, absent)
    if response_format is not None:
        task["parameters"] = {**task["parameters"], "response_format": response_format}
    if grammar is not None:
        # max_tokens is the caller's budget and holds (the grammar's sentences are bounded,
        # so without it the repair still ends); a stop string would cut every one of them
        # short of compiling ("}" ends each).
        task["grammar"] = grammar
        task["parameters"] = {k: v for k, v in task["parameters"].items() if k != "stop"}
    task["messages"] = [
        *asked,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": fix},
    ]
    return task
