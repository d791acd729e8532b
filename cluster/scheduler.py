"""GPU job scheduler: places jobs, reserves VRAM, and queues what does not fit."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster.config import ClusterConfig
from cluster.ledger import Claim, Ledger, LocalLedger, WaitingJob
from cluster.registry import NodeRegistry
from cluster.supervise import supervise
from policies.errors import CapacityTimeout, NoCapableNode, QueueFull
from policies.placement import (
    Limits,
    Placement,
    Weights,
    job_cap,
    place_first_fit,
    why_unplaceable,
)
from policies.queueing import effective_priority, queue_key
from policies.types import NodeStatus

log = logging.getLogger(__name__)


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


#: Placements a shared ledger may refuse in a row (another replica was faster) before a
#: reservation gives up for now.
CLAIM_ATTEMPTS = 3


@dataclass(eq=False)
class _Waiter:
    priority: int
    seq: int
    job_id: str
    models: tuple[str, ...]
    vram_gb: float | None
    future: asyncio.Future[Lease]
    enqueued_at: float
    waiter_id: str = ""
    """Its id in a shared queue."""
    wall_enqueued_at: float = 0.0
    """Wall-clock arrival, which replicas compare."""


class JobScheduler:
    """Reserves capacity on dispatch, releases it on finish, and serves waiters by priority.

    In one process all state changes happen on one event loop without awaiting in between,
    so a placement and its reservation are atomic. With a shared ledger (replicas), each
    placement is made from a fresh view of every replica's reservations and queue, and is
    binding only once the ledger has confirmed it.
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
        ledger: Ledger | None = None,
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
        self._ledger: Ledger = ledger or LocalLedger()
        self._remote: list[WaitingJob] = []
        """Other replicas' waiting jobs, as of the last view."""
        self._dispatching = False
        self._again = False
        self._background: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        registry.on_change(self._dispatch)
        self._ledger.on_change(self._dispatch)

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

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    async def refresh(self) -> None:
        """Take every replica's reservations and waiting jobs from a shared ledger (placing
        work does it by itself; a view of the whole cluster calls it first)."""
        if not self._ledger.shared:
            return
        nodes = self._registry.all()
        view = await self._ledger.view(n.config.id for n in nodes)
        for node in nodes:
            node.in_flight = view.in_flight.get(node.config.id, 0)
            node.reserved_gb = view.reserved_gb.get(node.config.id, 0.0)
        self._remote = [w for w in view.waiting if w.replica != self._ledger.replica]

    def _claim(self, lease: Lease, priority: int) -> Claim:
        node = self._registry.get(lease.node_id)
        return Claim(
            lease.lease_id,
            lease.node_id,
            lease.vram_gb,
            job_cap(node.config.max_jobs, priority, self.limits),
            node.vram_total_gb - node.reported_used_gb,
        )

    async def _claimed(self, lease: Lease, priority: int) -> bool:
        """Whether the ledger made `lease` binding; if not (refused, failed, cancelled), the
        local reservation is undone."""
        try:
            if await self._ledger.claim(self._claim(lease, priority)):
                return True
        except BaseException:
            self._forget(lease)
            raise
        self._forget(lease)
        return False

    def _forget(self, lease: Lease) -> None:
        """Undo a local reservation the ledger refused (it holds nothing to give back)."""
        if self._leases.pop(lease.lease_id, None) is not None:
            node = self._registry.get(lease.node_id)
            node.reserved_gb = max(0.0, node.reserved_gb - lease.vram_gb)
            node.in_flight = max(0, node.in_flight - 1)

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
        """A waiter at least as urgent (after aging), here or on another replica, wants one of
        these models: do not jump it."""
        wanted = set(models)
        now, wall = self._clock(), time.time()
        return any(
            effective_priority(w.priority, now - w.enqueued_at, self.aging_s) <= priority
            and wanted & set(w.models)
            for w in self._queue
        ) or any(
            effective_priority(w.priority, wall - w.enqueued_at, self.aging_s) <= priority
            and wanted & set(w.models)
            for w in self._remote
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
        """Reserve on the best node for the first of `models` that fits now, or None.

        This process's view alone: with a shared ledger, use `reserve`."""
        if self._ledger.shared:
            raise RuntimeError("with a shared ledger, reservations go through reserve()")
        return self._try_local(
            job_id,
            models,
            priority=priority,
            vram_gb=vram_gb,
            exclude_nodes=exclude_nodes,
            node_id=node_id,
        )

    async def reserve(
        self,
        job_id: str,
        models: Sequence[str],
        *,
        priority: int = 3,
        vram_gb: float | None = None,
        exclude_nodes: frozenset[str] = frozenset(),
        node_id: str | None = None,
    ) -> Lease | None:
        """Reserve on the best node for the first of `models` that fits now, or None; with
        a shared ledger, binding across replicas."""
        await self._join()
        for _ in range(CLAIM_ATTEMPTS):
            await self.refresh()
            lease = self._try_local(
                job_id,
                models,
                priority=priority,
                vram_gb=vram_gb,
                exclude_nodes=exclude_nodes,
                node_id=node_id,
            )
            if lease is None or await self._claimed(lease, priority):
                return lease
        return None

    def _try_local(
        self,
        job_id: str,
        models: Sequence[str],
        *,
        priority: int,
        vram_gb: float | None,
        exclude_nodes: frozenset[str],
        node_id: str | None,
    ) -> Lease | None:
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
        lease = await self.reserve(job_id, models, priority=priority, vram_gb=vram_gb)
        if lease is not None:
            return lease
        self._ensure_some_node_can_serve(models)
        depth = self.queue_depth
        if depth >= self.max_queue:
            raise QueueFull(
                f"{depth} jobs are already waiting (the bound); job {job_id} refused",
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
            uuid.uuid4().hex,
            time.time(),
        )
        job = WaitingJob(
            waiter.waiter_id,
            self._ledger.replica,
            job_id,
            priority,
            waiter.wall_enqueued_at,
            waiter.models,
            vram_gb,
        )
        try:
            await self._ledger.enqueue(job)
        except BaseException:
            # Cancelled or failed after the script may have run: no ghost left behind.
            self._ledger.dequeue(waiter.waiter_id)
            raise
        # In the local queue only once the shared one has it: a grant never races the entry.
        self._queue.append(waiter)
        if self._ledger.shared:
            # Capacity may have come free between the first try and the queue.
            self._dispatch()
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
            self._ledger.dequeue(waiter.waiter_id)
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
        self._ledger.release(lease.lease_id, lease.node_id)
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
        """Grant capacity to waiters, most urgent first; those that do not fit keep waiting.
        With a shared ledger that takes a round trip: it runs as a task of its own."""
        if not self._ledger.shared:
            self._dispatch_local()
        elif self._queue:
            task = asyncio.get_running_loop().create_task(self._dispatch_shared())
            self._background.add(task)
            task.add_done_callback(self._dispatched)

    def _dispatched(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The next release, notice or heartbeat dispatches again.
            log.warning("dispatching the queue failed: %s", exc)

    def _dispatch_local(self) -> None:
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

    async def _dispatch_shared(self) -> None:
        """One dispatch at a time; a call while one runs makes it go round once more."""
        if self._dispatching:
            self._again = True
            return
        self._dispatching = True
        try:
            self._again = True
            while self._again:
                self._again = False
                await self._grant_shared()
        finally:
            self._dispatching = False

    async def _grant_shared(self) -> None:
        """Grant capacity to this replica's waiters in the order of the whole queue: a
        waiter of another replica that comes first and has room now is left its models."""
        if not self._queue:
            return
        await self.refresh()
        wall = time.time()
        entries: list[tuple[int, float, int, _Waiter | WaitingJob]] = [
            (w.priority, w.wall_enqueued_at, w.seq, w) for w in self._queue
        ]
        entries += [(w.priority, w.enqueued_at, -1, w) for w in self._remote]
        entries.sort(
            key=lambda e: queue_key(e[0], e[1], e[2], wall, self.aging_s),
        )
        for _, _, _, entry in entries:
            if isinstance(entry, WaitingJob):
                self._hold_for(entry)
                continue
            waiter = entry
            if waiter.future.done() or waiter not in self._queue:
                continue
            error = self._unservable(waiter.models)
            if error is not None:
                waiter.future.set_exception(error)
                self._queue.remove(waiter)
                self._ledger.dequeue(waiter.waiter_id)
                continue
            placement = self._placement(waiter.models, waiter.vram_gb, waiter.priority)
            if placement is None:
                continue
            lease = self._reserve(waiter.job_id, placement, waiter.vram_gb)
            if not await self._claimed(lease, waiter.priority):
                self._again = True  # another replica took it first: look again, afresh
                return
            if waiter.future.done() or waiter not in self._queue:
                self.release(lease)  # it left (deadline, client gone) while the claim ran
                continue
            waiter.future.set_result(lease)
            self._queue.remove(waiter)
            self._ledger.dequeue(waiter.waiter_id)

    def _hold_for(self, other: WaitingJob) -> None:
        """Set aside, in this replica's view only, the capacity another replica's waiter that
        comes first would take now: waiters after it here must not take it from it."""
        placement = self._placement(other.models, other.vram_gb, other.priority)
        if placement is not None:
            node = self._registry.get(placement.node_id)
            node.in_flight += 1
            node.reserved_gb += self.job_vram(placement.model, other.vram_gb)

    async def tick(self) -> None:
        """Keep this replica's reservations and waiters alive in a shared ledger, then look
        for capacity that came back without a notice (a dead replica's, expired)."""
        leases = {lease.lease_id: (lease.node_id, lease.vram_gb) for lease in self._leases.values()}
        lost = await self._ledger.heartbeat(leases, [w.waiter_id for w in self._queue])
        if lost:
            log.warning(
                "%d reservation(s) expired in the ledger while their calls ran (Redis was "
                "out of reach longer than the time to live); restored: %s",
                len(lost),
                ", ".join(lost),
            )
        self._dispatch()

    async def _join(self) -> None:
        """With a shared ledger, on first use: hear the other replicas, and start keeping this
        one's reservations and waiters alive."""
        if self._ticker is not None or not self._ledger.shared:
            return
        beat = self._ledger.heartbeat_s
        self._ticker = asyncio.create_task(
            # Backoff capped at the beat: a longer pause would let live reservations expire.
            supervise("capacity heartbeat", self.tick, beat, max_backoff_s=beat),
            name="capacity heartbeat",
        )
        await self._ledger.start()

    async def close(self) -> None:
        """Stop the heartbeat, let dispatches in flight finish, close the ledger (at
        shutdown); reservations still held expire in the ledger by themselves."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._ledger.close()

    # -- views ----------------------------------------------------------------------
    def leases(self) -> list[Lease]:
        return list(self._leases.values())

    def queue_snapshot(self) -> list[QueueEntry]:
        """Waiting jobs in dispatch order; with a shared ledger, every replica's as of the
        last `refresh`."""
        now, wall = self._clock(), time.time()
        entries = [
            (w.priority, w.job_id, w.models, now - w.enqueued_at, w.seq) for w in self._queue
        ]
        entries += [
            (w.priority, w.job_id, w.models, wall - w.enqueued_at, -1) for w in self._remote
        ]
        entries.sort(key=lambda e: queue_key(e[0], -e[3], e[4], 0.0, self.aging_s))
        return [
            QueueEntry(
                job_id=job_id,
                priority=priority,
                effective_priority=round(effective_priority(priority, waited, self.aging_s), 3),
                models=list(models),
                waiting_s=round(waited, 3),
            )
            for priority, job_id, models, waited, _ in entries
        ]

    @property
    def queue_depth(self) -> int:
        """Jobs waiting here and (as of the last view) on the other replicas."""
        return len(self._queue) + len(self._remote)

    def node_ref(self, lease: Lease) -> NodeRef:
        """Where a lease runs."""
        node = self._cluster.node(lease.node_id)
        endpoint = ClusterConfig.base_url(node, lease.model, node.models[lease.model])
        return NodeRef(lease.node_id, lease.model, endpoint, lease.vram_gb)
