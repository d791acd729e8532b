"""chain_step: after a step's calls, record a chain step and pick what runs next."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from graph.context import RouterContext
from graph.records import ChainStep
from graph.state import RouterState, planned_mode
from policies.errors import ErrorInfo, error_from_info
from policies.types import ExecutionMode


def chain_prompt(state: RouterState, index: int) -> str:
    """The step's prompt: the request, the operation, and every earlier step's output."""
    operations = state.get("operations") or []
    parts = [state["prompt"], f"\nStep {index + 1} of {len(operations)}: {operations[index]}."]
    for step in state.get("chain") or []:
        parts.append(f"\nOutput of step {step.step + 1} ({step.operation}):\n{step.output}")
    return "\n".join(parts)


async def chain_step(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """In a chain, keep the step's output as context for the next; a failed step ends the chain."""
    if planned_mode(state) is not ExecutionMode.CHAINED:
        return {}
    index = state.get("chain_index", 0)
    done = [r for r in state.get("branch_results") or [] if r.step == index]
    outcome = done[-1]
    if outcome.call is None:
        raise error_from_info(outcome.error or ErrorInfo("router_error", "chain step failed", 500))
    routing = state["routing"]
    step = ChainStep(
        step=index,
        operation=routing.operation or "",
        task_type=routing.task_type,
        model=outcome.model,
        node_id=outcome.node_id,
        output=outcome.call.completion.content,
        latency_ms=outcome.call.latency_ms,
        scheduling=state.get("scheduling"),
    )
    return {"chain": [*(state.get("chain") or []), step], "chain_index": index + 1}


def after_step(state: RouterState) -> Literal["next_operation", "merge"]:
    """Back to classification for the chain's next operation, else merge."""
    chained = planned_mode(state) is ExecutionMode.CHAINED
    if chained and state.get("chain_index", 0) < len(state.get("operations") or []):
        return "next_operation"
    return "merge"
