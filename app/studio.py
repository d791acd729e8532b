"""The graph as LangGraph Studio opens it, through `langgraph.json`.

`langgraph dev` brings no runtime objects to a run, so Studio's graph takes a context type
whose parts default to a runtime built once from the process settings (environment, default
config files). Servers and tests compile their own graph and pass their own context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic.json_schema import SkipJsonSchema

from app.runtime import RouterRuntime, build_runtime
from cluster.cache import ResponseCache
from cluster.merger import MergerAgent
from cluster.pool import LLMPool
from cluster.scheduler import JobScheduler
from graph.builder import build_graph
from graph.context import RouterContext
from routing.router import LLMRouter


@cache
def process_runtime() -> RouterRuntime:
    """The runtime every Studio run shares, built on first use."""
    return build_runtime()


def _of_runtime(name: str) -> Callable[[], Any]:
    """A default factory: the process runtime's context's `name`."""
    return lambda: getattr(process_runtime().context, name)


@dataclass(frozen=True, kw_only=True)
class StudioContext(RouterContext):
    """RouterContext whose parts default to the process runtime's."""

    router: SkipJsonSchema[LLMRouter] = field(default_factory=_of_runtime("router"))
    scheduler: SkipJsonSchema[JobScheduler] = field(default_factory=_of_runtime("scheduler"))
    pool: SkipJsonSchema[LLMPool] = field(default_factory=_of_runtime("pool"))
    merger: SkipJsonSchema[MergerAgent] = field(default_factory=_of_runtime("merger"))
    cache: SkipJsonSchema[ResponseCache] = field(default_factory=_of_runtime("cache"))
    enable_parallel: bool = field(default_factory=_of_runtime("enable_parallel"))
    max_parallel_jobs: int = field(default_factory=_of_runtime("max_parallel_jobs"))


def make_graph() -> CompiledStateGraph[Any, RouterContext, Any, Any]:
    """The compiled routing graph, runnable with an empty context (`context={}`), as
    `langgraph dev` runs it."""
    return build_graph(context_schema=StudioContext).compile()
