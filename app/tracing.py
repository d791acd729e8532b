"""OpenTelemetry: a tracer exporting over OTLP/HTTP, only when an endpoint is configured."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def otlp_provider(endpoint: str, replica: str) -> TracerProvider:
    """Spans batched to `endpoint` (an OTLP/HTTP collector's base URL), named for the replica."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "gb10-router", "service.instance.id": replica})
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
