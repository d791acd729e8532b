"""Fixed vocabularies of the router; a lookup by an unknown name lists the valid ones."""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class _NamedEnum(StrEnum):
    @classmethod
    def parse(cls, value: str) -> Self:
        """Return the member named `value`, or raise ValueError listing the valid names."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown {cls.__name__} {value!r}; valid: {valid}") from None


class TaskType(_NamedEnum):
    """What a request wants back; each maps to a specialised model."""

    GENERAL_REASONING = "general_reasoning"
    MULTILINGUAL = "multilingual"
    STRUCTURED_PARSING = "structured_parsing"
    RULE_GENERATION = "rule_generation"
    ADVERSARIAL_REASONING = "adversarial_reasoning"
    CLASSIFICATION = "classification"


class ExecutionMode(_NamedEnum):
    """How a job runs on the cluster."""

    SINGLE = "single"
    PARALLEL = "parallel"
    CHAINED = "chained"
    QUEUED = "queued"


class MergeStrategy(_NamedEnum):
    """How the answers of several models or chunks become one."""

    CONSENSUS = "consensus"
    WEIGHTED = "weighted"
    CONCATENATE = "concatenate"
    BEST_QUALITY = "best_quality"
    ENSEMBLE = "ensemble"


class NodeStatus(_NamedEnum):
    """Whether a GPU node takes new work."""

    AVAILABLE = "available"
    BUSY = "busy"
    OFFLINE = "offline"


class DecisionLayer(_NamedEnum):
    """Which part of the router decided a request's task type."""

    OVERRIDE = "override"
    LANGUAGE = "language"
    LEARNED = "learned"
    RULES = "rules"
    JUDGE = "judge"
    OPERATION = "operation"
