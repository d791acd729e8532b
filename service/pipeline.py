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
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError

from graph.records import new_job_id
from graph.state import RouterOutput
from policies.errors import (
    InvalidRequest,
    JobInProgress,
    LimitsUnavailable,
    RateLimited,
    RouterError,
)
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
#: `Run.model` of a request that called no model (a classification the judge was not asked).
NO_MODEL = ""


@dataclass(frozen=True)
class Ticket:
    """An admitted request: whose it is, its job and its audit record."""

    principal: Principal
    job_id: str
    prompt: str
    entry_point: str
    record_id: str
    """The audit record's id: the ticket's identity, whatever job id the caller chose."""
    accepted_at: float
    """When the "accepted" record was written; the outcome keeps it."""
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
    """The model to record when it is not the routed one (the judge's); `NO_MODEL` when
    the request called none."""
    failure: RouterError | None = None
    """Why a run that reported its failure to its client (a stream) failed."""

    def spent(self, usage: Usage) -> None:
        """Count tokens a step of the run used."""
        self.usage = self.usage + usage

    @property
    def tokens(self) -> Usage:
        """Tokens the run spent: its output's count, else what its steps reported."""
        usage = None if self.out is None else self.out.get("usage")
        return self.usage if usage is None else usage

    def ended(self, error: RouterError) -> str:
        """How a run that failed with `error` is audited. A request found invalid before it
        called any model (over the limit of the model classification chose, which only the
        run knows) is refused, as it would have been at admission had it named the model."""
        invalid = isinstance(error, InvalidRequest) and not self.tokens.total_tokens
        return "refused" if invalid else "failed"


@dataclass
class _Open:
    """An admitted request not yet closed."""

    ticket: Ticket
    since: float
    """monotonic time of admission."""
    claimed: bool = False
    """A run has started under it."""


@dataclass
class Admission:
    """What the pipeline did for one HTTP request, for `settle` once its response is out."""

    tickets: list[Ticket] = field(default_factory=list)
    audited: bool = False
    """The request already has its audit record(s): admitted or refused."""
    error_code: str | None = None
    """The code of the error the request was answered with, when the router raised one."""


def note_error(code: str) -> None:
    """Record the code of the error the current HTTP request is answered with."""
    admission = _admission.get()
    if admission is not None:
        admission.error_code = code


#: The HTTP request being answered: admission and refusals note themselves on it.
_admission: ContextVar[Admission | None] = ContextVar("router_admission", default=None)


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as `field: message`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


