"""The graph's input, state and output schemas."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Required, cast

# LangServe builds its schemas from these; on Python 3.11 that needs typing_extensions.
from typing_extensions import TypedDict

from graph.records import (
    BatchItem,
    BranchResult,
    ChainStep,
    JobResult,
    JobStatus,
    SchedulingReport,
    Validation,
    reservation_key,
)
from policies.types import ExecutionMode
from policies.usage import Usage
from routing.router import RoutingDecision


class RouterInput(TypedDict, total=False):
    """What a caller sends."""

    prompt: Required[str]
    """The request text."""
    task_hints: list[str]
    """Client hints such as `threat` or `code`; they help but do not decide."""
    task_type: str | None
    """Force this task type instead of classifying."""
    model: str | None
    """Force this model instead of the task type's."""
    models: list[str]
    """Several models to fan the prompt out to (parallel)."""
    requires_parallel: bool
    """Run in parallel across capable nodes and models."""
    requires_chaining: bool
    """Run `operations` one after another."""
    operations: list[str]
    """Chain steps, e.g. extract, classify, generate."""
    items: list[str]
    """A batch of items to split across nodes (parallel); each gets its own answer."""
    labels: list[str]
    """The label set answers come from (each batch item's; consensus counts labels)."""
    target: str | None
    """Convert a Sigma rule answer to this query language: `splunk` or `kusto`."""
    repair: bool
    """Ask the model once more when its answer fails its check (default true; a streamed
    answer has gone out already, so it is only checked)."""
    batch_size: int | None
    """Declared batch size; with no items the prompt is fanned out instead."""
    merge_strategy: str | None
    """consensus, weighted, concatenate, best_quality or ensemble."""
    priority: int | None
    """1 most urgent .. 5 least; the task type's default when empty."""
    parameters: dict[str, Any]
    """Generation parameters (temperature, max_tokens, ...)."""
    timeout_s: float | None
    """Most seconds the job may wait for capacity."""
    job_id: str
    """Caller-chosen id; generated when empty."""
    user: str
    """Authenticated user, set by the service."""
    tenant: str
    """Authenticated tenant, set by the service."""
    cache: bool
    """Serve and store this answer in the response cache even at temperature > 0."""
    messages: list[dict[str, Any]]
    """A whole conversation, OpenAI-shaped, sent to the model instead of the prompt alone
    (the prompt is what is classified); single and fan-out calls only."""


class BranchTask(TypedDict):
    """One model call, sent to `call_model` with its reserved capacity."""

    step: int
    """Chain step (0 outside chains)."""
    branch: int
    """Position among the step's calls."""
    label: str
    """Who is called, e.g. `granite-guardian@gb10-node-2`."""
    model: str
    """Model to call."""
    node_id: str
    """Node whose endpoint is called."""
    lease_id: str
    """Reservation released when the call ends."""
    prompt: str
    """Text sent to the model."""
    parameters: dict[str, Any]
    """Generation parameters."""
    first_item: int | None
    """Index of the chunk's first item in the batch, or None."""
    item_count: int
    """Items in the chunk (0 when not a batch)."""
    items_asked: list[int]
    """The batch items (from 0) the call asks about: the chunk's, or a retry's."""
    job_id: str
    """The job's reservation key (tenant and job id), for a failover reservation."""
    priority: int
    """The job's priority, for a failover reservation."""
    failover_models: list[str]
    """Models that may take the call on another node if this one's server fails."""
    tenant: str
    """Whose call it is: the cache never crosses tenants."""
    messages: list[dict[str, Any]]
    """The conversation to send instead of the prompt, when there is one."""
    cacheable: bool
    """Look the answer up in, and store it to, the response cache."""
    grammar: str | None
    """A grammar vLLM holds the answer to (a repair's; set by the router, never a request)."""
    labels: list[str]
    """The label set a batch chunk answers from; empty otherwise."""


class RouterOutput(TypedDict, total=False):
    """What a run returns; the HTTP layer renders it as the specification's JSON."""

    job_id: str
    """The job's id."""
    status: JobStatus
    """completed (failures raise errors with a code)."""
    routing: RoutingDecision
    """Task type, model, priority, confidence and reasons."""
    scheduling: SchedulingReport
    """Execution mode, node(s) and why, queue wait."""
    result: JobResult
    """The answer, with merge details when several answers met."""
    execution_mode: ExecutionMode
    """single, parallel, chained or queued."""
    chain: list[ChainStep]
    """Each chain step's operation, task type, model, node and output."""
    user: str
    """Who ran the job."""
    tenant: str
    """Whose job it is."""
    usage: Annotated[Usage, operator.add]
    """Tokens all the job's model calls consumed: the judge's, every branch's and chain
    step's, the ensemble aggregator's (cached answers cost none)."""


class RouterState(RouterInput, RouterOutput, total=False):
    """Everything the graph's nodes read and write."""

    planned_mode: ExecutionMode
    """Mode chosen from the request before capacity is known."""
    plan: list[BranchTask]
    """Calls of the current step, each with reserved capacity."""
    granted_lease: str | None
    """Lease handed over by the queue, used by the next schedule."""
    queue_wait_s: float
    """Seconds spent waiting for capacity."""
    branch_results: Annotated[list[BranchResult], operator.add]
    """Results of every call, all steps; fan-out branches join here."""
    chain_index: int
    """Index of the chain operation being run."""
    batch_items: list[BatchItem]
    """Each batch item's answer so far, in input order."""
    items_retried: bool
    """The batch's skipped and garbled items have had their one retry."""
    validation: Validation | None
    """The latest answer's check (YARA, Sigma, KQL, SQL, JSON), once validate has run."""


def restored(values: dict[str, Any]) -> RouterState:
    """State read back from a checkpoint, its top-level enums revived."""
    state = dict(values)
    for key, enum in _ENUM_CHANNELS.items():
        if state.get(key) is not None:
            state[key] = enum(state[key])
    return cast(RouterState, state)


#: A PostgreSQL checkpoint keeps string channels as JSON strings: these come back as str.
_ENUM_CHANNELS: dict[str, type[ExecutionMode] | type[JobStatus]] = {
    "planned_mode": ExecutionMode,
    "execution_mode": ExecutionMode,
    "status": JobStatus,
}


def reservations(state: RouterState) -> str:
    """The run's key for its reservations (see `reservation_key`)."""
    return reservation_key(state.get("tenant", ""), state["job_id"])


def planned_mode(state: RouterState) -> ExecutionMode | None:
    """The mode chosen for the run, once classify has chosen it."""
    mode = state.get("planned_mode")
    # Read inside a resumed run too, where a PostgreSQL checkpoint gave it back as a str.
    return None if mode is None else ExecutionMode(mode)
