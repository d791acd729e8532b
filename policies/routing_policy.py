"""The routing policy: what `config/routing.yaml` holds, validated."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.types import TaskType

Priority = Annotated[int, Field(ge=1, le=5)]


class TaskPolicy(BaseModel):
    """Which models serve one task type, and how urgent its jobs are by default."""

    model_config = ConfigDict(extra="forbid")

    primary: str = Field(min_length=1)
    """The specialised model for this task type."""
    fallbacks: list[str] = Field(default_factory=list)
    """Models tried, in order, when the primary has no capacity."""
    priority: Priority = 3
    """Default priority of its jobs (1 most urgent, 5 least)."""
    description: str = ""
    """What the task type is for, shown by the rules endpoint."""
    spill_over: bool = True
    """When every node of the primary is saturated, run on a fallback model elsewhere."""


class KeywordRule(BaseModel):
    """A regular expression whose match in the prompt votes for a task type."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    """Short name reported in the decision's reasons."""
    task_type: TaskType
    """The task type it votes for."""
    pattern: str = Field(min_length=1)
    """Case-insensitive regular expression searched in the prompt."""
    weight: float = Field(default=1.0, gt=0)
    """Strength of the vote."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class JudgePolicy(BaseModel):
    """When and how an LLM judges a low-confidence classification."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    """Ask the judge at all."""
    model: str = "granite-guardian"
    """The model that judges."""
    below_confidence: float = Field(default=0.7, ge=0, le=1)
    """Ask only when the classifier's confidence is under this."""
    timeout_s: float = Field(default=2.0, gt=0)
    """Give up on the judge after this long and keep the classifier's decision."""


class RoutingPolicy(BaseModel):
    """Task types, their models, the classification rules and the chain operations."""

    model_config = ConfigDict(extra="forbid")

    default_task_type: TaskType = TaskType.GENERAL_REASONING
    """Chosen when no rule or hint matches."""
    task_types: dict[TaskType, TaskPolicy]
    """Every task type with its models; all six must be present."""
    hints: dict[str, TaskType] = Field(default_factory=dict)
    """Client task_hints (lower case) and the task type each suggests."""
    hint_weight: float = Field(default=0.75, ge=0)
    """Vote of one matching hint; smaller than a strong keyword, since hints can be generic."""
    rules: list[KeywordRule] = Field(default_factory=list)
    """Keyword rules searched in the prompt."""
    foreign_script_threshold: float = Field(default=0.3, ge=0, le=1)
    """Share of letters outside Latin script above which a prompt counts as non-English."""
    operations: dict[str, TaskType] = Field(default_factory=dict)
    """Chain operation names (lower case) and their task types."""
    judge: JudgePolicy = Field(default_factory=JudgePolicy)
    """The optional LLM judge for low-confidence decisions."""

    @model_validator(mode="after")
    def _every_task_type_has_a_model(self) -> RoutingPolicy:
        missing = [t.value for t in TaskType if t not in self.task_types]
        if missing:
            raise ValueError(f"task_types: no model for {', '.join(missing)}")
        return self

    def models_for(self, task_type: TaskType) -> list[str]:
        """Primary then, when the task type may spill over, its fallback models."""
        policy = self.task_types[task_type]
        return [policy.primary, *policy.fallbacks] if policy.spill_over else [policy.primary]

    def operation_task_type(self, operation: str) -> TaskType:
        """Task type of a chain operation; an unknown one raises, naming the valid ones."""
        key = operation.strip().lower()
        if key in self.operations:
            return self.operations[key]
        try:
            return TaskType.parse(key)
        except ValueError:
            valid = ", ".join(sorted(self.operations))
            raise ValueError(f"unknown operation {operation!r}; valid: {valid}") from None
