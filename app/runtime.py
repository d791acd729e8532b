"""Everything a running router needs, built once from Settings and passed explicitly."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from app.backends import control_plane, response_cache
from app.settings import Settings
from app.tracing import otlp_provider
from cluster.calls import ReservedCalls
from cluster.config import (
    ClusterConfig,
    check_policy_models,
    load_cluster_config,
    load_routing_policy,
)
from cluster.health import HealthBoard
from cluster.merger import MergerAgent
from cluster.node_sync import NodeSync
from cluster.pool import LLMPool, PoolOptions
from cluster.prober import HealthProber
from cluster.registry import NodeRegistry
from cluster.scheduler import JobScheduler
from graph.context import RouterContext
from policies.classification import RuleClassifier
from policies.placement import Limits, Weights
from policies.routing_policy import RoutingPolicy
from routing.judge import Answer, LLMJudge, ModelCaller
from routing.layered import LayeredClassifier
from routing.router import LLMRouter, PolicySource, TaskClassifier

log = logging.getLogger(__name__)


def judge_caller(calls: ReservedCalls) -> ModelCaller:
    """The judge's way to a model: a reserved call, answered as text and tokens."""

    async def call(
        model: str,
        prompt: str,
        parameters: dict[str, Any],
        *,
        system: str,
        job_id: str,
        priority: int,
    ) -> Answer:
        result = await calls.call(
            job_id, model, prompt, parameters, system=system, priority=priority
        )
        return Answer(result.completion.content, result.completion.usage)

    return call


def build_classifier(settings: Settings, policy: RoutingPolicy) -> TaskClassifier:
    """The classifier the settings ask for."""
    if settings.classifier == "rules":
        return RuleClassifier(policy)
    return LayeredClassifier.load(policy)


@dataclass
class RouterRuntime:
    """The router's parts; the graph gets `context`, HTTP handlers the service built on it."""

    settings: Settings
    cluster: ClusterConfig
    health: HealthBoard
    registry: NodeRegistry
    calls: ReservedCalls
    context: RouterContext
    """What every graph run receives: the router, scheduler, pool, merger and cache."""
    node_sync: NodeSync
    """Node state kept between restarts, and shared by replicas."""
    replica: str
    """This process's id among the replicas (in the ledger, on the jobs it runs, in logs)."""
    tracing: TracerProvider | None = None
    """Exports the graph's spans, when OpenTelemetry is on; flushed when the service stops."""

    @property
    def router(self) -> LLMRouter:
        return self.context.router

    @property
    def scheduler(self) -> JobScheduler:
        return self.context.scheduler

    @property
    def pool(self) -> LLMPool:
        return self.context.pool

    @property
    def merger(self) -> MergerAgent:
        return self.context.merger

    def reload_policy(self) -> bool:
        """Load the policy file again if it changed; a broken one is refused, the old stays.

        Returns whether a new policy took effect.
        """
        source = self.router.source
        assert source is not None, "a runtime's router knows its policy file"
        try:
            mtime = source.path.stat().st_mtime
        except OSError as exc:
            source.last_error = f"{source.path}: {exc.strerror}"
            return False
        if mtime == source.mtime:
            return False
        source.mtime = mtime
        try:
            policy = load_routing_policy(source.path)
            check_policy_models(policy, self.cluster)
        except ValueError as exc:
            source.last_error = " ".join(str(exc).split())
            log.error("routing policy %s refused, the previous one stays: %s", source.path, exc)
            return False
        self.router.use_policy(policy, LLMJudge(judge_caller(self.calls), policy.judge))
        source.loaded_at = time.time()
        source.last_error = None
        log.info("routing policy %s reloaded", source.path)
        return True

    def prober(self) -> HealthProber:
        """A health prober over this runtime's servers, per the settings."""
        return HealthProber(
            self.cluster,
            self.registry,
            interval_s=self.settings.health_interval_s,
            timeout_s=self.settings.health_timeout_s,
        )

    async def aclose(self) -> None:
        """Close the pool's connections, the cache's, the capacity ledger's and the node
        state's, and stop the classification thread."""
        await self.scheduler.close()
        await self.node_sync.close()
        await self.pool.aclose()
        await self.context.cache.close()
        await asyncio.to_thread(self.router.close)


def build_runtime(
    settings: Settings | None = None, pool_options: PoolOptions | None = None
) -> RouterRuntime:
    """Load and cross-check the config files, then wire the parts; ValueError names the field."""
    settings = settings or Settings()
    cluster = load_cluster_config(settings.cluster_config)
    overrides = settings.node_url_overrides()
    if overrides:
        cluster = cluster.with_node_urls(overrides)
    policy = load_routing_policy(settings.routing_config)
    check_policy_models(policy, cluster)
    if settings.ensemble_aggregator not in cluster.models:
        raise ValueError(
            f"ensemble_aggregator: unknown model {settings.ensemble_aggregator!r}; "
            f"valid: {', '.join(cluster.models)}"
        )
    health = HealthBoard(cluster, call_down_s=settings.call_failure_hold_s)
    registry = NodeRegistry(cluster, health)
    replica = uuid.uuid4().hex[:12]
    ledger, node_store = control_plane(settings, replica)
    scheduler = JobScheduler(
        cluster,
        registry,
        default_timeout_s=settings.llm_default_timeout,
        limits=Limits(
            settings.max_waiting_requests,
            settings.max_kv_cache_usage,
            urgent_slots=settings.urgent_slots,
        ),
        weights=Weights(**cluster.placement.model_dump()),
        aging_s=settings.queue_aging_s,
        max_queue=settings.queue_max_length,
        ledger=ledger,
    )
    pool = LLMPool(
        cluster,
        pool_options
        or PoolOptions(
            timeout_s=settings.llm_default_timeout,
            max_retries=settings.llm_max_retries,
            request_logprobs=settings.llm_request_logprobs,
        ),
        health,
    )
    calls = ReservedCalls(scheduler, pool)
    source = PolicySource(
        settings.routing_config, settings.routing_config.stat().st_mtime, time.time()
    )
    router = LLMRouter(
        policy,
        list(cluster.models),
        build_classifier(settings, policy),
        LLMJudge(judge_caller(calls), policy.judge),
        source,
    )
    tracing = (
        None
        if settings.otel_exporter_otlp_endpoint is None
        else otlp_provider(str(settings.otel_exporter_otlp_endpoint), replica)
    )
    context = RouterContext(
        tracer=None if tracing is None else tracing.get_tracer("gb10-router"),
        router=router,
        scheduler=scheduler,
        pool=pool,
        merger=MergerAgent(calls, settings.ensemble_aggregator),
        cache=response_cache(settings),
        enable_parallel=settings.llm_enable_parallel,
        max_parallel_jobs=settings.llm_max_parallel_jobs,
    )
    return RouterRuntime(
        settings=settings,
        cluster=cluster,
        health=health,
        registry=registry,
        calls=calls,
        context=context,
        node_sync=NodeSync(registry, node_store, shared=ledger.shared),
        replica=replica,
        tracing=tracing,
    )
