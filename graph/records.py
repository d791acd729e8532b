"""The typed records the graph's nodes pass on: scheduling reports, call outcomes, results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from cluster.completion import CallResult, Completion, FailedOver, branch_label
from cluster.scheduler import NodeRef
from policies.errors import ErrorInfo
from policies.item_confidence import TokenLogprob
from policies.merge import MergeReport
from policies.types import DecisionLayer, ExecutionMode, MergeStrategy, TaskType
from policies.usage import Usage
from routing.router import Alternate, Override, RoutingDecision


def new_job_id() -> str:
    """A fresh job id."""
    return f"job_{uuid.uuid4().hex[:16]}"


def reservation_key(tenant: str, job_id: str) -> str:
    """Whose reservations these are, to the scheduler: a job id is the caller's, unique only
    within its tenant."""
    return f"{tenant}/{job_id}"


def job_of(key: str, tenant: str) -> str | None:
    """The job id in reservation key `key` when the job is `tenant`'s, else None."""
    owner, _, job_id = key.rpartition("/")
    return job_id if owner == tenant and job_id else None


class JobStatus(StrEnum):
    """Where a run of the graph stands."""

    ROUTED = "routed"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


@dataclass(frozen=True)
class SchedulingReport:
    """Where a step's calls run and why, and how long the job waited for capacity."""

    job_id: str
    execution_mode: ExecutionMode
    """The mode as the caller sees it: `queued` when the job waited."""
    dispatched_as: ExecutionMode
    """The mode it ran in."""
    nodes: list[NodeRef]
    """Every reservation of the step, the first being the main one."""
    reason: str
    """Why placement chose the first node, with the runners-up's scores."""
    queue_wait_s: float
    """Seconds spent waiting for capacity."""

    @property
    def node(self) -> NodeRef:
        """The step's first (or only) reservation."""
        return self.nodes[0]

    @property
    def queued(self) -> bool:
        return bool(self.queue_wait_s)


@dataclass(frozen=True)
class BranchResult:
    """What one `call_model` produced: an answer or a failure."""

    step: int
    """Chain step (0 outside chains)."""
    branch: int
    """Position among the step's calls."""
    model: str
    """Model that answered (or failed)."""
    node_id: str
    """Node called last."""
    first_item: int | None
    """Index of the chunk's first item in the batch, or None."""
    item_count: int
    """Items in the chunk (0 when not a batch)."""
    call: CallResult | None
    """The answer, or None when the call failed."""
    error: ErrorInfo | None
    """The failure, or None."""
    items_asked: list[int] = field(default_factory=list)
    """The batch items (from 0) the call was asked about; empty outside batches."""

    @property
    def label(self) -> str:
        return branch_label(self.model, self.node_id)


class ItemStatus(StrEnum):
    """How a batch item's answer came about."""

    ANSWERED = "answered"
    RETRIED = "retried"
    """Skipped or garbled by its first call, answered on the retry."""
    MISSING = "missing"
    """No usable answer, retry included."""


@dataclass(frozen=True)
class BatchItem:
    """One batch item's answer, with who gave it."""

    index: int
    """Position in the request's `items`, from 0."""
    status: ItemStatus
    answer: str | None
    """The answer (a label of the set, when one was given); None when missing."""
    model: str | None
    """Model whose answer this is (or which failed it last)."""
    node_id: str | None
    """Node that model ran on."""
    confidence: float | None
    """How sure the model was of this item's label (its tokens' logprobs against the other
    labels'); the answering call's confidence where that cannot be read."""
    problem: str | None = None
    """Why the first answer was unusable (retried), or why there is none (missing)."""


@dataclass(frozen=True)
class ChainStep:
    """One finished step of a chain, whose output the next steps read."""

    step: int
    operation: str
    task_type: TaskType
    model: str
    node_id: str
    output: str
    latency_ms: float
    scheduling: SchedulingReport | None


class ValidationStatus(StrEnum):
    """What the answer's check found."""

    PASSED = "passed"
    REPAIRED = "repaired"
    """The first answer failed its check; the model's corrected one passed."""
    FAILED = "failed"
    """It failed, after the one repair (or with no capacity to ask for one)."""


@dataclass(frozen=True)
class Validation:
    """The check of an answer whose form a tool can verify (YARA, Sigma, KQL, SQL, JSON)."""

    kind: str
    """yara, sigma, kql, sql or json."""
    status: ValidationStatus
    error: str | None
    """Why it failed; for a repaired answer, what the first one got wrong."""
    attempts: int
    """Answers checked: 1, or 2 with the repair."""
    warnings: list[str] = field(default_factory=list)
    conversions: dict[str, str] = field(default_factory=dict)
    """A Sigma rule as the query language asked for (`splunk`, `kusto`)."""


@dataclass(frozen=True)
class JobResult:
    """The job's answer: one call's, a chain's last step's, or several merged."""

    call: CallResult | None = None
    """The call whose answer this is (single mode, a chain's last step)."""
    merged: Completion | None = None
    """The merged answer, when several calls met."""
    merge: MergeReport | None = None
    """How the merged answer was made."""
    branches: list[BranchResult] = field(default_factory=list)
    """Every call of a merged step, failures too, in item order."""
    chain: list[ChainStep] = field(default_factory=list)
    """A chain's steps."""
    items: list[BatchItem] = field(default_factory=list)
    """A batch's answers, one per input item, in input order."""
    validation: Validation | None = None
    """The answer's check, for the task types whose output has a checkable form."""

    @property
    def completion(self) -> Completion:
        """The answer the client reads."""
        if self.call is not None:
            return self.call.completion
        assert self.merged is not None, "a job result holds a call or a merged answer"
        return self.merged

    @property
    def cache_hit(self) -> bool:
        """Whether any answer in it came from the response cache."""
        calls = [self.call, *(b.call for b in self.branches)]
        return any(c is not None and c.cache_hit for c in calls)


#: Every type a checkpoint of this state may hold; the checkpointer revives these alone.
CHECKPOINTED_TYPES: tuple[type, ...] = (
    Alternate,
    BatchItem,
    BranchResult,
    CallResult,
    ChainStep,
    Completion,
    DecisionLayer,
    ErrorInfo,
    ExecutionMode,
    FailedOver,
    ItemStatus,
    JobResult,
    JobStatus,
    MergeReport,
    MergeStrategy,
    NodeRef,
    Override,
    RoutingDecision,
    SchedulingReport,
    TaskType,
    TokenLogprob,
    Usage,
    Validation,
    ValidationStatus,
)
