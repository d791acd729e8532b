"""The one way in for every LLM request, whatever the entry point:
authenticate → validate → admit → audit "accepted" → run → spend tokens → audit the outcome.

Authentication is FastAPI's dependency (`current_principal`); the rest is here. Each request
gets exactly one audit record: written "accepted" before it runs and overwritten, under the
same id, with its outcome (completed, failed, refused, abandoned).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError

from graph.records import new_job_id
from graph.state import RouterOutput
from policies.errors import InvalidRequest, LimitsUnavailable, RateLimited, RouterError
from policies.usage import Usage
from service.audit import AuditRecord
from service.auth import Principal
from service.context import ServiceContext
from service.governance import audit_entry, rate_headers
from service.ratelimit import Decision
from service.schemas import ProcessRequest
from service.validation import check_request

log = logging.getLogger(__name__)

#: Graph input fields the service sets from the token, whatever a caller sends.
IDENTITY = ("user", "tenant")
#: LangServe's routes that run the graph.
GRAPH_ROUTES = ("invoke", "batch", "stream", "stream_log", "stream_events")
#: An admitted request whose run never started (its client left before a stream began) is
#: closed as abandoned after this long.
UNCLAIMED_S = 60.0


@dataclass(frozen=True)
class Ticket:
    """An admitted request: whose it is, its job and its audit record."""

    principal: Principal
    job_id: str
    prompt: str
    entry_point: str
    record_id: str
    started: float
    """perf_counter at admission: the audit's latency runs from here."""
    decision: Decision
    """The rate limiter's answer, for the response headers."""

    @property
    def headers(self) -> dict[str, str]:
        return {**rate_headers(self.decision), "X-Job-Id": self.job_id}


@dataclass
class Run:
    """What a governed run produced, filled in by the entry point as it goes."""

    ticket: Ticket
    out: RouterOutput | None = None
    """The run's output (or, for a stream, what its updates added up to)."""
    abandoned: bool = False
    """The client left before the answer."""
    usage: Usage = field(default_factory=Usage)
    """Tokens spent so far, for a run that ends before its output is whole."""
    model: str | None = None
    """The model to record when it is not the routed one (the judge's)."""
    failure: RouterError | None = None
    """Why a run that reported its failure to its client (a stream) failed."""


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as `field: message`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


