"""Every storage backend, chosen in one place: embedded (memory, SQLite) on one machine,
Redis and PostgreSQL when the settings name them, so that replicas share them."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from app.settings import Settings
from cluster.cache import MemoryCache, RedisCache, ResponseCache
from cluster.checkpoints import postgres_checkpointer, sqlite_checkpointer
from cluster.events import RedisEvents
from cluster.ledger import Ledger, LocalLedger
from cluster.node_sync import FileNodeStore, NodeStore, RedisNodeStore
from cluster.redis_ledger import RedisLedger
from graph.records import CHECKPOINTED_TYPES
from service.audit import AuditStore, SqliteAuditStore
from service.audit_spool import SpooledAuditStore
from service.job_stores import PostgresJobStore, SqliteJobStore
from service.jobs import JobStore
from service.ratelimit import Counters, MemoryCounters, RedisCounters

_POSTGRES = ("postgres://", "postgresql://")
log = logging.getLogger(__name__)


def response_cache(settings: Settings) -> ResponseCache:
    """Redis when `REDIS_URL` is set, else a bounded LRU in the process."""
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.cache_ttl_s)
    return MemoryCache(settings.cache_ttl_s)


def control_plane(settings: Settings, replica: str) -> tuple[Ledger, NodeStore]:
    """Capacity, queue and node state: in Redis when `REDIS_URL` is set (replicas act as one
    router), else this process's, with the operator's node state in a file."""
    if settings.redis_url:
        if not settings.database_url:
            log.warning(
                "REDIS_URL without DATABASE_URL: replicas share capacity, queue and node "
                "state, but each keeps its own audit trail and asynchronous jobs"
            )
        ledger = RedisLedger(
            settings.redis_url, settings.redis_prefix, replica, settings.lease_ttl_s
        )
        events = RedisEvents(settings.redis_url, f"{settings.redis_prefix}:events", replica)
        return ledger, RedisNodeStore(settings.redis_url, settings.redis_prefix, events)
    return LocalLedger(), FileNodeStore(settings.state_dir / "node-state.json")


def rate_counters(settings: Settings) -> Counters:
    """Redis when `REDIS_URL` is set, else counters in the process."""
    if settings.redis_url:
        return RedisCounters(settings.redis_url)
    return MemoryCounters()


async def open_job_store(settings: Settings) -> JobStore:
    """PostgreSQL for a postgresql:// `DATABASE_URL` (any replica answers for, and takes over,
    any job), else SQLite under the state directory (this machine's routers)."""
    url = settings.database_url
    if url and url.startswith(_POSTGRES):
        return await PostgresJobStore.open(url)
    return await SqliteJobStore.open(settings.state_dir / "jobs.sqlite")


async def open_audit_store(database_url: str | None, state_dir: Path) -> AuditStore:
    """PostgreSQL for a postgresql:// URL (spooling to `state_dir` while it is away), else
    SQLite under `state_dir`."""
    if database_url and database_url.startswith(_POSTGRES):
        return await SpooledAuditStore.open(database_url, state_dir / "audit-spool.sqlite")
    return await SqliteAuditStore.open(state_dir / "audit.sqlite")


def checkpointer(
    settings: Settings,
) -> AbstractAsyncContextManager[BaseCheckpointSaver[str]]:
    """PostgreSQL for a postgresql:// `ROUTER_CHECKPOINT_DSN`, else SQLite under the state
    directory; either revives only the graph state's own types."""
    serde = JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)
    dsn = settings.checkpoint_dsn
    if dsn and dsn.startswith(_POSTGRES):
        return postgres_checkpointer(dsn, serde)
    return sqlite_checkpointer(settings.state_dir / "checkpoints.sqlite", serde)
