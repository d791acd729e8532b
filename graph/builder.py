"""The routing graph: classify → schedule → call models (four modes) → [read a batch's items
back, retrying what was skipped | check a rule or JSON answer, repairing it once] → merge."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graph.context import RouterContext
from graph.state import BranchTask, RouterInput, RouterOutput, RouterState
from graph.tracing import traced
from nodes.call_model import after_call, call_model
from nodes.chain_step import after_step, chain_step
from nodes.classify import classify
from nodes.collect_items import collect_items
from nodes.merge import merge, planned_calls_or_merge
from nodes.schedule import dispatch, schedule
from nodes.validate import validate
from nodes.wait_for_capacity import wait_for_capacity


def build_graph(
    context_schema: type[RouterContext] = RouterContext,
) -> StateGraph[RouterState, RouterContext, RouterInput, RouterOutput]:
    """The uncompiled graph; each user compiles its own (server, Studio, tests).

    `context_schema` may be a subclass whose fields have defaults, for hosts (Studio) that
    bring no context of their own.
    """
    g = StateGraph(
        RouterState,
        context_schema=context_schema,
        input_schema=RouterInput,
        output_schema=RouterOutput,
    )
    g.add_node("classify", traced("classify", classify))
    g.add_node("schedule", traced("schedule", schedule))
    g.add_node("wait_for_capacity", traced("wait_for_capacity", wait_for_capacity))
    g.add_node("call_model", traced("call_model", call_model), input_schema=BranchTask)
    g.add_node("chain_step", traced("chain_step", chain_step))
    g.add_node("collect_items", traced("collect_items", collect_items))
    g.add_node("validate", traced("validate", validate))
    g.add_node("merge", traced("merge", merge))

    g.add_edge(START, "classify")
    g.add_edge("classify", "schedule")
    g.add_conditional_edges("schedule", dispatch, ["call_model", "wait_for_capacity"])
    g.add_edge("wait_for_capacity", "schedule")
    g.add_conditional_edges(
        "call_model", after_call, ["chain_step", "collect_items", "validate", "merge"]
    )
    g.add_conditional_edges("validate", planned_calls_or_merge, ["call_model", "merge"])
    g.add_conditional_edges("collect_items", planned_calls_or_merge, ["call_model", "merge"])
    g.add_conditional_edges(
        "chain_step", after_step, {"next_operation": "classify", "merge": "merge"}
    )
    g.add_edge("merge", END)
    return g
