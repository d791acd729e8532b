"""What auditing and rate limiting add to a request, embedded and on Redis + PostgreSQL.

    uv run python bench/governance_overhead.py [--requests 1000]

Times, in one run, the exact calls `POST /api/llm/process` makes per request: the rate
limiter's admit + spend, and the audit write (SQLite file and in-process counters; PostgreSQL
and Redis on this machine). Needs the local PostgreSQL and Redis for the shared rows.
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

from app.backends import open_audit_store
from bench.common import print_table
from service.audit import AuditRecord
from service.ratelimit import Counters, LimitsPolicy, MemoryCounters, RateLimiter, RedisCounters

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


async def measure(n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    state = Path(tempfile.mkdtemp())
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    backends: list[tuple[str, Counters, str | None]] = [
        ("embedded", MemoryCounters(), None),
        ("redis+postgres", RedisCounters(REDIS), POSTGRES),
    ]
    for name, counters, database in backends:
        limiter = RateLimiter(LimitsPolicy(), counters)
        store = await open_audit_store(database, state)
        limits_ms, audit_ms = [], []
        for i in range(n + 50):
            started = time.perf_counter()
            await limiter.admit(f"user{i % 10}", tenant)
            await limiter.spend(f"user{i % 10}", tenant, 120)
            mid = time.perf_counter()
            await store.write(
                AuditRecord(
                    tenant=tenant,
                    user_id="u",
                    prompt_sha256="0" * 64,
                    prompt_chars=42,
                    status="completed",
                    http_status=200,
                )
            )
            end = time.perf_counter()
            if i >= 50:
                limits_ms.append((mid - started) * 1000)
                audit_ms.append((end - mid) * 1000)
        samples[f"rate limits, {name}"] = limits_ms
        samples[f"audit write, {name}"] = audit_ms
        await store.close()
        await counters.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    samples = asyncio.run(measure(args.requests))
    print_table(samples)


if __name__ == "__main__":
    main()
