"""Model calls outside a job's plan (the judge, the ensemble's aggregator, the Python API):
each reserves capacity like any other call, so none runs on a node the scheduler thinks idle."""

from __future__ import annotations

from typing import Any

from cluster.completion import CallResult
from cluster.pool import LLMPool
from cluster.scheduler import JobScheduler


class ReservedCalls:
    """Place, reserve, call, release."""

    def __init__(self, scheduler: JobScheduler, pool: LLMPool) -> None:
        self._scheduler = scheduler
        self._pool = pool

    async def call(
        self,
        job_id: str,
        model: str,
        prompt: str,
        parameters: dict[str, Any] | None = None,
        *,
        system: str | None = None,
        priority: int = 3,
        timeout_s: float | None = None,
    ) -> CallResult:
        """One call of `model` on the node placement picks; waits for capacity up to
        `timeout_s` (the default timeout when None)."""
        lease = await self._scheduler.acquire(
            job_id, [model], priority=priority, timeout_s=timeout_s
        )
        try:
            return await self._pool.call_model(
                model, prompt, parameters, node_id=lease.node_id, system=system
            )
        finally:
            self._scheduler.release(lease)
