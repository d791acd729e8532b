"""What the request pipeline adds to a request, embedded and on Redis + PostgreSQL.

    uv run python bench/governance_overhead.py [--requests 1000]

Times, in one run, per request: the whole pipeline around a run that does nothing
(validate, admit against the rate limits, audit "accepted", spend tokens, audit the outcome),
and two of its parts alone, the rate limiter's admit + spend and one audit write. Embedded:
in-process counters and the SQLite audit file; shared: this machine's Redis and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.backends import open_audit_store, rate_counters
from app.runtime import build_runtime
from app.serving import build_service
from app.settings import Settings
from bench.common import print_table
from service.audit import AuditRecord
from service.auth import Principal
from service.pipeline import Pipeline
from service.ratelimit import LimitsPolicy, Quota, QuotaPair, RateLimiter

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
WARMUP = 50
ROOMY = QuotaPair(
    user=Quota(requests_per_minute=10**9, tokens_per_minute=10**12),
    tenant=Quota(requests_per_minute=10**9, tokens_per_minute=10**12),
)


async def measure(n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    state = Path(tempfile.mkdtemp())
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    for name, shared in (("embedded", False), ("redis+postgres", True)):
        settings = Settings(
            classifier="rules",
            jwt_secret="bench-secret-0123456789abcdef0123456789",
            state_dir=state / name,
            redis_url=REDIS if shared else None,
            database_url=POSTGRES if shared else None,
        )
        service = build_service(build_runtime(settings))
        service.limiter = RateLimiter(LimitsPolicy(default=ROOMY), rate_counters(settings))
        service.audit = await open_audit_store(settings.database_url, settings.state_dir)
        pipeline = Pipeline(service)
        principal = Principal("bench", tenant)
        whole, limits, audit = [], [], []
        for i in range(n + WARMUP):
            request = {"prompt": f"Summarize alert {i}", "task_type": "general_reasoning"}
            started = time.perf_counter()
            async with pipeline.governed(principal, request, "bench"):
                pass
            mid = time.perf_counter()
            await service.limiter.admit(principal.user, tenant)
            await service.limiter.spend(principal.user, tenant, 120)
            end = time.perf_counter()
            await service.record(
                AuditRecord(tenant, "bench", "0" * 64, 42, "completed", 200, entry_point="bench")
            )
            last = time.perf_counter()
            if i >= WARMUP:
                whole.append((mid - started) * 1000)
                limits.append((end - mid) * 1000)
                audit.append((last - end) * 1000)
        samples[f"whole pipeline, {name}"] = whole
        samples[f"  limits alone, {name}"] = limits
        samples[f"  audit write, {name}"] = audit
        await service.audit.close()
        await service.limiter.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    samples = asyncio.run(measure(args.requests))
    print_table(samples)


if __name__ == "__main__":
    main()
