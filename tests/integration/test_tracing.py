"""OpenTelemetry: one span per graph node that ran and one per model call, when on; none
and no tracer when off."""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.runtime import RouterRuntime, build_runtime
from graph.builder import build_graph
from tests.conftest import FakeCluster


async def test_each_graph_node_and_model_call_gets_a_span(runtime: RouterRuntime) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    context = dataclasses.replace(runtime.context, tracer=provider.get_tracer("test"))
    graph = build_graph().compile()

    await graph.ainvoke({"prompt": "Is this login malicious?"}, context=context)
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    nodes = ["classify", "schedule", "call_model", "merge"]
    assert sorted(names) == sorted([f"gb10.{n}" for n in nodes] + ["gb10.model_call"])
    by_name = {s.name: s for s in spans}
    call = by_name["gb10.model_call"]
    assert (
        call.parent is not None
        and call.parent.span_id == by_name["gb10.call_model"].context.span_id
    )
    assert call.attributes is not None and call.attributes["gb10.node"] == "gb10-node-2"
    assert by_name["gb10.merge"].attributes["gb10.job_id"]  # type: ignore[index]

    exporter.clear()
    await graph.ainvoke(
        {"prompt": "Check these", "items": ["a", "b", "c", "d"], "task_type": "classification"},
        context=context,
    )
    fanned = [s.name for s in exporter.get_finished_spans()]
    calls = fanned.count("gb10.call_model")
    assert calls >= 2 and fanned.count("gb10.model_call") == calls


def test_tracing_is_off_unless_an_endpoint_is_set(fake_cluster: FakeCluster) -> None:
    assert build_runtime(fake_cluster.settings()).context.tracer is None
    on = build_runtime(fake_cluster.settings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318"))
    assert on.context.tracer is not None and on.tracing is not None
    on.tracing.shutdown()
