"""OpenTelemetry spans for the graph's nodes and model calls, when the run's context holds a
tracer (`OTEL_EXPORTER_OTLP_ENDPOINT` set); without one a node runs as it is."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from langgraph.runtime import Runtime
from opentelemetry.trace import Span, Tracer

from graph.context import RouterContext

S = TypeVar("S", contravariant=True)


class Node(Protocol[S]):
    """A graph node: the state (or its own input), and the run's runtime."""

    def __call__(self, state: S, runtime: Runtime[RouterContext]) -> Awaitable[dict[str, Any]]: ...


def traced(name: str, node: Node[S]) -> Node[S]:
    """`node`, in a span named `gb10.<name>` when the context has a tracer."""

    @functools.wraps(node)
    async def run(state: S, runtime: Runtime[RouterContext]) -> dict[str, Any]:
        tracer = runtime.context.tracer
        if tracer is None:
            return await node(state, runtime)
        with tracer.start_as_current_span(f"gb10.{name}") as span:
            job_id = state.get("job_id") if isinstance(state, dict) else None
            if job_id:
                span.set_attribute("gb10.job_id", str(job_id))
            return await node(state, runtime)

    return run


@contextmanager
def span(tracer: Tracer | None, name: str, **attributes: str) -> Iterator[Span | None]:
    """A child span with `attributes`, or nothing when there is no tracer."""
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