class Pipeline:
    """Validation, admission, token spending and the audit record, for every entry point.

    Every admitted request is open until it is closed, exactly once: by its run's end, by the
    sweep when no run ever claims it, by `settle` when its HTTP request failed before the run,
    or at shutdown.
    """

    def __init__(self, service: ServiceContext) -> None:
        self._service = service
        self._open: dict[str, _Open] = {}
        self._closing: set[asyncio.Task[None]] = set()

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
        conversation = [m.text() for m in request.messages]
        check_request(self._service.options, request.prompt, request.items, conversation)
        context = self._service.context
        parameters = request.parameters.model_dump(exclude_none=True)
        for model in [*([request.model] if request.model else []), *request.models]:
            context.router.require_model(model)
            context.pool.checked(model, parameters)
        for operation in request.operations:
            context.router.task_type_of(operation)

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
        admission = _admission.get()
        if admission is not None:
            admission.audited = True
        try:
            for graph_input in graph_inputs:
                self.validate(graph_input)
            self._check_unique(principal.tenant, [job_id for job_id, _ in drafts])
            decision = await service.limiter.admit(
                principal.user, principal.tenant, requests=len(graph_inputs)
            )
        except (InvalidRequest, JobInProgress, LimitsUnavailable) as exc:
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
        try:
            # Checked again now that admission has awaited: another request may have taken
            # one of these job ids meanwhile; from here on they are taken.
            self._check_unique(principal.tenant, [job_id for job_id, _ in drafts])
        except JobInProgress as exc:
            await service.limiter.refund(principal.user, principal.tenant, decision, len(drafts))
            await self.refuse(principal, drafts, entry_point, exc.http_status, exc.code, started)
            raise
        records = [
            audit_entry(
                principal,
                prompt,
                job_id,
                started,
                status="accepted",
                http_status=202,
                keep_text=service.options.audit_prompt_text,
                entry_point=entry_point,
            )
            for job_id, prompt in drafts
        ]
        now = time.monotonic()
        tickets = []
        for (job_id, prompt), record in zip(drafts, records, strict=True):
            ticket = Ticket(
                principal, job_id, prompt, entry_point, record.id, record.at, started, decision
            )
            self._open[record.id] = _Open(ticket, now)
            tickets.append(ticket)
        try:
            for record in records:
                await service.record(record)
        except BaseException:
            for ticket in tickets:
                self._open.pop(ticket.record_id, None)
            raise
        if admission is not None:
            admission.tickets.extend(tickets)
        return tickets

    def _check_unique(self, tenant: str, job_ids: Sequence[str]) -> None:
        """InvalidRequest for a job id given twice; JobInProgress for one the tenant is
        running now (two runs of one job would share its reservations and checkpoint)."""
        seen: set[str] = set()
        for job_id in job_ids:
            if job_id in seen:
                raise InvalidRequest(f"job_id: {job_id} appears twice in one request")
            seen.add(job_id)
        running = {
            o.ticket.job_id for o in self._open.values() if o.ticket.principal.tenant == tenant
        }
        for job_id in job_ids:
            if job_id in running:
                raise JobInProgress(f"job {job_id} is already running; wait for it to finish")

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
        admission = _admission.get()
        if admission is not None:
            admission.audited = True
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
        """Audit an authenticated request to an LLM entry point whose body did not parse.
        A request whose inputs were admitted before the rest of it failed to parse is closed
        by `settle` instead."""
        admission = _admission.get()
        if admission is not None and admission.tickets:
            return
        principal = getattr(request.state, "principal", None)
        entry_point = entry_point_of(request.url.path)
        if principal is None or entry_point is None or not self._is_llm_request(entry_point):
            return
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            inputs = [body.get("input", body) if isinstance(body, dict) else body]
        drafts = [(new_job_id(), _prompt_of(item)) for item in inputs or [None]]
        await self.refuse(principal, drafts, entry_point, 422, "validation_error")

    def _is_llm_request(self, entry_point: str) -> bool:
        # Without a judge, test-classification runs no model: it is not an LLM request.
        return entry_point != "test-classification" or self.judged()

    # -- run and close -----------------------------------------------------------------
    def claim(self, record_id: str) -> Ticket:
        """The open ticket `record_id`, for the run that starts under it now; RuntimeError for
        a ticket that was never admitted, is closed, or already has its run."""
        held = self._open.get(record_id)
        if held is None or held.claimed:
            raise RuntimeError(f"request {record_id} has no open ticket for a run to claim")
        held.claimed = True
        return held.ticket

    def adopt(self, ticket: Ticket) -> None:
        """Open `ticket`, admitted elsewhere (another replica, or this router before it
        restarted), for the run that takes its job over now: `outcome` closes it once, under
        its own audit record."""
        if ticket.record_id in self._open:
            raise RuntimeError(f"request {ticket.record_id} is open here already")
        self._open[ticket.record_id] = _Open(ticket, time.monotonic(), claimed=True)

    def release(self, ticket: Ticket) -> None:
        """Forget `ticket` without closing it: its job goes on elsewhere (handed over at
        shutdown, or taken over by another replica), which writes its outcome."""
        self._open.pop(ticket.record_id, None)

    @asynccontextmanager
    async def outcome(self, ticket: Ticket) -> AsyncIterator[Run]:
        """Around an admitted request's run: afterwards its tokens are spent and its outcome
        audited, whether it completed, failed, was cancelled or its client left."""
        held = self._open.get(ticket.record_id)
        if held is not None:
            held.claimed = True
        run = Run(ticket)
        try:
            yield run
        except RouterError as exc:
            await self._settle(run, run.ended(exc), exc.http_status, exc.code)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            await self._settle(run, "abandoned", 499, "client_gone")
            raise
        except Exception:
            await self._settle(run, "failed", 500, "internal_error")
            raise
        if run.abandoned:
            await self._settle(run, "abandoned", 499, "client_gone")
        elif run.failure is not None:
            failure = run.failure
            await self._settle(run, run.ended(failure), failure.http_status, failure.code)
        else:
            await self._settle(run, "completed", 200, None)

    @asynccontextmanager
    async def governed(
        self, principal: Principal, graph_input: Mapping[str, Any], entry_point: str
    ) -> AsyncIterator[Run]:
        """Admit one request, and close it when the block ends."""
        [ticket] = await self.admit(principal, [graph_input], entry_point)
        async with self.outcome(ticket) as run:
            yield run

    async def _settle(self, run: Run, status: str, http_status: int, code: str | None) -> None:
        """Close `run`'s ticket in a task of its own: a cancelled caller (its client gone)
        must not cut the outcome record short."""
        task = asyncio.ensure_future(self._close(run, status, http_status, code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        await asyncio.shield(task)

    async def _close(self, run: Run, status: str, http_status: int, code: str | None) -> None:
        ticket, service = run.ticket, self._service
        if self._open.pop(ticket.record_id, None) is None:
            return
        user, tenant = ticket.principal.user, ticket.principal.tenant
        spent = run.tokens
        try:
            if status == "refused":
                # It never ran: its place in the quota is given back.
                await service.limiter.refund(user, tenant, ticket.decision, 1)
            await service.limiter.spend(user, tenant, spent.total_tokens)
        except LimitsUnavailable as exc:
            # The answer is given; its tokens go uncounted, and its audit record says so.
            log.warning("job %s: %s tokens not counted: %s", ticket.job_id, spent, exc.message)
            code = code or "tokens_uncounted"
        record = audit_entry(
            ticket.principal,
            ticket.prompt,
            ticket.job_id,
            ticket.started,
            status=status,
            http_status=http_status,
            keep_text=service.options.audit_prompt_text,
            response=run.out,
            error_code=code,
            entry_id=ticket.record_id,
            entry_point=ticket.entry_point,
        )
        record.at = ticket.accepted_at
        _fill(record, spent, run.model)
        await service.record(record)

    async def settle(
        self, admission: Admission, principal: Principal | None, path: str, http_status: int
    ) -> None:
        """After an HTTP request's response: close its tickets that no run claimed (refused,
        their requests given back, when the response is an error), and audit an LLM request
        refused before admission that nothing audited yet."""
        unclaimed = [
            o.ticket
            for t in admission.tickets
            if (o := self._open.get(t.record_id)) is not None and not o.claimed
        ]
        if unclaimed:
            failed = http_status >= 400
            for t in unclaimed:
                if failed:
                    code = admission.error_code or _http_code(http_status)
                    await self._settle(Run(t), "refused", http_status, code)
                else:
                    await self._settle(Run(t), "abandoned", 499, "client_gone")
            return
        entry_point = entry_point_of(path)
        if (
            admission.audited
            or admission.tickets
            or principal is None
            or entry_point is None
            or http_status < 400
            or not self._is_llm_request(entry_point)
        ):
            return
        code = admission.error_code or _http_code(http_status)
        await self.refuse(principal, [(new_job_id(), "")], entry_point, http_status, code)

    async def close_unclaimed(self, older_than_s: float = UNCLAIMED_S) -> int:
        """Audit as abandoned the tickets no run claimed in time; how many there were."""
        cutoff = time.monotonic() - older_than_s
        stale = [o.ticket for o in self._open.values() if not o.claimed and o.since < cutoff]
        for ticket in stale:
            await self._settle(Run(ticket), "abandoned", 499, "client_gone")
        return len(stale)

    async def shutdown(self) -> None:
        """At shutdown: finish the outcome records being written, then close every ticket
        still open as abandoned by the router."""
        await asyncio.gather(*self._closing, return_exceptions=True)
        for held in list(self._open.values()):
            await self._close(Run(held.ticket), "abandoned", 503, "router_stopped")

    def open_tickets(self) -> int:
        """Admitted requests not yet closed."""
        return len(self._open)


@asynccontextmanager
async def admission_scope() -> AsyncIterator[Admission]:
    """Note what the pipeline does for the HTTP request being answered in this block."""
    admission = Admission()
    token = _admission.set(admission)
    try:
        yield admission
    finally:
        _admission.reset(token)


def _http_code(status: int) -> str:
    return {400: "bad_request", 404: "not_found", 422: "validation_error"}.get(
        status, "http_error" if status < 500 else "internal_error"
    )


#: The `/api/llm` paths that take LLM requests, and the entry point each is audited as.
_ENTRY_POINTS = {
    "/api/llm/process": "process",
    "/api/llm/test-classification": "test-classification",
    "/v1/chat/completions": "openai/chat",
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


async def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


Pipe = Annotated[Pipeline, Depends(get_pipeline)]


def _fill(record: AuditRecord, spent: Usage, model: str | None) -> None:
    record.prompt_tokens = spent.prompt_tokens
    record.completion_tokens = spent.completion_tokens
    if model is not None:
        record.model = model or None