class Pipeline:
    """Validation, admission, token spending and the audit record, for every entry point."""

    def __init__(self, service: ServiceContext) -> None:
        self._service = service
        self._unclaimed: dict[str, tuple[Ticket, float]] = {}

    # -- validate --------------------------------------------------------------------
    def validate(self, graph_input: Mapping[str, Any]) -> None:
        """InvalidRequest (422, naming the field) unless the request is one `/process` would
        take: its fields and generation parameters in range, within the size limits, naming
        models and chain operations that exist. Every entry point checks the same."""
        fields = {k: v for k, v in graph_input.items() if k not in IDENTITY}
        try:
            request = ProcessRequest.model_validate(fields)
        except ValidationError as exc:
            raise InvalidRequest(validation_message(exc)) from None
        check_request(self._service.options, request.prompt, request.items)
        router = self._service.context.router
        for model in [*([request.model] if request.model else []), *request.models]:
            router.require_model(model)
        for operation in request.operations:
            router.task_type_of(operation)

    def judged(self) -> bool:
        """Whether the routing policy asks an LLM judge (then classifying is an LLM request)."""
        return self._service.context.router.policy.judge.enabled

    # -- admit -----------------------------------------------------------------------
    async def admit(
        self, principal: Principal, graph_inputs: Sequence[Mapping[str, Any]], entry_point: str
    ) -> list[Ticket]:
        """Validate and admit every input as one request each, all or none; each leaves an
        "accepted" audit record. A refusal is audited for every input, then raised."""
        started = time.perf_counter()
        service = self._service
        drafts = [
            (str(g.get("job_id") or new_job_id()), str(g.get("prompt", ""))) for g in graph_inputs
        ]
        try:
            for graph_input in graph_inputs:
                self.validate(graph_input)
            decision = await service.limiter.admit(
                principal.user, principal.tenant, requests=len(graph_inputs)
            )
        except (InvalidRequest, LimitsUnavailable) as exc:
            await self.refuse(principal, drafts, entry_point, exc.http_status, exc.code, started)
            raise
        if not decision.allowed:
            refusal = RateLimited(
                f"rate limit: {decision.scope} is over {decision.limit} per minute",
                retry_after_s=decision.reset_s,
                headers=rate_headers(decision),
            )
            await self.refuse(
                principal, drafts, entry_point, refusal.http_status, refusal.code, started
            )
            raise refusal
        tickets = []
        for job_id, prompt in drafts:
            accepted = audit_entry(
                principal,
                prompt,
                job_id,
                started,
                status="accepted",
                http_status=202,
                keep_text=service.options.audit_prompt_text,
                entry_point=entry_point,
            )
            await service.record(accepted)
            tickets.append(
                Ticket(principal, job_id, prompt, entry_point, accepted.id, started, decision)
            )
        return tickets

    async def refuse(
        self,
        principal: Principal,
        drafts: Sequence[tuple[str, str]],
        entry_point: str,
        http_status: int,
        code: str,
        started: float | None = None,
    ) -> None:
        """Audit each (job id, prompt) as a request refused before it ran."""
        service = self._service
        for job_id, prompt in drafts:
            await service.record(
                audit_entry(
                    principal,
                    prompt,
                    job_id,
                    time.perf_counter() if started is None else started,
                    status="refused",
                    http_status=http_status,
                    error_code=code,
                    keep_text=service.options.audit_prompt_text,
                    entry_point=entry_point,
                )
            )

    async def refuse_malformed(self, request: Request, body: Any) -> None:
        """Audit an authenticated request to an LLM entry point whose body did not parse."""
        principal = getattr(request.state, "principal", None)
        entry_point = entry_point_of(request.url.path)
        if principal is None or entry_point is None:
            return
        if entry_point == "test-classification" and not self.judged():
            return
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            inputs = [body.get("input", body) if isinstance(body, dict) else body]
        drafts = [(new_job_id(), _prompt_of(item)) for item in inputs or [None]]
        await self.refuse(principal, drafts, entry_point, 422, "validation_error")

    # -- run and close -----------------------------------------------------------------
    @asynccontextmanager
    async def outcome(self, ticket: Ticket) -> AsyncIterator[Run]:
        """Around an admitted request's run: afterwards its tokens are spent and its outcome
        audited, whether it completed, failed, was cancelled or its client left."""
        run = Run(ticket)
        try:
            yield run
        except RouterError as exc:
            await self._close(run, "failed", exc.http_status, exc.code)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            await self._close(run, "abandoned", 499, "client_gone")
            raise
        except Exception:
            await self._close(run, "failed", 500, "internal_error")
            raise
        if run.abandoned:
            await self._close(run, "abandoned", 499, "client_gone")
        elif run.failure is not None:
            await self._close(run, "failed", run.failure.http_status, run.failure.code)
        else:
            await self._close(run, "completed", 200, None)

    @asynccontextmanager
    async def governed(
        self, principal: Principal, graph_input: Mapping[str, Any], entry_point: str
    ) -> AsyncIterator[Run]:
        """Admit one request, and close it when the block ends."""
        [ticket] = await self.admit(principal, [graph_input], entry_point)
        async with self.outcome(ticket) as run:
            yield run

    async def _close(self, run: Run, status: str, http_status: int, code: str | None) -> None:
        ticket, service = run.ticket, self._service
        out = run.out
        usage = out.get("usage") if out is not None else None
        spent = usage if usage is not None else run.usage
        try:
            await service.limiter.spend(
                ticket.principal.user, ticket.principal.tenant, spent.total_tokens
            )
        except LimitsUnavailable as exc:
            # The answer is given; its tokens go uncounted, and the log says so.
            log.warning("job %s: %s tokens not counted: %s", ticket.job_id, spent, exc.message)
        record = audit_entry(
            ticket.principal,
            ticket.prompt,
            ticket.job_id,
            ticket.started,
            status=status,
            http_status=http_status,
            keep_text=service.options.audit_prompt_text,
            response=out,
            error_code=code,
            entry_id=ticket.record_id,
            entry_point=ticket.entry_point,
        )
        _fill(record, spent, run.model)
        await service.record(record)

    # -- tickets handed from admission to a run that starts later (LangServe) ------------
    def hold(self, tickets: Sequence[Ticket]) -> None:
        """Keep tickets for the runs that will claim them."""
        now = time.monotonic()
        for ticket in tickets:
            self._unclaimed[ticket.job_id] = (ticket, now)

    def claim(self, job_id: str) -> Ticket:
        """The held ticket of `job_id`; RuntimeError for a run that was never admitted."""
        held = self._unclaimed.pop(job_id, None)
        if held is None:
            raise RuntimeError(f"job {job_id} was not admitted through the request pipeline")
        return held[0]

    async def close_unclaimed(self, older_than_s: float = UNCLAIMED_S) -> int:
        """Audit as abandoned the tickets no run claimed in time; how many there were."""
        cutoff = time.monotonic() - older_than_s
        stale = [t for t, held_at in self._unclaimed.values() if held_at < cutoff]
        for ticket in stale:
            del self._unclaimed[ticket.job_id]
            await self._close(Run(ticket), "abandoned", 499, "client_gone")
        return len(stale)


#: The `/api/llm` paths that take LLM requests, and the entry point each is audited as.
_ENTRY_POINTS = {
    "/api/llm/process": "process",
    "/api/llm/test-classification": "test-classification",
}


def entry_point_of(path: str) -> str | None:
    """The entry point an HTTP path is audited as, or None for paths that take no request.
    LangServe's routes count with or without a config hash (`/graph/c/{hash}/invoke`)."""
    path = path.rstrip("/")
    route = path.rsplit("/", 1)[-1]
    if path.startswith("/graph/") and route in GRAPH_ROUTES:
        return f"graph/{route}"
    return _ENTRY_POINTS.get(path)


def _prompt_of(item: Any) -> str:
    prompt = item.get("prompt") if isinstance(item, dict) else None
    return prompt if isinstance(prompt, str) else ""


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


Pipe = Annotated[Pipeline, Depends(get_pipeline)]


def _fill(record: AuditRecord, spent: Usage, model: str | None) -> None:
    record.prompt_tokens = spent.prompt_tokens
    record.completion_tokens = spent.completion_tokens
    if model is not None:
        record.model = model
