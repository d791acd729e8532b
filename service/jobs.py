"""Asynchronous jobs: the record every replica reads, and the store that keeps it.

A job is the tenant's, keyed by (tenant, job_id): job ids are the callers', unique only within
a tenant, so a lookup from another tenant finds nothing and two tenants' ids never collide.
The record holds what a run needs, so that any replica can run it again when the one running
it stops: the replica that owns it holds a lease, renewed while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.auth import Principal

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
#: Statuses of a job someone must still run (and may take over when its lease lapses).
UNFINISHED = (QUEUED, RUNNING)

#: (tenant, job_id)
JobKey = tuple[str, str]


@dataclass
class JobRecord:
    """An asynchronous job: its input, whose it is, its status and outcome, and its lease."""

    job_id: str
    tenant: str
    user: str
    graph_input: dict[str, Any]
    """The graph's input, plain JSON values, the identity included."""
    record_id: str
    """Its ticket's audit record: whichever replica finishes the job writes its outcome there."""
    accepted_at: float
    """When its "accepted" audit record was written."""
    roles: tuple[str, ...] = ()
    entry_point: str = "process"
    status: str = QUEUED
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    owner: str | None = None
    """The replica running it."""
    lease_expires_at: float | None = None
    """Epoch seconds, by the store's clock; past it, any replica may take the job over."""
    attempts: int = 1
    """Runs started, the first included, less those handed over by a stopping router."""

    @property
    def key(self) -> JobKey:
        return (self.tenant, self.job_id)

    @property
    def principal(self) -> Principal:
        return Principal(self.user, self.tenant, frozenset(self.roles))

    def to_dict(self) -> dict[str, Any]:
        """The job as `GET /api/llm/jobs/{id}` answers it."""
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }
        if self.response is not None:
            body.update(self.response)
            body["status"] = self.status
        if self.error is not None:
            body["error"] = self.error
        return body


class JobStore(Protocol):
    """Jobs shared by the replicas that share the store. Every change of owner or outcome is
    one conditional write, so two replicas never both own, or both finish, one job."""

    async def add(self, record: JobRecord, lease_s: float) -> bool:
        """Record a new job, owned by `record.owner` for `lease_s`, durably. False (and nothing
        written) when an unfinished job of the tenant holds the id; a finished one is replaced."""
        ...

    async def get(self, job_id: str, tenant: str) -> JobRecord | None: ...

    async def start(self, key: JobKey, owner: str) -> bool:
        """Queued → running, if `owner` still owns it."""
        ...

    async def renew(self, owner: str, keys: Sequence[JobKey], lease_s: float) -> set[JobKey]:
        """Extend the leases `owner` holds on `keys`; the keys it still holds."""
        ...

    async def claim(self, owner: str, lease_s: float, limit: int) -> list[JobRecord]:
        """Take over up to `limit` unfinished jobs whose lease lapsed: each becomes `owner`'s,
        running, one attempt more. A job is claimed by one caller only."""
        ...

    async def finish(
        self,
        key: JobKey,
        owner: str,
        status: str,
        response: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> bool:
        """Record the outcome if `owner` still owns the job and it is unfinished; False when
        another replica took it over (or it is finished): the outcome is then discarded."""
        ...

    async def release(self, owner: str, keys: Sequence[JobKey]) -> int:
        """Give up `owner`'s unfinished jobs among `keys` now, for another replica to take
        over without waiting for their leases; how many."""
        ...

    async def prune(self, finished_before: float) -> int:
        """Delete the jobs finished before that time; how many."""
        ...

    async def close(self) -> None: ...
