"""The specification's Python API: thin adapters over one lazily built default runtime.

They are conveniences for scripts; anything that needs its own configuration builds a
runtime with `app.runtime.build_runtime` and uses the core parts directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from app.runtime import RouterRuntime, build_runtime
from cluster.calls import ReservedCalls
from cluster.completion import branch_label
from cluster.config import ClusterConfig
from cluster.merger import MergerAgent
from cluster.scheduler import JobScheduler
from graph.records import new_job_id
from policies.errors import InvalidRequest, RouterError
from policies.merge import Candidate, Expectation, MergeReport, local_strategy
from policies.types import ExecutionMode, MergeStrategy, NodeStatus, TaskType
from routing.router import LLMRouter
from service.responses import call_json, error_json, merge_json, node_ref_json, routing_json

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


@dataclass
class Job:
    """A unit of work for the cluster, as the specification's Python API builds it."""

    job_id: str
    model: str
    priority: int = 3
    estimated_vram_gb: float | None = None
    requires_parallel: bool = False
    requires_chaining: bool = False
    payload: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None


class Router:
    """`route_request`: a request dict in, a routing decision dict out."""

    def __init__(self, router: LLMRouter) -> None:
        self._router = router

    def route_request(self, request: dict[str, Any]) -> dict[str, Any]:
        if "prompt" not in request:
            raise InvalidRequest("route_request needs a 'prompt'")
        decision = self._router.decide(
            str(request["prompt"]),
            list(request.get("task_hints") or []),
            task_type=request.get("task_type"),
            model=request.get("model"),
            priority=request.get("priority"),
        )
        return routing_json(decision)


class Scheduler:
    """`schedule_job` reserves capacity for a Job (waiting if needed); `complete_job` frees it."""

    def __init__(self, scheduler: JobScheduler) -> None:
        self._scheduler = scheduler

    async def schedule_job(self, job: Job) -> dict[str, Any]:
        scheduler = self._scheduler
        started = time.monotonic()
        mode = ExecutionMode.CHAINED if job.requires_chaining else ExecutionMode.SINGLE
        leases = [
            await scheduler.acquire(
                job.job_id,
                [job.model],
                priority=job.priority,
                vram_gb=job.estimated_vram_gb,
                timeout_s=job.timeout_s,
            )
        ]
        waited = time.monotonic() - started
        if job.requires_parallel:
            mode = ExecutionMode.PARALLEL
            # One more lease on each other node that serves the model and has room.
            while (
                extra := await scheduler.reserve(
                    job.job_id,
                    [job.model],
                    priority=job.priority,
                    vram_gb=job.estimated_vram_gb,
                    exclude_nodes=frozenset(lease.node_id for lease in leases),
                )
            ) is not None:
                leases.append(extra)
        refs = [node_ref_json(scheduler.node_ref(lease)) for lease in leases]
        return {
            "job_id": job.job_id,
            "execution_mode": mode.value,
            "queued": waited > 0.001,
            "queue_wait_s": round(waited, 4),
            "node": refs[0],
            "nodes": refs,
            "reason": leases[0].reason,
        }

    def complete_job(self, job_id: str) -> int:
        """Release what `schedule_job` reserved for this job; returns how many reservations."""
        return self._scheduler.release_job(job_id)

    @asynccontextmanager
    async def running(self, job: Job) -> AsyncIterator[dict[str, Any]]:
        """Schedule a job for the duration of a `with` block."""
        try:
            yield await self.schedule_job(job)
        finally:
            self.complete_job(job.job_id)


class Pool:
    """`call_model` and `call_multiple_models`, each call on reserved capacity."""

    def __init__(self, calls: ReservedCalls, cluster: ClusterConfig) -> None:
        self._calls = calls
        self._cluster = cluster

    async def call_model(
        self, model_name: str, prompt: str, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One chat completion in OpenAI's shape; RouterError subclasses on failure."""
        return call_json(await self._calls.call(new_job_id(), model_name, prompt, parameters))

    async def call_multiple_models(
        self,
        model_names: Sequence[str],
        prompt: str,
        parameters: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Call several models concurrently; a failed call becomes `{model_name, error}`."""
        for name in model_names:
            self._cluster.require_model(name)
        outcomes = await asyncio.gather(
            *(self.call_model(name, prompt, parameters) for name in model_names),
            return_exceptions=True,
        )
        results: list[dict[str, Any]] = []
        for name, outcome in zip(model_names, outcomes, strict=True):
            if isinstance(outcome, RouterError):
                results.append({"model_name": name, "error": error_json(outcome.info())})
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(outcome)
        return results


def candidate_from_dict(result: dict[str, Any], index: int) -> Candidate:
    """A merge candidate from a `call_model` result or a `{model, response, confidence}` dict."""
    if "choices" in result:
        choice = result["choices"][0]
        text = choice["message"]["content"] or ""
        finish = choice.get("finish_reason")
    else:
        text = str(result.get("response", ""))
        finish = result.get("finish_reason")
    model = str(result.get("model_name") or result.get("model") or f"answer {index + 1}")
    label = str(result.get("label") or model)
    if result.get("node_id") and "label" not in result:
        label = branch_label(model, str(result["node_id"]))
    conf = result.get("confidence")
    return Candidate(label, text, model, None if conf is None else float(conf), finish)


class Merger:
    """`merge_results` (and `amerge_results` in async code) by a named strategy."""

    def __init__(self, merger: MergerAgent) -> None:
        self._merger = merger

    async def amerge_results(
        self,
        results: list[dict[str, Any]],
        strategy: MergeStrategy | str = MergeStrategy.CONSENSUS,
        question: str = "",
    ) -> dict[str, Any]:
        parsed = MergeStrategy.parse(strategy) if isinstance(strategy, str) else strategy
        candidates = [candidate_from_dict(r, i) for i, r in enumerate(results)]
        merged = await self._merger.amerge(
            candidates, parsed, job_id=new_job_id(), priority=3, question=question
        )
        return merge_json(MergeReport.of(merged.outcome, candidates))

    def merge_results(
        self,
        results: list[dict[str, Any]],
        strategy: MergeStrategy | str = MergeStrategy.CONSENSUS,
        question: str = "",
    ) -> dict[str, Any]:
        """Synchronous merge, as the specification calls it; use `amerge_results` in async code."""
        parsed = MergeStrategy.parse(strategy) if isinstance(strategy, str) else strategy
        if parsed is not MergeStrategy.ENSEMBLE:
            candidates = [candidate_from_dict(r, i) for i, r in enumerate(results)]
            outcome = local_strategy(parsed)(candidates, Expectation())
            return merge_json(MergeReport.of(outcome, candidates))
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.amerge_results(results, parsed, question))
        raise RuntimeError("merge_results with ensemble inside an event loop: await amerge_results")


@cache
def default_runtime() -> RouterRuntime:
    """The runtime built from the process settings (environment and default files)."""
    return build_runtime()


def get_llm_router() -> Router:
    return Router(default_runtime().router)


def get_job_scheduler() -> Scheduler:
    return Scheduler(default_runtime().scheduler)


def get_llm_pool() -> Pool:
    rt = default_runtime()
    return Pool(rt.calls, rt.cluster)


def get_merger_agent() -> Merger:
    return Merger(default_runtime().merger)
