"""What merge strategies take and give."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from policies.batch_answers import named_label
from policies.types import MergeStrategy

#: Confidence assumed for an answer whose backend gave no logprobs.
DEFAULT_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Candidate:
    """One answer to merge."""

    label: str
    """Who produced it, for example `llama31@gb10-node-2` or `items 1-25`."""
    text: str
    """The answer text."""
    model: str = ""
    """Model that produced it."""
    confidence: float | None = None
    """0-1 from token logprobs, or None when the backend gave none."""
    finish_reason: str | None = None
    """OpenAI finish_reason: `stop`, `length` (truncated), ..."""

    @property
    def weight(self) -> float:
        """Confidence, or the default when unknown."""
        return DEFAULT_CONFIDENCE if self.confidence is None else self.confidence


@dataclass(frozen=True)
class Expectation:
    """What format the request asked for."""

    json: bool = False
    code: bool = False
    labels: tuple[str, ...] = ()
    """The label set the answer comes from, when the request gave one."""


@dataclass(frozen=True)
class MergeOutcome:
    """The merged answer, which inputs it used and why."""

    strategy: MergeStrategy
    answer: str
    used: list[int]
    reason: str
    notes: list[str] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeReport:
    """A merge outcome told by who answered: the merged text, the answers used and why."""

    strategy: MergeStrategy
    merged_response: str
    used: list[str]
    """Labels of the answers the merge used."""
    used_indices: list[int]
    """Their positions among the candidates."""
    reason: str
    notes: list[str]
    scores: dict[str, float]
    """Each scored answer's score, by label."""

    @classmethod
    def of(cls, outcome: MergeOutcome, candidates: list[Candidate]) -> MergeReport:
        """The report of `outcome`, with labels taken from `candidates`."""
        return cls(
            strategy=outcome.strategy,
            merged_response=outcome.answer,
            used=[candidates[i].label for i in outcome.used],
            used_indices=list(outcome.used),
            reason=outcome.reason,
            notes=list(outcome.notes),
            scores={candidates[i].label: s for i, s in outcome.scores.items()},
        )


class MergeFn(Protocol):
    """A merge strategy: candidates in, one outcome out."""

    def __call__(self, candidates: list[Candidate], expect: Expectation) -> MergeOutcome: ...


_JSON_ASK = re.compile(r"\bjson\b", re.IGNORECASE)
_CODE_ASK = re.compile(
    r"\b(code|script|yara|sigma|snort|suricata|kql|spl|regex|query|function|rule)\b",
    re.IGNORECASE,
)


def expectation_for(prompt: str) -> Expectation:
    """Infer the expected output format from the prompt."""
    return Expectation(json=bool(_JSON_ASK.search(prompt)), code=bool(_CODE_ASK.search(prompt)))


_WS = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalise(text: str) -> str:
    """Case-, space- and edge-punctuation-insensitive form used to compare answers."""
    return _EDGE_PUNCT.sub("", _WS.sub(" ", text.strip().lower()))


def group_by_answer(
    candidates: list[Candidate], labels: tuple[str, ...] = ()
) -> dict[str, list[int]]:
    """Indices of candidates grouped by normalised answer, in first-seen order; with a label
    set, by the label each answer gives (its reasons aside)."""
    groups: dict[str, list[int]] = {}
    for index, cand in enumerate(candidates):
        label = named_label(cand.text, labels) if labels else None
        key = f"label:{label}" if label is not None else normalise(cand.text)
        groups.setdefault(key, []).append(index)
    return groups


def require_candidates(candidates: list[Candidate]) -> None:
    """Raise ValueError when there is nothing to merge."""
    if not candidates:
        raise ValueError("nothing to merge: no candidate answers")
