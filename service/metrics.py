"""`GET /metrics`: the router's Prometheus metrics.

Requests are counted from their audit records, so every entry point counts alike; the graph's
nodes time classification, queue waits and model calls (`graph.metrics`); node and queue
gauges are read from the live state at each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from cluster.registry import NodeRegistry
from cluster.scheduler import JobScheduler
from graph.metrics import LATENCY_BUCKETS
from policies.types import NodeStatus
from service.audit import AuditRecord

CONTENT_TYPE = CONTENT_TYPE_LATEST


class RequestMetrics:
    """Requests by entry point, task type, model, node and outcome, with their duration."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gb10_requests",
            "LLM requests by entry point, task type, model, node and outcome (audit status).",
            ["entry_point", "task_type", "model", "node", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "gb10_request_duration_seconds",
            "Time from admission to the outcome, by entry point.",
            ["entry_point"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "gb10_request_errors",
            "Requests that ended in an error, by entry point and error code "
            "(rate_limited, backend_unavailable, ...).",
            ["entry_point", "code"],
            registry=registry,
        )

    def observe(self, record: AuditRecord) -> None:
        """Count one request from its audit record (when it ends, not when it is accepted)."""
        if record.status == "accepted":
            return
        entry_point = record.entry_point or "unknown"
        self.requests.labels(
            entry_point,
            record.task_type or "",
            record.model or "",
            record.node or "",
            record.status,
        ).inc()
        if record.status != "refused":
            self.request_seconds.labels(entry_point).observe(record.latency_ms / 1000)
        if record.error_code:
            self.errors.labels(entry_point, record.error_code).inc()


class LiveState(Collector):
    """Queue depth, reservations and each node's last-seen telemetry, read at scrape time."""

    def __init__(self, registry: NodeRegistry, scheduler: JobScheduler) -> None:
        self._registry = registry
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily("gb10_queue_depth", "Jobs waiting for capacity.")
        queue.add_metric([], self._scheduler.queue_depth)
        yield queue
        gauges = {
            "in_flight": ("gb10_node_reservations", "Model calls holding a reservation."),
            "reserved": ("gb10_node_vram_reserved_gb", "VRAM reserved by the router's jobs."),
            "used": ("gb10_node_vram_used_gb", "VRAM in use: reported plus reserved."),
            "total": ("gb10_node_vram_total_gb", "The node's VRAM."),
            "util": ("gb10_node_compute_utilization", "GPU utilisation as last seen (0-1)."),
            "kv": ("gb10_node_kv_cache_usage", "vLLM KV-cache use as last seen (0-1)."),
            "waiting": ("gb10_node_vllm_requests_waiting", "vLLM's own queue as last seen."),
            "up": ("gb10_node_available", "1 when the node takes new jobs."),
        }
        families = {
            key: GaugeMetricFamily(name, text, labels=["node"])
            for key, (name, text) in gauges.items()
        }
        for node in self._registry.all():
            values = {
                "in_flight": node.in_flight,
                "reserved": node.reserved_gb,
                "used": node.vram_used_gb,
                "total": node.vram_total_gb,
                "util": node.compute_utilization,
                "kv": node.vllm_load.kv_cache_usage,
                "waiting": node.vllm_load.waiting,
                "up": float(node.status is NodeStatus.AVAILABLE),
            }
            for key, value in values.items():
                families[key].add_metric([node.config.id], value)
        yield from families.values()


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus's text format."""
    return generate_latest(registry)
