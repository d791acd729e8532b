"""Everything a running router needs, built once from Settings and passed explicitly."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

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
from cluster.router import LLMRouter, TaskClassifier
from cluster.scheduler import JobScheduler
from cluster.settings import Settings
from policies.classification import RuleClassifier
from policies.placement import Limits, Weights
from policies.routing_policy import RoutingPolicy
from routing.judge import LLMJudge
from routing.layered import LayeredClassifier
from service.cache import MemoryCache, RedisCache, ResponseCache

log = logging.getLogger(__name__)


def build_classifier(
    settings: Settings, policy: RoutingPolicy
) -> RuleClassifier | LayeredClassifier:
    """The classifier the settings ask for."""
    if settings.classifier == "rules":
        return RuleClassifier(policy)
    return LayeredClassifier.load(policy)


def describe_classifier(classifier: TaskClassifier) -> dict[str, object]:
    if isinstance(classifier, LayeredClassifier):
        return classifier.describe()
    return {"active": "rules", "layers": ["override", "rules"], "unavailable_reason": None}


@dataclass
class PolicyFile:
    """The routing policy file and what happened when it was last (re)loaded."""

    path: Path
    mtime: float
    loaded_at: float
    last_error: str | None = None


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
    policy_file: PolicyFile
    cache: ResponseCache

    def reload_policy(self) -> bool:
        """Load the policy file again if it changed; a broken one is refused, the old stays.

        Returns whether a new policy took effect.
        """
        path = self.policy_file.path
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            self.policy_file.last_error = f"{path}: {exc.strerror}"
            return False
        if mtime == self.policy_file.mtime:
            return False
        self.policy_file.mtime = mtime
        try:
            policy = load_routing_policy(path)
            check_policy_models(policy, self.cluster)
        except ValueError as exc:
            self.policy_file.last_error = " ".join(str(exc).split())
            log.error("routing policy %s refused, the previous one stays: %s", path, exc)
            return False
        classifier = self.router.classifier
        if isinstance(classifier, LayeredClassifier):
            classifier = classifier.with_policy(policy)
        else:
            classifier = RuleClassifier(policy)
        self.policy = policy
        self.router.policy = policy
        self.router.classifier = classifier
        self.router.judge = LLMJudge(self.pool, policy.judge)
        self.policy_file.loaded_at = time.time()
        self.policy_file.last_error = None
        log.info("routing policy %s reloaded", path)
        return True

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
    policy_file = PolicyFile(
        settings.routing_config, settings.routing_config.stat().st_mtime, time.time()
    )
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
        limits=Limits(
            settings.max_waiting_requests,
            settings.max_kv_cache_usage,
            urgent_slots=settings.urgent_slots,
        ),
        weights=Weights(**cluster.placement.model_dump()),
        aging_s=settings.queue_aging_s,
        max_queue=settings.queue_max_length,
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
        router=LLMRouter(
            policy, cluster, build_classifier(settings, policy), LLMJudge(pool, policy.judge)
        ),
        registry=registry,
        scheduler=scheduler,
        pool=pool,
        merger=MergerAgent(pool, settings.ensemble_aggregator),
        policy_file=policy_file,
        cache=(
            RedisCache(settings.redis_url, settings.cache_ttl_s)
            if settings.redis_url
            else MemoryCache(settings.cache_ttl_s)
        ),
    )
