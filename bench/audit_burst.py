"""How fast the audit trail takes a burst of records written at once, as a burst of requests
writes them: SQLite, PostgreSQL with group commit (the store), and PostgreSQL with one
transaction per record over the same 20-connection pool (what the store did before).

    uv run python bench/audit_burst.py [--rounds 5]

Each round times one burst of every size on every path, interleaved, so the ratios between
paths come from the same minutes of this machine. Speed-up: over a transaction each, same burst.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from cluster.postgres import open_pool
from service.audit import POSTGRES_UPSERT, AuditRecord, PostgresAuditStore, SqliteAuditStore

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SIZES = (1, 100, 500)

Write = Callable[[AuditRecord], Awaitable[None]]


async def per_record(url: str) -> tuple[Write, Callable[[], Awaitable[None]]]:
    """One INSERT, one transaction, per record, over a pool as wide as the store's."""
    pool = await open_pool(url, max_size=20)
    await (await PostgresAuditStore.open(url)).close()  # the table, if missing

    async def write(record: AuditRecord) -> None:
        async with pool.connection() as conn:
            await conn.execute(POSTGRES_UPSERT, record.row())

    return write, pool.close


async def measure(rounds: int) -> dict[str, dict[int, list[float]]]:
    sqlite = await SqliteAuditStore.open(Path(tempfile.mkdtemp()) / "audit.sqlite")
    grouped = await PostgresAuditStore.open(POSTGRES)
    single, close_single = await per_record(POSTGRES)
    paths: dict[str, Write] = {
        "SQLite, group commit": sqlite.write,
        "PostgreSQL, group commit": grouped.write,
        "PostgreSQL, a transaction each": single,
    }
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    times: dict[str, dict[int, list[float]]] = {name: {n: [] for n in SIZES} for name in paths}
    for round_ in range(rounds + 1):  # the first round warms connections and is dropped
        for n in SIZES:
            for name, write in paths.items():
                records = [
                    AuditRecord(tenant, "bench", "0" * 64, 42, "completed", 200) for _ in range(n)
                ]
                started = time.perf_counter()
                await asyncio.gather(*(write(r) for r in records))
                if round_:
                    times[name][n].append((time.perf_counter() - started) * 1000)
    await sqlite.close()
    await grouped.close()
    await close_single()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times = asyncio.run(measure(args.rounds))
    print("| path                             | burst | median ms | records/s | speed-up |")
    print("|----------------------------------|-------|-----------|-----------|----------|")
    for name, by_size in times.items():
        for n, samples in by_size.items():
            median = percentile(samples, 50)
            base = percentile(times["PostgreSQL, a transaction each"][n], 50)
            print(
                f"| {name:<32} | {n:>5} | {median:>9.1f} | {n / median * 1000:>9.0f} "
                f"| {base / median:>7.1f}x |"
            )


if __name__ == "__main__":
    main()
