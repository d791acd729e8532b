"""Node state that outlives a router and is the same on every replica.

What an operator sets (a node drained: `offline`, or `busy`) and what a node agent reports
(VRAM, utilisation, GPU readings) is written to a store when it changes and read back at
start. On one machine the store is a file under the state directory and keeps the operator's
state; shared (Redis), it keeps the telemetry too, and every replica applies a change as soon
as the notice of it arrives, or at the next resync (every second) if the notice is lost.
Probes are each replica's own: they never write here, so they can never undo an operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Protocol

from cluster.events import RedisEvents
from cluster.registry import NodeRegistry, NodeState
from cluster.supervise import supervise
from policies.types import NodeStatus

log = logging.getLogger(__name__)

#: How often a replica reads every node's shared state again, whatever the notices said.
RESYNC_S = 1.0


class NodeStore(Protocol):
    """Where node state is kept between changes: each node's operator status and its last
    report, kept apart so that writing one never writes back a stale copy of the other."""

    async def load(self) -> dict[str, dict[str, Any]]:
        """Every node's saved fields, by node id: `operator_status`, and `report` if any."""
        ...

    async def save_status(self, node_id: str, status: str | None) -> None: ...

    async def save_report(self, node_id: str, report: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


def report_of(node: NodeState) -> dict[str, Any]:
    """A node's last report, as saved."""
    return {
        "reported_used_gb": node.reported_used_gb,
        "compute_utilization": node.compute_utilization,
        "reported_at": node.reported_at,
        "telemetry_at": node.telemetry_at,
        "extra": node.extra,
    }


def apply_fields(registry: NodeRegistry, node_id: str, fields: dict[str, Any]) -> bool:
    """Apply saved fields to the live node; whether anything changed. A report no newer than
    the one this replica has is left out."""
    node = registry.get(node_id)
    changed = False
    raw = fields.get("operator_status")
    status = None if raw is None else NodeStatus.parse(raw)
    if status is not node.operator_status:
        node.operator_status = status
        changed = True
    report = fields.get("report") or {}
    reported_at = report.get("reported_at")
    if reported_at is not None and float(reported_at) > (node.reported_at or 0.0):
        node.reported_used_gb = float(report["reported_used_gb"])
        node.compute_utilization = float(report["compute_utilization"])
        node.extra.update(report.get("extra") or {})
        node.reported_at = float(reported_at)
        changed = True
    telemetry_at = report.get("telemetry_at")
    if telemetry_at is not None and float(telemetry_at) > (node.telemetry_at or 0.0):
        node.telemetry_at = float(telemetry_at)
        changed = True
    return changed


class FileNodeStore:
    """One router: the operator's status per node, in a JSON file (reports are not kept: a
    node agent sends a fresh one every few seconds)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def load(self) -> dict[str, dict[str, Any]]:
        try:
            saved: dict[str, dict[str, Any]] = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        return saved

    async def save_status(self, node_id: str, status: str | None) -> None:
        saved = await self.load()
        saved[node_id] = {"operator_status": status}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staged = self._path.with_suffix(".tmp")
        staged.write_text(json.dumps(saved, indent=1, sort_keys=True))
        staged.replace(self._path)  # whole or not at all, even if the router dies mid-write

    async def save_report(self, node_id: str, report: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisNodeStore:
    """Replicas: operator statuses in one Redis hash, reports in another, and a notice to
    the other replicas per change."""

    def __init__(self, url: str, prefix: str, events: RedisEvents) -> None:
        from cluster.cache import redis_client

        self._redis: Any = redis_client(url)
        self._statuses = f"{prefix}:node-status"
        self._reports = f"{prefix}:node-report"
        self.events = events

    async def load(self) -> dict[str, dict[str, Any]]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._statuses)
            pipe.hgetall(self._reports)
            statuses, reports = await pipe.execute()
        saved: dict[str, dict[str, Any]] = {}
        for raw_id, raw in statuses.items():
            saved.setdefault(raw_id.decode(), {})["operator_status"] = raw.decode() or None
        for raw_id, raw in reports.items():
            saved.setdefault(raw_id.decode(), {})["report"] = json.loads(raw)
        return saved

    async def save_status(self, node_id: str, status: str | None) -> None:
        await self._redis.hset(self._statuses, node_id, status or "")
        await self.events.publish("node", node_id)

    async def save_report(self, node_id: str, report: dict[str, Any]) -> None:
        await self._redis.hset(self._reports, node_id, json.dumps(report))
        await self.events.publish("node", node_id)

    async def close(self) -> None:
        await self._redis.aclose()


class NodeSync:
    """Keeps the registry and the node store in step."""

    def __init__(self, registry: NodeRegistry, store: NodeStore, *, shared: bool) -> None:
        self._registry = registry
        self._store = store
        self._shared = shared
        self._task: asyncio.Task[None] | None = None
        self._events: RedisEvents | None = getattr(store, "events", None)
        self._resyncing = asyncio.Lock()

    async def start(self) -> None:
        """Apply what was saved; shared, follow the other replicas' changes from now on."""
        await self.resync()
        if self._shared:
            if self._events is not None:
                self._events.on("node", lambda _: self._later_resync())
                await self._events.start()
            self._task = asyncio.create_task(
                # Backoff capped at the period: after an outage, within a second again.
                supervise("node state resync", self.resync, RESYNC_S, max_backoff_s=RESYNC_S),
                name="node state resync",
            )

    async def resync(self) -> None:
        """Apply every node's saved state (one resync at a time: an older read applied after
        a newer one would undo it until the next)."""
        async with self._resyncing:
            await self._resync()

    async def _resync(self) -> None:
        changed = False
        for node_id, fields in (await self._store.load()).items():
            try:
                changed |= apply_fields(self._registry, node_id, fields)
            except (KeyError, ValueError) as exc:
                # A node no longer in this config, or a state this version does not know.
                log.warning("saved state of node %s left out: %s", node_id, exc)
        if changed:
            self._registry.notify()

    def _later_resync(self) -> None:
        task = asyncio.get_running_loop().create_task(self.resync())
        task.add_done_callback(_log_failure)

    async def updated(self, node_id: str, *, status: bool, report: bool) -> None:
        """Save what a change made on this replica changed: the node's operator status, its
        report, or both."""
        node = self._registry.get(node_id)
        if status:
            operator = node.operator_status
            await self._store.save_status(node_id, None if operator is None else operator.value)
        if report:
            await self._store.save_report(node_id, report_of(node))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._events is not None:
            await self._events.close()
        await self._store.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("node state resync after a notice failed (the timer retries): %s", exc)
