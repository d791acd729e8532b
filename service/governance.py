"""What every request goes through on its way in and out: rate limits and the audit record."""

from __future__ import annotations

import math
import time
from typing import Any

from service.audit import AuditRecord, prompt_fingerprint
from service.auth import Principal
from service.ratelimit import Decision


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


def cache_hit(response: dict[str, Any]) -> bool:
    """Whether any answer in the response came from the cache."""
    result = response.get("result") or {}
    return bool(result.get("cache_hit")) or any(
        b.get("cache_hit") for b in result.get("branches") or []
    )


def audit_entry(
    principal: Principal,
    prompt: str,
    job_id: str,
    started: float,
    *,
    status: str,
    http_status: int,
    keep_text: bool,
    response: dict[str, Any] | None = None,
    error_code: str | None = None,
    entry_id: str | None = None,
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
    )
    if entry_id is not None:
        record.id = entry_id
    if response:
        routing = response.get("routing") or {}
        scheduling = response.get("scheduling") or {}
        usage = (response.get("result") or {}).get("usage") or {}
        record.task_type = routing.get("task_type")
        record.model = ",".join(response.get("models_used") or []) or routing.get("model")
        record.node = (scheduling.get("node") or {}).get("node_id")
        record.mode = response.get("execution_mode")
        record.prompt_tokens = int(usage.get("prompt_tokens", 0))
        record.completion_tokens = int(usage.get("completion_tokens", 0))
        record.cache_hit = cache_hit(response)
    return record
