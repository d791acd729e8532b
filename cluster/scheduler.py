"""GPU job scheduler: places jobs, reserves VRAM, and queues what does not fit."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster.config import ClusterConfig
from cluster.registry import NodeRegistry
from policies.errors import CapacityTimeout, NoCapableNode, QueueFull
from policies.placement import Limits, Placement, Weights, place_first_fit, why_unplaceable
from policies.queueing import effective_priority, queue_key
from policies.types import NodeStatus


@dataclass(frozen=True)
class NodeRef:
    """Where a call runs: node, model, the model's endpoint and the VRAM reserved."""

    node_id: str
    model: str
    endpoint: str
    vram_reserved_gb: float


@dataclass(frozen=True)
class Lease:
    """VRAM reserved on one node for one call of a job."""

    lease_id: str
    """Unique across processes: an id saved in a checkpoint never names another's lease."""
    job_id: str
    node_id: str
    model: str
    vram_gb: float
    reason: str


@dataclass(frozen=True)
class QueueEntry:
    """A job waiting for capacity, as the queue endpoints show it."""

    job_id: str
    priority: int
    effective_priority: float
    """Its priority after aging: lower runs sooner."""
    models: list[str]
    waiting_s: float


@dataclass(eq=False)
class _Waiter:
    priority: int
    seq: int
    job_id: str
    models: tuple[str, ...]
    vram_gb: float | None
    future: asyncio.Future[Lease]
    enqueued_at: float


