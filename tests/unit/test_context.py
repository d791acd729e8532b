"""The graph's context: live parts hidden from its JSON schema, two knobs a run may set."""

from __future__ import annotations

import pytest

from app.studio import StudioContext, make_graph, process_runtime
from graph.builder import build_graph


@pytest.mark.parametrize("graph", [build_graph().compile(), make_graph()], ids=["core", "studio"])
def test_the_context_schema_shows_the_knobs_alone(graph: object) -> None:
    schema = graph.get_context_jsonschema()  # type: ignore[attr-defined]
    assert set(schema["properties"]) == {"enable_parallel", "max_parallel_jobs"}


def test_studio_context_defaults_to_the_process_runtime(clean_env: pytest.MonkeyPatch) -> None:
    process_runtime.cache_clear()
    context = StudioContext(max_parallel_jobs=2)
    runtime = process_runtime()
    assert context.router is runtime.router and context.scheduler is runtime.scheduler
    assert (context.enable_parallel, context.max_parallel_jobs) == (True, 2)
    process_runtime.cache_clear()
