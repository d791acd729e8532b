"""The graph as LangGraph Studio opens it, through `langgraph.json`.

`langgraph dev` runs graphs without a way to hand them a live runtime, so this entry point
builds one RouterRuntime from the process settings (environment, default config files) and
uses it as the context of every run that brings none. Servers and tests compile their own
graph and pass their own runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from cluster.runtime import RouterRuntime, build_runtime
from graph.builder import build_graph


def _with_default_context(
    runtime: RouterRuntime,
) -> type[CompiledStateGraph[Any, RouterRuntime, Any, Any]]:
    class StudioGraph(CompiledStateGraph[Any, RouterRuntime, Any, Any]):
        """The compiled graph, with `runtime` as context when a run brings none."""

        async def astream(
            self,
            input: Any,
            config: RunnableConfig | None = None,
            *,
            context: Any = None,
            **kwargs: Any,
        ) -> AsyncIterator[Any]:
            async for chunk in super().astream(input, config, context=context or runtime, **kwargs):
                yield chunk

        def get_context_jsonschema(self) -> dict[str, Any] | None:
            # The runtime is live objects, not something a Studio user edits.
            return None

    return StudioGraph


def make_graph() -> CompiledStateGraph[Any, RouterRuntime, Any, Any]:
    """The compiled routing graph with a runtime built from the process settings."""
    compiled = build_graph().compile()
    cls = _with_default_context(build_runtime())
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    return cls(**attrs)
