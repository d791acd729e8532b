"""The runtime context every node receives: the parts a run uses and the knobs it may turn."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.trace import Tracer
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from cluster.cache import ResponseCache
from cluster.merger import MergerAgent
from cluster.pool import LLMPool
from cluster.scheduler import JobScheduler
from graph.metrics import RunMetrics
from routing.router import LLMRouter


@dataclass(frozen=True, kw_only=True)
class RouterContext:
    """Built once by the composition root and passed to every run (`context=`).

    The parts are live objects, left out of the JSON schema Studio shows; the two knobs
    default to the process settings and may be set per run.
    """

    # Lets pydantic (LangServe's and Studio's schemas) accept the live parts' types.
    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    router: SkipJsonSchema[LLMRouter]
    """Decides each request's (or chain operation's) task type and models."""
    scheduler: SkipJsonSchema[JobScheduler]
    """Reserves capacity, and queues what does not fit."""
    pool: SkipJsonSchema[LLMPool]
    """Calls models through ChatOpenAI clients bound to their nodes."""
    merger: SkipJsonSchema[MergerAgent]
    """Merges several answers into one."""
    cache: SkipJsonSchema[ResponseCache]
    """Answers of deterministic calls, by tenant."""
    metrics: SkipJsonSchema[RunMetrics] = field(default_factory=RunMetrics)
    """Where the nodes count and time what they do (Prometheus)."""
    tracer: SkipJsonSchema[Tracer | None] = None
    """OpenTelemetry spans for each node and model call; none when tracing is off."""
    enable_parallel: bool = True
    """When false, parallel requests run as single jobs on one model."""
    max_parallel_jobs: int = 4
    """Most branches one parallel request fans out to."""
