"""classify: decide the task type and model of the request, or of the chain's next operation."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from cluster.errors import InvalidRequest
from cluster.settings import Settings
from graph.context import RouterContext
from graph.state import RouterState
from policies.modes import choose_mode
from policies.types import ExecutionMode


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex[:16]}"


def check_limits(settings: Settings, prompt: str, items: list[str]) -> None:
    """InvalidRequest when the prompt or the batch is over the configured limits."""
    if not prompt.strip():
        raise InvalidRequest("prompt is empty")
    if len(prompt) > settings.max_prompt_chars:
        raise InvalidRequest(
            f"prompt: {len(prompt)} characters, over the limit of {settings.max_prompt_chars}"
        )
    if len(items) > settings.max_items:
        raise InvalidRequest(f"items: {len(items)} items, over the limit of {settings.max_items}")


def chain_prompt(state: RouterState, index: int) -> str:
    """The step's prompt: the request, the operation, and every earlier step's output."""
    operations = state.get("operations") or []
    parts = [state["prompt"], f"\nStep {index + 1} of {len(operations)}: {operations[index]}."]
    for step in state.get("chain") or []:
        parts.append(
            f"\nOutput of step {step['step'] + 1} ({step['operation']}):\n{step['output']}"
        )
    return "\n".join(parts)


async def classify(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Route the request; in a chain, route the current operation by its task type."""
    ctx = runtime.context
    update: dict[str, Any] = {"job_id": state.get("job_id") or new_job_id(), "status": "routed"}
    prompt = state.get("prompt", "")
    if "planned_mode" not in state:
        check_limits(ctx.settings, prompt, list(state.get("items") or []))
        mode = choose_mode(
            requires_parallel=bool(state.get("requires_parallel")),
            requires_chaining=bool(state.get("requires_chaining")),
            operations=list(state.get("operations") or []),
            items=list(state.get("items") or []),
            models=list(state.get("models") or []),
            parallel_enabled=ctx.settings.llm_enable_parallel,
        )
        if mode is ExecutionMode.CHAINED and not state.get("operations"):
            raise InvalidRequest("requires_chaining needs a non-empty operations list")
        update["planned_mode"] = mode.value
    else:
        mode = ExecutionMode.parse(state["planned_mode"])

    if mode is ExecutionMode.CHAINED:
        index = state.get("chain_index", 0)
        operation = state["operations"][index]
        try:
            task_type = ctx.policy.operation_task_type(operation)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        decision = ctx.router.decide(prompt, task_type=task_type, priority=state.get("priority"))
        routing = decision.to_dict()
        routing["reasons"] = [f"operation {operation!r} -> {task_type.value}"]
        routing.update(operation=operation, step=index, layer="operation")
        update["routing"] = routing
        return update

    decision = await ctx.router.adecide(
        prompt,
        list(state.get("task_hints") or []),
        task_type=state.get("task_type"),
        model=state.get("model"),
        priority=state.get("priority"),
    )
    update["routing"] = decision.to_dict()
    return update
