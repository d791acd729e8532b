"""Health and load of every model server: `/health`, `/v1/models` and vLLM's `/metrics`."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

import httpx

from cluster.config import ClusterConfig
from cluster.connections import node_limits
from cluster.registry import NodeRegistry
from cluster.supervise import supervise
from cluster.vllm_metrics import VllmLoad, parse_vllm_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Server:
    """One OpenAI-compatible server and the models it should serve."""

    node_id: str
    root: str
    served: dict[str, str]
    """Router model name -> served model name."""


def servers_of(cluster: ClusterConfig) -> list[Server]:
    """The distinct servers behind the deployments (a base_url minus its `/v1`)."""
    grouped: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for node in cluster.nodes:
        for model, dep in node.models.items():
            base = ClusterConfig.base_url(node, model, dep).rstrip("/")
            root = base[: -len("/v1")] if base.endswith("/v1") else base
            grouped[(node.id, root)][model] = dep.served_name or model
    return [Server(node_id, root, served) for (node_id, root), served in grouped.items()]


@dataclass(frozen=True)
class ServerReport:
    """What one probe of one server found."""

    server: Server
    down: set[str]
    load: VllmLoad | None
    error: str | None


class HealthProber:
    """Probes every server every `interval_s`; the health board, node status and load follow
    the answers."""

    def __init__(
        self,
        cluster: ClusterConfig,
        registry: NodeRegistry,
        *,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        self._servers = servers_of(cluster)
        self._registry = registry
        self.interval_s = interval_s
        self._client = httpx.AsyncClient(timeout=timeout_s, limits=node_limits())
        self._task: asyncio.Task[None] | None = None

    async def _probe(self, server: Server) -> ServerReport:
        try:
            health = await self._client.get(f"{server.root}/health")
            health.raise_for_status()
            listed = await self._client.get(f"{server.root}/v1/models")
            listed.raise_for_status()
            ids = {m["id"] for m in listed.json().get("data", [])}
            down = {model for model, served in server.served.items() if served not in ids}
            load: VllmLoad | None = None
            metrics = await self._client.get(f"{server.root}/metrics")
            if metrics.status_code == 200:
                load = parse_vllm_metrics(metrics.text)
            return ServerReport(server, down, load, None)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return ServerReport(server, set(server.served), None, f"{type(exc).__name__}: {exc}")

    async def probe_once(self) -> list[ServerReport]:
        """Probe every server once and apply the results."""
        reports = await asyncio.gather(*(self._probe(s) for s in self._servers))
        by_node: dict[str, list[ServerReport]] = defaultdict(list)
        for report in reports:
            by_node[report.server.node_id].append(report)
            for model in report.server.served:
                self._registry.health.record_probe(
                    report.server.node_id, model, up=model not in report.down, error=report.error
                )
        for node_id, node_reports in by_node.items():
            down = set().union(*(r.down for r in node_reports))
            loads = [r.load for r in node_reports if r.load is not None]
            load = None
            if len(loads) == len(node_reports):
                load = loads[0]
                for extra in loads[1:]:
                    load = load.plus(extra)
            before = self._registry.get(node_id).status
            node = self._registry.record_probe(node_id, down_models=down, load=load)
            if node.status is not before:
                log.warning(
                    "node %s is now %s (models down: %s)",
                    node_id,
                    node.status.value,
                    ", ".join(sorted(down)) or "none",
                )
        return list(reports)

    async def start(self, telemetry_max_age_s: float) -> None:
        """First probe now, then every interval; stale telemetry fails closed from here on."""
        self._registry.telemetry_max_age_s = telemetry_max_age_s
        await self.probe_once()
        self._task = asyncio.create_task(
            supervise("health prober", self.probe_once, self.interval_s), name="health prober"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()
