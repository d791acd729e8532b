"""The specification's Python accessors, over one lazily built default runtime.

They are conveniences: anything that needs its own configuration calls `build_runtime`.
"""

from __future__ import annotations

from functools import lru_cache

from cluster.merger import MergerAgent
from cluster.pool import LLMPool
from cluster.router import LLMRouter
from cluster.runtime import RouterRuntime, build_runtime
from cluster.scheduler import Job, JobScheduler
from policies.types import MergeStrategy, NodeStatus, TaskType

__all__ = [
    "Job",
    "MergeStrategy",
    "NodeStatus",
    "TaskType",
    "default_runtime",
    "get_job_scheduler",
    "get_llm_pool",
    "get_llm_router",
    "get_merger_agent",
]


@lru_cache(maxsize=1)
def default_runtime() -> RouterRuntime:
    """The runtime built from the process settings (environment and default files)."""
    return build_runtime()


def get_llm_router() -> LLMRouter:
    return default_runtime().router


def get_job_scheduler() -> JobScheduler:
    return default_runtime().scheduler


def get_llm_pool() -> LLMPool:
    return default_runtime().pool


def get_merger_agent() -> MergerAgent:
    return default_runtime().merger
