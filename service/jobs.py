"""Jobs accepted over HTTP, kept per tenant so that one tenant never sees another's."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobRecord:
    """An asynchronous job's status and outcome."""

    job_id: str
    tenant: str
    user: str
    status: str = "queued"
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
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


class MemoryJobStore:
    """In-process job store, by tenant: job ids are the callers', unique within a tenant, so
    a lookup from another tenant finds nothing and two tenants' ids never collide."""

    def __init__(self, max_jobs: int = 10_000) -> None:
        self._jobs: dict[tuple[str, str], JobRecord] = {}
        self._max_jobs = max_jobs

    def add(self, record: JobRecord) -> None:
        if len(self._jobs) >= self._max_jobs:
            oldest = min(self._jobs.values(), key=lambda r: r.created_at)
            del self._jobs[(oldest.tenant, oldest.job_id)]
        self._jobs[(record.tenant, record.job_id)] = record

    def get(self, job_id: str, tenant: str) -> JobRecord | None:
        return self._jobs.get((tenant, job_id))