class JobScheduler:
    """Reserves capacity on dispatch, releases it on finish, and serves waiters by priority.

    All state changes happen on one event loop without awaiting in between, so a placement
    and its reservation are atomic.
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        registry: NodeRegistry,
        *,
        default_timeout_s: float,
        limits: Limits | None = None,
        weights: Weights | None = None,
        aging_s: float = 30.0,
        max_queue: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or Limits()
        self.weights = weights or Weights()
        self.aging_s = aging_s
        self.max_queue = max_queue
        self._cluster = cluster
        self._registry = registry
        self._default_timeout_s = default_timeout_s
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._seq = itertools.count()
        self._queue: list[_Waiter] = []
        registry.on_change(self._dispatch)

    # -- capacity -----------------------------------------------------------------
    def job_vram(self, model: str, override: float | None = None) -> float:
        """VRAM one call of `model` reserves."""
        if override is not None:
            return float(override)
        return self._cluster.models[model].job_vram_gb

    def _check_models(self, models: Sequence[str]) -> None:
        for model in models:
            self._cluster.require_model(model)
        if not any(self._cluster.serving(m) for m in models):
            raise NoCapableNode(f"no node serves {', '.join(models)}")

    def serving_nodes(self, model: str) -> list[str]:
        """Ids of the nodes that load `model`, in config order."""
        return [node.id for node in self._cluster.serving(model)]

    def free_vram_gb(self, node_id: str) -> float:
        """VRAM on the node that neither telemetry nor a reservation has taken."""
        return self._registry.get(node_id).vram_available_gb

    def _placement(
        self,
        models: Sequence[str],
        vram_gb: float | None,
        priority: int,
        exclude: frozenset[str] = frozenset(),
    ) -> Placement | None:
        views = [v for v in self._registry.views() if v.node_id not in exclude]
        return place_first_fit(
            views,
            models,
            lambda model: self.job_vram(model, vram_gb),
            self.limits,
            self.weights,
            priority,
        )

    def _reserve(self, job_id: str, placement: Placement, vram_gb: float | None) -> Lease:
        gb = self.job_vram(placement.model, vram_gb)
        node = self._registry.get(placement.node_id)
        node.reserved_gb += gb
        node.in_flight += 1
        lease = Lease(
            uuid.uuid4().hex, job_id, placement.node_id, placement.model, gb, placement.reason
        )
        self._leases[lease.lease_id] = lease
        return lease

    def _ordered(self) -> list[_Waiter]:
        now = self._clock()
        return sorted(
            self._queue,
            key=lambda w: queue_key(w.priority, w.enqueued_at, w.seq, now, self.aging_s),
        )

    def _blocked_by_queue(self, models: Sequence[str], priority: int) -> bool:
        """A waiter at least as urgent (after aging) wants one of these models: do not jump it."""
        wanted = set(models)
        now = self._clock()
        return any(
            effective_priority(w.priority, now - w.enqueued_at, self.aging_s) <= priority
            and wanted & set(w.models)
            for w in self._queue
        )

    def try_acquire(
        self,
        job_id: str,
        models: Sequence[str],
        *,
        priority: int = 3,
        vram_gb: float | None = None,
        exclude_nodes: frozenset[str] = frozenset(),
        node_id: str | None = None,
    ) -> Lease | None:
        """Reserve on the best node for the first of `models` that fits now, or None."""
        self._check_models(models)
        if self._blocked_by_queue(models, priority):
            return None
        if node_id is not None:
            exclude_nodes = frozenset(n.config.id for n in self._registry.all()) - {node_id}
        placement = self._placement(models, vram_gb, priority, exclude_nodes)
        return None if placement is None else self._reserve(job_id, placement, vram_gb)

    async def acquire(
        self,
        job_id: str,
        models: Sequence[str],
        *,
        priority: int = 3,
        vram_gb: float | None = None,
        timeout_s: float | None = None,
    ) -> Lease:
        """Reserve now, or wait in the priority queue until capacity frees or the deadline."""
        lease = self.try_acquire(job_id, models, priority=priority, vram_gb=vram_gb)
        if lease is not None:
            return lease
        self._ensure_some_node_can_serve(models)
        if len(self._queue) >= self.max_queue:
            raise QueueFull(
                f"{len(self._queue)} jobs are already waiting (the bound); job {job_id} refused",
                retry_after_s=max(1.0, self.aging_s / 2),
            )
        loop = asyncio.get_running_loop()
        waiter = _Waiter(
            priority,
            next(self._seq),
            job_id,
            tuple(models),
            vram_gb,
            loop.create_future(),
            self._clock(),
        )
        self._queue.append(waiter)
        timeout = self._default_timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            self._abandon(waiter)
            views = self._registry.views()
            why = "; ".join(
                why_unplaceable(views, m, self.job_vram(m, vram_gb), self.limits, priority)
                for m in models
            )
            raise CapacityTimeout(
                f"job {job_id} waited {timeout:g}s for capacity for {', '.join(models)}: {why}",
                retry_after_s=timeout,
            ) from None
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise

    def _abandon(self, waiter: _Waiter) -> None:
        """Take a waiter out of the queue; capacity granted to it meanwhile goes back."""
        if waiter in self._queue:
            self._queue.remove(waiter)
        if waiter.future.done() and not waiter.future.cancelled():
            self.release(waiter.future.result())
        else:
            waiter.future.cancel()

    def _unservable(self, models: Sequence[str]) -> NoCapableNode | None:
        """Why no node could ever serve these models now (all offline, down or too small)."""
        health = self._registry.health
        for model in models:
            for config in self._cluster.serving(model):
                node = self._registry.get(config.id)
                if not health.is_served(config.id, model):
                    continue
                fits = self.job_vram(model) <= node.vram_total_gb - config.vram_used_gb
                if node.status is not NodeStatus.OFFLINE and fits:
                    return None
        return NoCapableNode(
            f"no node can serve {', '.join(models)}: every node serving it is offline, "
            "its model server is down, or it is too small"
        )

    def _ensure_some_node_can_serve(self, models: Sequence[str]) -> None:
        error = self._unservable(models)
        if error is not None:
            raise error

    def release(self, lease: Lease) -> None:
        """Give a lease's capacity back (idempotent) and dispatch waiters."""
        if self._leases.pop(lease.lease_id, None) is None:
            return
        node = self._registry.get(lease.node_id)
        node.reserved_gb = max(0.0, node.reserved_gb - lease.vram_gb)
        node.in_flight = max(0, node.in_flight - 1)
        self._dispatch()

    def holds(self, lease_id: str) -> bool:
        """Whether `lease_id` is a reservation this scheduler holds now."""
        return lease_id in self._leases

    def lease(self, lease_id: str | None) -> Lease | None:
        """The reservation of that id, if this scheduler holds it."""
        return None if lease_id is None else self._leases.get(lease_id)

    def release_lease(self, lease_id: str) -> None:
        """Release a lease by id (idempotent)."""
        lease = self._leases.get(lease_id)
        if lease is not None:
            self.release(lease)

    def release_job(self, job_id: str) -> int:
        """Release every lease a job still holds; returns how many."""
        leases = [lease for lease in self._leases.values() if lease.job_id == job_id]
        for lease in leases:
            self.release(lease)
        return len(leases)

    def _dispatch(self) -> None:
        """Grant capacity to waiters, most urgent first; those that do not fit keep waiting."""
        for waiter in self._ordered():
            if waiter.future.done():
                continue
            error = self._unservable(waiter.models)
            if error is not None:
                # Its nodes went offline while it waited: fail now rather than at the deadline.
                waiter.future.set_exception(error)
                self._queue.remove(waiter)
                continue
            placement = self._placement(waiter.models, waiter.vram_gb, waiter.priority)
            if placement is None:
                continue
            waiter.future.set_result(self._reserve(waiter.job_id, placement, waiter.vram_gb))
            self._queue.remove(waiter)

    # -- views ----------------------------------------------------------------------
    def leases(self) -> list[Lease]:
        return list(self._leases.values())

    def queue_snapshot(self) -> list[QueueEntry]:
        """Waiting jobs in dispatch order."""
        now = self._clock()
        return [
            QueueEntry(
                job_id=w.job_id,
                priority=w.priority,
                effective_priority=round(
                    effective_priority(w.priority, now - w.enqueued_at, self.aging_s), 3
                ),
                models=list(w.models),
                waiting_s=round(now - w.enqueued_at, 3),
            )
            for w in self._ordered()
        ]

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def node_ref(self, lease: Lease) -> NodeRef:
        """Where a lease runs."""
        node = self._cluster.node(lease.node_id)
        endpoint = ClusterConfig.base_url(node, lease.model, node.models[lease.model])
        return NodeRef(lease.node_id, lease.model, endpoint, lease.vram_gb)
