"""Process settings: file locations and the specification's environment overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cluster.config import CONFIG_DIR


class Settings(BaseSettings):
    """Router settings; explicit arguments win over the environment, which wins over defaults."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    cluster_config: Path = Field(
        default=CONFIG_DIR / "cluster.yaml", validation_alias="ROUTER_CLUSTER_CONFIG"
    )
    """The cluster file."""
    routing_config: Path = Field(
        default=CONFIG_DIR / "routing.yaml", validation_alias="ROUTER_ROUTING_CONFIG"
    )
    """The routing policy file."""
    llm_node_1_url: AnyHttpUrl | None = Field(
        default=None, validation_alias=AliasChoices("LLM_NODE_1_URL", "llm_node_1_url")
    )
    """Overrides the first node's URL; all its models follow."""
    llm_node_2_url: AnyHttpUrl | None = Field(
        default=None, validation_alias=AliasChoices("LLM_NODE_2_URL", "llm_node_2_url")
    )
    """Overrides the second node's URL; all its models follow."""
    llm_enable_parallel: bool = Field(
        default=True, validation_alias=AliasChoices("LLM_ENABLE_PARALLEL", "llm_enable_parallel")
    )
    """When false, parallel requests run as single jobs on one model."""
    llm_max_parallel_jobs: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias=AliasChoices("LLM_MAX_PARALLEL_JOBS", "llm_max_parallel_jobs"),
    )
    """Most branches one parallel request fans out to."""
    llm_default_timeout: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices("LLM_DEFAULT_TIMEOUT", "llm_default_timeout"),
    )
    """Seconds a model call, and a job's wait for capacity, may take."""
    llm_max_retries: int = Field(
        default=1, ge=0, le=10, validation_alias=AliasChoices("LLM_MAX_RETRIES", "llm_max_retries")
    )
    """Retries of a failed model call inside ChatOpenAI."""
    llm_request_logprobs: bool = Field(
        default=True,
        validation_alias=AliasChoices("LLM_REQUEST_LOGPROBS", "llm_request_logprobs"),
    )
    """Ask backends for token logprobs, from which answer confidence is derived."""
    ensemble_aggregator: str = Field(
        default="deepseek",
        validation_alias=AliasChoices("ROUTER_ENSEMBLE_MODEL", "ensemble_aggregator"),
    )
    """Model that synthesises answers for the ensemble merge."""

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ROUTER_JWT_SECRET", "jwt_secret")
    )
    """HS256 secret that signs and checks bearer tokens."""
    api_keys_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("ROUTER_API_KEYS_FILE", "api_keys_file")
    )
    """YAML file of static API keys, each with user, tenant and roles."""
    max_prompt_chars: int = Field(
        default=100_000,
        ge=1,
        validation_alias=AliasChoices("ROUTER_MAX_PROMPT_CHARS", "max_prompt_chars"),
    )
    """Longest prompt accepted; longer ones get 422."""
    max_items: int = Field(
        default=10_000, ge=1, validation_alias=AliasChoices("ROUTER_MAX_ITEMS", "max_items")
    )
    """Most batch items one request may carry."""

    health_interval_s: float = Field(
        default=2.0,
        ge=0,
        validation_alias=AliasChoices("ROUTER_HEALTH_INTERVAL_S", "health_interval_s"),
    )
    """Seconds between health and metrics probes of every model server; 0 turns them off."""
    call_failure_hold_s: float = Field(
        default=5.0,
        ge=0,
        validation_alias=AliasChoices("ROUTER_CALL_FAILURE_HOLD_S", "call_failure_hold_s"),
    )
    """Seconds a model server whose call failed (unreachable, 5xx) gets no new work, unless
    a probe finds it served sooner; 0 never takes it out on a call failure."""
    health_timeout_s: float = Field(
        default=1.0,
        gt=0,
        validation_alias=AliasChoices("ROUTER_HEALTH_TIMEOUT_S", "health_timeout_s"),
    )
    """A probe slower than this counts as a failure."""
    telemetry_max_age_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias=AliasChoices("ROUTER_TELEMETRY_MAX_AGE_S", "telemetry_max_age_s"),
    )
    """Telemetry older than this counts as unknown: the node gets no work (probes on only)."""
    max_waiting_requests: float = Field(
        default=8,
        ge=0,
        validation_alias=AliasChoices("ROUTER_MAX_WAITING_REQUESTS", "max_waiting_requests"),
    )
    """A node whose vLLM queues hold more waiting requests is at capacity."""
    max_kv_cache_usage: float = Field(
        default=0.95,
        ge=0,
        le=1,
        validation_alias=AliasChoices("ROUTER_MAX_KV_CACHE_USAGE", "max_kv_cache_usage"),
    )
    """A node whose KV cache is fuller than this (0-1) is at capacity."""
    urgent_slots: int = Field(
        default=2,
        ge=0,
        validation_alias=AliasChoices("ROUTER_URGENT_SLOTS", "urgent_slots"),
    )
    """Jobs over a node's `max_jobs` that only priority-1 work may start."""

    queue_aging_s: float = Field(
        default=30.0, ge=0, validation_alias=AliasChoices("ROUTER_QUEUE_AGING_S", "queue_aging_s")
    )
    """A waiting job gains one priority level per this many seconds (0: no aging)."""
    queue_max_length: int = Field(
        default=1000,
        ge=1,
        validation_alias=AliasChoices("ROUTER_QUEUE_MAX_LENGTH", "queue_max_length"),
    )
    """Most jobs waiting for capacity; more are refused with 429."""
    state_dir: Path = Field(
        default=Path(".gb10-router"), validation_alias=AliasChoices("ROUTER_STATE_DIR", "state_dir")
    )
    """Where embedded state lives (the SQLite checkpoint file of durable chains)."""
    checkpoint_dsn: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ROUTER_CHECKPOINT_DSN", "checkpoint_dsn"),
    )
    """A postgresql:// URL for chain checkpoints; SQLite under state_dir when empty."""
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    """PostgreSQL for the audit trail (shared by replicas); SQLite under state_dir when empty."""
    job_lease_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        validation_alias=AliasChoices("ROUTER_JOB_LEASE_S", "job_lease_s"),
    )
    """How long an asynchronous job stays its replica's without a heartbeat: a job whose
    replica died is taken over by another (the same database) this long after."""
    job_heartbeat_s: float = Field(
        default=1.0,
        gt=0,
        validation_alias=AliasChoices("ROUTER_JOB_HEARTBEAT_S", "job_heartbeat_s"),
    )
    """Seconds between renewals of the leases on the jobs a replica runs, and between its
    looks for jobs to take over; at most half `job_lease_s`."""
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        validation_alias=AliasChoices("ROUTER_JOB_MAX_ATTEMPTS", "job_max_attempts"),
    )
    """Runs an asynchronous job may start; one whose runs keep dying then ends failed."""
    job_retention_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        validation_alias=AliasChoices("ROUTER_JOB_RETENTION_S", "job_retention_s"),
    )
    """How long a finished asynchronous job can still be read."""

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        # One late heartbeat must not cost a job its lease.
        if self.job_heartbeat_s * 2 > self.job_lease_s:
            raise ValueError(
                f"job_heartbeat_s ({self.job_heartbeat_s}) must be at most half"
                f" job_lease_s ({self.job_lease_s})"
            )
        return self

    otel_exporter_otlp_endpoint: AnyHttpUrl | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
    )
    """An OTLP/HTTP collector: spans for each graph node and model call; none when empty."""
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )
    """Redis for rate-limit counters, the response cache and the control plane replicas share
    (capacity, queue, node state); in process when empty."""
    redis_prefix: str = Field(
        default="gb10-router",
        min_length=1,
        pattern=r"^[\w.:-]+$",
        validation_alias=AliasChoices("ROUTER_REDIS_PREFIX", "redis_prefix"),
    )
    """Prefix of the control plane's Redis keys: routers with the same prefix act as one."""
    lease_ttl_s: float = Field(
        default=10.0,
        ge=1,
        le=600,
        validation_alias=AliasChoices("ROUTER_LEASE_TTL_S", "lease_ttl_s"),
    )
    """How long a reservation or a queue place outlives a replica that stopped refreshing it
    (one that died): its capacity comes back within this time."""
    limits_config: Path = Field(
        default=CONFIG_DIR / "limits.yaml",
        validation_alias=AliasChoices("ROUTER_LIMITS_CONFIG", "limits_config"),
    )
    """The rate-limit file."""
    cache_ttl_s: float = Field(
        default=300.0, gt=0, validation_alias=AliasChoices("ROUTER_CACHE_TTL_S", "cache_ttl_s")
    )
    """How long a cached answer is served."""
    audit_prompt_text: bool = Field(
        default=False,
        validation_alias=AliasChoices("ROUTER_AUDIT_PROMPT_TEXT", "audit_prompt_text"),
    )
    """Keep the prompt text in the audit trail (its SHA-256 and length are always kept)."""
    classifier: Literal["layered", "rules"] = Field(
        default="layered", validation_alias=AliasChoices("ROUTER_CLASSIFIER", "classifier")
    )
    """`layered` (language, learned model on embeddings, rules) or `rules` alone."""
    policy_reload_s: float = Field(
        default=2.0,
        ge=0,
        validation_alias=AliasChoices("ROUTER_POLICY_RELOAD_S", "policy_reload_s"),
    )
    """Seconds between checks of the routing policy file for changes; 0 turns reloading off."""

    def node_url_overrides(self) -> dict[int, str]:
        """Node number (1-based) -> URL, for the nodes whose URL is overridden."""
        urls = {1: self.llm_node_1_url, 2: self.llm_node_2_url}
        return {n: str(u).rstrip("/") for n, u in urls.items() if u is not None}
