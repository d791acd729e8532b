"""vLLM's Prometheus `/metrics`: the gauges the scheduler uses."""

from __future__ import annotations

from dataclasses import dataclass

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = "vllm:kv_cache_usage_perc"


@dataclass(frozen=True)
class VllmLoad:
    """A server's load: requests running and waiting, KV-cache use 0-1."""

    running: float = 0.0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0

    def plus(self, other: VllmLoad) -> VllmLoad:
        """Two servers on one node: queues add up, the fuller KV cache counts."""
        return VllmLoad(
            self.running + other.running,
            self.waiting + other.waiting,
            max(self.kv_cache_usage, other.kv_cache_usage),
        )


def parse_vllm_metrics(text: str) -> VllmLoad:
    """Sum each gauge over its label sets (one per served model name); absent gauges read 0."""
    totals = {RUNNING: 0.0, WAITING: 0.0, KV_CACHE: 0.0}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        if name_end < 0:
            continue
        name = line[:name_end]
        if name not in totals:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        totals[name] = max(totals[name], value) if name == KV_CACHE else totals[name] + value
    return VllmLoad(totals[RUNNING], totals[WAITING], totals[KV_CACHE])
