"""Everything a running router needs, built once from Settings and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.config import (
    ClusterConfig,
    check_policy_models,
    load_cluster_config,
    load_routing_policy,
)
from cluster.merger import MergerAgent
from cluster.pool import LLMPool, PoolOptions
from cluster.prober import HealthProber
from cluster.registry import NodeRegistry
from cluster.router import LLMRouter
from cluster.scheduler import JobScheduler
from cluster.settings import Settings
from policies.classification import RuleClassifier
from policies.placement import Limits
from policies.routing_policy import RoutingPolicy


@dataclass
class RouterRuntime:
    """The router's parts; the graph gets it as context, HTTP handlers through Depends."""

    settings: Settings
    cluster: ClusterConfig
    policy: RoutingPolicy
    router: LLMRouter
    registry: NodeRegistry
    scheduler: JobScheduler
    pool: LLMPool
    merger: MergerAgent

    def prober(self) -> HealthProber:
        """A health prober over this runtime's servers, per the settings."""
        return HealthProber(
            self.cluster,
            self.registry,
            self.pool,
            interval_s=self.settings.health_interval_s,
            timeout_s=self.settings.health_timeout_s,
        )


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
    registry = NodeRegistry(cluster)
    scheduler = JobScheduler(
        cluster,
        registry,
        default_timeout_s=settings.llm_default_timeout,
        limits=Limits(settings.max_waiting_requests, settings.max_kv_cache_usage),
    )
    pool = LLMPool(
        cluster,
        pool_options
        or PoolOptions(
            timeout_s=settings.llm_default_timeout,
            max_retries=settings.llm_max_retries,
            request_logprobs=settings.llm_request_logprobs,
        ),
    )
    return RouterRuntime(
        settings=settings,
        cluster=cluster,
        policy=policy,
        router=LLMRouter(policy, cluster, RuleClassifier(policy)),
        registry=registry,
        scheduler=scheduler,
        pool=pool,
        merger=MergerAgent(pool, settings.ensemble_aggregator),
    )
