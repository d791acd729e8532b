"""What every request goes through on its way in and out: rate limits and the audit record."""

from __future__ import annotations

import math
import time

from graph.state import RouterOutput
from service.audit import AuditRecord, prompt_fingerprint
from service.auth import Principal
from service.ratelimit import Decision
from service.responses import models_used


def rate_headers(decision: Decision) -> dict[str, str]:
    """X-RateLimit-* for a response; Retry-After too when refused."""
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(decision.reset_s)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.reset_s)))
    return headers


def audit_entry(
    principal: Principal,
    prompt: str,
    job_id: str,
    started: float,
    *,
    status: str,
    http_status: int,
    keep_text: bool,
    response: RouterOutput | None = None,
    error_code: str | None = None,
    entry_id: str | None = None,
    entry_point: str | None = None,
) -> AuditRecord:
    """The audit record of one request (a response, when there is one, fills in the routing)."""
    digest, length = prompt_fingerprint(prompt)
    record = AuditRecord(
        tenant=principal.tenant,
        user_id=principal.user,
        prompt_sha256=digest,
        prompt_chars=length,
        prompt_text=prompt if keep_text else None,
        status=status,
        http_status=http_status,
        job_id=job_id,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        error_code=error_code,
        entry_point=entry_point,
    )
    if entry_id is not None:
        record.id = entry_id
    if response:
        routing = response.get("routing")
        scheduling = response.get("scheduling")
        result = response.get("result")
        mode = response.get("execution_mode")
        record.task_type = None if routing is None else routing.task_type.value
        record.model = ",".join(models_used(response)) or (
            None if routing is None else routing.model
        )
        record.node = None if scheduling is None else scheduling.node.node_id
        record.mode = None if mode is None else str(mode)
        usage = response.get("usage")
        if usage is not None:
            record.prompt_tokens = usage.prompt_tokens
            record.completion_tokens = usage.completion_tokens
        if result is not None:
            record.cache_hit = result.cache_hit
            if result.call is not None:
                # The node that answered: another than scheduled when the call failed over.
                record.node = result.call.node_id
    return record
