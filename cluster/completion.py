"""What a model call gives back: the completion and where, how fast and how sure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policies.item_confidence import TokenLogprob
from policies.usage import Usage


def branch_label(model: str, node_id: str) -> str:
    """How merges and summaries name who answered: `model@node`."""
    return f"{model}@{node_id}"


@dataclass(frozen=True)
class Completion:
    """One assistant answer in the terms of OpenAI's chat completion."""

    id: str
    """The server's completion id (a job id for merged answers)."""
    model: str
    """The model as the server names it (served names joined with `+` when merged)."""
    content: str
    """The answer's text."""
    finish_reason: str | None
    """`stop`, `length` (truncated), ..."""
    usage: Usage
    """Tokens consumed."""
    created: int | None = None
    """Unix time the server answered (none for merged answers)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """The tools the model called, OpenAI-shaped (`id`, `type`, `function`)."""


@dataclass(frozen=True)
class FailedOver:
    """Where a call went first, before its server failed."""

    node_id: str
    model: str
    error: str
    """The first attempt's error code."""


@dataclass(frozen=True)
class CallResult:
    """One model call's answer, with the model and node that gave it."""

    completion: Completion
    model: str
    """The router's name of the model called."""
    node_id: str
    """The node called."""
    endpoint: str
    """The base URL its ChatOpenAI client used."""
    latency_ms: float
    """Time the call took."""
    confidence: float | None
    """0-1 from token logprobs; None when the server gave none."""
    cache_hit: bool = False
    """Served from the response cache rather than the model."""
    failed_over_from: FailedOver | None = None
    """Set when the call moved to this node after another's server failed."""
    tokens: list[TokenLogprob] = field(default_factory=list)
    """The answer's tokens with their logprobs, as the server gave them; read by call_model
    and dropped there, never kept in the state or the cache."""
    item_confidence: dict[int, float] = field(default_factory=dict)
    """A labelled batch chunk's confidence in each item's label, by item number (from 1)."""

    @property
    def label(self) -> str:
        return branch_label(self.model, self.node_id)
