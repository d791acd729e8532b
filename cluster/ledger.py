"""Where reservations and waiting jobs are counted: in this process, or shared by replicas.

The scheduler places jobs from its own view of the nodes; a ledger is what makes a placement
binding. In one process the event loop already makes placement and reservation atomic, so
the local ledger agrees to everything. Shared between replicas (`RedisLedger`), a claim is
checked again against every replica's reservations, atomically, and may be refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Claim:
    """A reservation to make binding: a lease's capacity against its node's limits."""

    lease_id: str
    node_id: str
    vram_gb: float
    job_cap: int | None
    """Most reservations the node may hold with this one (None: no cap)."""
    vram_budget_gb: float
    """Most VRAM the node's reservations may add up to with this one."""


@dataclass(frozen=True)
class WaitingJob:
    """A job waiting for capacity, as every replica sees it."""

    waiter_id: str
    replica: str
    job_id: str
    """The job's reservation key (tenant and job id)."""
    priority: int
    enqueued_at: float
    """Wall-clock time it started waiting (replicas compare these)."""
    models: tuple[str, ...]
    vram_gb: float | None = None
    """Its own VRAM need, when not its model's default."""


@dataclass
class LedgerView:
    """Every replica's reservations per node, and every replica's waiting jobs."""

    in_flight: dict[str, int] = field(default_factory=dict)
    reserved_gb: dict[str, float] = field(default_factory=dict)
    waiting: list[WaitingJob] = field(default_factory=list)


class Ledger(Protocol):
    """Binding reservations and the queue, as the scheduler needs them."""

    replica: str
    """This process's id among the replicas."""

    @property
    def shared(self) -> bool:
        """Whether other replicas count here too (then the scheduler re-reads the view)."""
        ...

    @property
    def heartbeat_s(self) -> float:
        """How often the holder must call `heartbeat` (0: never)."""
        ...

    async def view(self, node_ids: Iterable[str]) -> LedgerView:
        """Reservations on `node_ids` and the waiting jobs, expired ones dropped."""
        ...

    async def claim(self, claim: Claim) -> bool:
        """Make `claim` binding if its node still has room for it; whether it did."""
        ...

    def release(self, lease_id: str, node_id: str) -> None:
        """Give a reservation back (in the background; a failure leaves it to expire)."""
        ...

    async def enqueue(self, job: WaitingJob) -> None: ...

    def dequeue(self, waiter_id: str) -> None:
        """Take a waiting job out (in the background, like `release`)."""
        ...

    async def heartbeat(
        self, leases: dict[str, tuple[str, float]], waiters: Iterable[str]
    ) -> list[str]:
        """Keep alive this replica's reservations (lease id -> node id and GB) and waiting
        jobs; the ids of reservations that had expired meanwhile (now restored)."""
        ...

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` when another replica frees capacity or leaves the queue."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalLedger:
    """One router: its own counts are the whole truth, so every claim stands."""

    replica = "local"

    @property
    def shared(self) -> bool:
        return False

    @property
    def heartbeat_s(self) -> float:
        return 0.0

    async def view(self, node_ids: Iterable[str]) -> LedgerView:
        return LedgerView()

    async def claim(self, claim: Claim) -> bool:
        return True

    def release(self, lease_id: str, node_id: str) -> None:
        return None

    async def enqueue(self, job: WaitingJob) -> None:
        return None

    def dequeue(self, waiter_id: str) -> None:
        return None

    async def heartbeat(
        self, leases: dict[str, tuple[str, float]], waiters: Iterable[str]
    ) -> list[str]:
        return []

    def on_change(self, listener: Callable[[], None]) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
