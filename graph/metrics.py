"""What the graph's nodes measure for Prometheus: classification, queue waits, model calls,
validation and batch items."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

#: Seconds, from a cached answer's millisecond to a long generation on a CPU node.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class RunMetrics:
    """The graph's histograms and counters, in `registry` (a fresh one when none is given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.classification_seconds = Histogram(
            "gb10_classification_duration_seconds",
            "Time to decide a request's task type and model.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.classifications = Counter(
            "gb10_classifications",
            "Routing decisions, by the classifier layer that decided and the task type.",
            ["layer", "task_type"],
            registry=r,
        )
        self.classification_confidence = Histogram(
            "gb10_classification_confidence",
            "Confidence of routing decisions (0-1).",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "gb10_queue_wait_seconds",
            "Time a job waited for capacity before its calls were placed.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_call_seconds = Histogram(
            "gb10_model_call_duration_seconds",
            "Time of one model call, by model and node (cached answers excluded).",
            ["model", "node"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "gb10_cache_hits", "Model calls answered from the response cache.", registry=r
        )
        self.backend_errors = Counter(
            "gb10_backend_errors",
            "Model calls that failed, by model, node and error code.",
            ["model", "node", "code"],
            registry=r,
        )
        self.validations = Counter(
            "gb10_validations",
            "Answers checked by their format's tool, by kind and outcome "
            "(passed, failed, or repaired for a second answer that passed).",
            ["kind", "status"],
            registry=r,
        )
        self.batch_items = Counter(
            "gb10_batch_items",
            "Batch items answered, by status (answered, retried, missing).",
            ["status"],
            registry=r,
        )
