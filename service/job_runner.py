"""Runs asynchronous jobs so that none is lost with the replica running it.

A job is recorded before its 202 leaves and runs under a lease its replica renews. When the
lease lapses (the replica died, or stopped and handed the job over) any replica claims the
job and runs it again, under the same audit record. The outcome is written only while the
job is still this replica's, so the caller sees one outcome however many runs there were.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from cluster.postgres import UNREACHABLE
from graph.state import RouterOutput
from policies.errors import ErrorInfo, JobInProgress, RouterError, StoreUnavailable
from service.context import ServiceContext
from service.jobs import COMPLETED, FAILED, QUEUED, JobKey, JobRecord, JobStore
from service.pipeline import Pipeline, Run, Ticket
from service.ratelimit import Decision
from service.responses import error_json, response_json

log = logging.getLogger(__name__)

#: A taken-over job was admitted (and counted) where it was accepted; its ticket here only
#: carries it to its outcome.
TAKEN_OVER = Decision(allowed=True, limit=0, remaining=0, reset_s=0.0, scope="taken over")
#: Most jobs one takeover step claims: a replica takes a share, the others the rest.
CLAIM_BATCH = 8
INTERNAL_ERROR = ErrorInfo("internal_error", "the router failed; see its log", 500)


class AttemptsExhausted(RouterError):
    """The job was started too many times without finishing (its runs kept dying)."""

    code = "job_attempts_exhausted"
    http_status = 500


class JobLost(Exception):
    """This replica no longer owns the job: another replica runs it, and the result of this
    run is discarded."""


@dataclass
class _Running:
    """A job running on this replica."""

    record: JobRecord
    ticket: Ticket
    task: asyncio.Task[None] | None = None
    finishing: bool = False
    """Its outcome is being recorded: it is not handed over, but let finish."""
    handed_over: bool = False
    """Cancelled at shutdown, for another replica to run."""
    lost: bool = False
    """Its lease was found taken by another replica."""


class JobRunner:
    """This replica's asynchronous jobs: submits, heartbeats, takeovers and the handover at
    shutdown. Its owner id is the service's replica id."""

    def __init__(
        self,
        service: ServiceContext,
        pipeline: Pipeline,
        store: JobStore,
        *,
        lease_s: float,
        max_attempts: int,
        retention_s: float,
    ) -> None:
        self.store = store
        self.owner = service.replica_id
        self._service = service
        self._pipeline = pipeline
        self._lease_s = lease_s
        self._max_attempts = max_attempts
        self._retention_s = retention_s
        self._running: dict[JobKey, _Running] = {}
        self._stopping = False

    # -- accept and read -----------------------------------------------------------------
    async def submit(self, ticket: Ticket, graph_input: dict[str, Any]) -> None:
        """Record the admitted `ticket`'s job and start it here. Once this returns, the job
        is durable: it completes here or on another replica. JobInProgress when an unfinished
        job of the tenant (on any replica) holds the id; StoreUnavailable when the store
        does not answer or the router is stopping."""
        if self._stopping:
            raise StoreUnavailable("the router is stopping", retry_after_s=1)
        principal = ticket.principal
        record = JobRecord(
            job_id=ticket.job_id,
            tenant=principal.tenant,
            user=principal.user,
            graph_input=graph_input,
            record_id=ticket.record_id,
            accepted_at=ticket.accepted_at,
            roles=tuple(sorted(principal.roles)),
            entry_point=ticket.entry_point,
            owner=self.owner,
        )
        try:
            added = await self.store.add(record, self._lease_s)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"the job store is unreachable: {exc}", retry_after_s=5) from exc
        if not added:
            raise JobInProgress(f"job {ticket.job_id} is already running; wait for it to finish")
        # Claimed now: the job may not have started by the time the 202 is out.
        self._pipeline.claim(ticket.record_id)
        self._start(record, ticket)

    async def get(self, job_id: str, tenant: str) -> JobRecord | None:
        """The tenant's job, wherever it runs; None for no such job of this tenant."""
        try:
            return await self.store.get(job_id, tenant)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"the job store is unreachable: {exc}", retry_after_s=5) from exc

    # -- run -----------------------------------------------------------------------------
    def _start(self, record: JobRecord, ticket: Ticket) -> None:
        job = _Running(record, ticket)
        key = record.key
        self._running[key] = job
        job.task = asyncio.create_task(self._run(job), name=f"job {key[0]}/{key[1]}")

        def forget(_: asyncio.Task[None]) -> None:
            if self._running.get(key) is job:
                del self._running[key]

        job.task.add_done_callback(forget)

    async def _run(self, job: _Running) -> None:
        record = job.record
        try:
            async with self._pipeline.outcome(job.ticket) as run:
                run.out = await self._result(job, run)
        except asyncio.CancelledError:
            if not job.handed_over:
                raise
            log.info("job %s/%s handed over at shutdown", record.tenant, record.job_id)
        except RouterError:
            return  # the job's own failure: on its record, and audited
        except JobLost as exc:
            log.warning("%s", exc)
        except Exception:
            log.exception("job %s/%s failed", record.tenant, record.job_id)

    async def _result(self, job: _Running, run: Run) -> RouterOutput:
        """Run the job's graph and record its outcome on the job, if it is still ours."""
        record = job.record
        if record.status == QUEUED:
            await self._mark_running(record)
        try:
            if record.attempts > self._max_attempts:
                raise AttemptsExhausted(
                    f"job {record.job_id} was started {record.attempts - 1} times"
                    " and never finished"
                )
            out = await self._service.run(record.graph_input, on_usage=run.spent)
            body = response_json(out)
        except RouterError as exc:
            await self._finish(job, FAILED, error=error_json(exc.info()))
            raise
        except Exception:
            await self._finish(job, FAILED, error=error_json(INTERNAL_ERROR))
            raise
        await self._finish(job, COMPLETED, response=body)
        return out

    async def _mark_running(self, record: JobRecord) -> None:
        try:
            await self.store.start(record.key, self.owner)
        except UNREACHABLE as exc:
            # Only what a poll shows: the job runs, and its lease is renewed, all the same.
            log.warning("job %s: not marked running (%s)", record.job_id, exc)

    async def _finish(
        self,
        job: _Running,
        status: str,
        *,
        response: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Record the outcome; JobLost, with the ticket released unaudited, when the job is no
        longer ours: whoever owns it now writes its outcome, to the job and the audit trail."""
        job.finishing = True
        record = job.record
        try:
            won = await self.store.finish(record.key, self.owner, status, response, error)
        except UNREACHABLE as exc:
            # Whether it was written is unknown (a timeout may still commit). Audited all the
            # same: if it was not, the job runs again once its lease lapses, and that run's
            # outcome overwrites this one's audit record.
            log.warning(
                "job %s/%s: its %s outcome may not be recorded (%s)",
                record.tenant,
                record.job_id,
                status,
                exc,
            )
            return
        if not won:
            self._pipeline.release(job.ticket)
            raise JobLost(
                f"job {record.tenant}/{record.job_id} was taken over by another replica:"
                f" this run's {status} outcome is discarded"
            )

    # -- leases --------------------------------------------------------------------------
    async def heartbeat(self) -> None:
        """Renew the leases of the jobs running here; note those another replica took."""
        jobs = [j for j in self._running.values() if not (j.lost or j.handed_over)]
        if not jobs:
            return
        held = await self.store.renew(self.owner, [j.record.key for j in jobs], self._lease_s)
        for job in jobs:
            if job.record.key not in held and not job.finishing:
                job.lost = True
                log.warning(
                    "job %s/%s: its lease lapsed and another replica took it over;"
                    " the result of its run here will be discarded",
                    *job.record.key,
                )

    async def take_over(self) -> int:
        """Claim the jobs whose lease lapsed (their replica died or stopped) and run them
        here; how many were claimed."""
        if self._stopping:
            return 0
        claimed = await self.store.claim(self.owner, self._lease_s, CLAIM_BATCH)
        for record in claimed:
            here = self._running.get(record.key)
            if here is not None:
                # Our own lease lapsed (a stalled loop) while it still runs here: the claim
                # renewed it, and this run goes on.
                here.lost = False
                continue
            ticket = self._ticket(record)
            self._pipeline.adopt(ticket)
            log.info(
                "job %s/%s taken over (attempt %d)", record.tenant, record.job_id, record.attempts
            )
            self._start(record, ticket)
        return len(claimed)

    async def prune(self) -> int:
        """Delete the jobs finished longer ago than the retention; how many."""
        return await self.store.prune(time.time() - self._retention_s)

    def _ticket(self, record: JobRecord) -> Ticket:
        # perf_counter is this process's: the audit's latency still runs from acceptance.
        started = time.perf_counter() - max(0.0, time.time() - record.accepted_at)
        return Ticket(
            principal=record.principal,
            job_id=record.job_id,
            prompt=str(record.graph_input.get("prompt", "")),
            entry_point=record.entry_point,
            record_id=record.record_id,
            accepted_at=record.accepted_at,
            started=started,
            decision=TAKEN_OVER,
        )

    # -- shutdown ------------------------------------------------------------------------
    async def stop(self) -> None:
        """At shutdown: stop the jobs running here without failing or auditing them, and
        give up their leases, for another replica (or this router's next start) to take
        them over. A job already recording its outcome finishes first."""
        self._stopping = True
        jobs = list(self._running.values())
        handed: list[JobKey] = []
        for job in jobs:
            if job.finishing or job.task is None:
                continue
            job.handed_over = True
            self._pipeline.release(job.ticket)
            job.task.cancel()
            handed.append(job.record.key)
        await asyncio.gather(*(j.task for j in jobs if j.task is not None), return_exceptions=True)
        if not handed:
            return
        try:
            given = await self.store.release(self.owner, handed)
        except UNREACHABLE as exc:
            log.warning(
                "%d jobs not given up (%s): they are taken over once their leases lapse",
                len(handed),
                exc,
            )
            return
        log.info("%d jobs handed over at shutdown", given)

    async def close(self) -> None:
        await self.store.close()
