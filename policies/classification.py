"""Rule classifier: keyword rules and client hints from the routing policy vote for task types."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property

from policies.routing_policy import RoutingPolicy
from policies.types import DecisionLayer, TaskType

#: Prompts are classified on their head; pasted logs past this point rarely change the ask.
MAX_CLASSIFIED_CHARS = 4000


@dataclass(frozen=True)
class Classification:
    """A routing decision's task type with its confidence, runner-up scores and reasons."""

    task_type: TaskType
    confidence: float
    scores: dict[TaskType, float]
    reasons: list[str]
    layer: DecisionLayer

    def alternates(self) -> list[tuple[TaskType, float]]:
        """The other task types with their scores, best first."""
        others = [(t, s) for t, s in self.scores.items() if t != self.task_type]
        return sorted(others, key=lambda pair: -pair[1])


def foreign_script_share(text: str) -> float:
    """Share of the letters in `text` that are not Latin script."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    foreign = sum(1 for c in letters if not unicodedata.name(c, "LATIN").startswith("LATIN"))
    return foreign / len(letters)


@dataclass
class RuleClassifier:
    """Scores each task type by the rules and hints that match; the best score wins."""

    policy: RoutingPolicy
    _compiled: list[tuple[re.Pattern[str], int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._compiled = [
            (re.compile(rule.pattern, re.IGNORECASE), index)
            for index, rule in enumerate(self.policy.rules)
        ]

    @cached_property
    def _hint_keys(self) -> dict[str, TaskType]:
        return {k.lower(): v for k, v in self.policy.hints.items()}

    def rule_scores(self, prompt: str) -> tuple[dict[TaskType, float], list[str]]:
        """Votes of the keyword rules that match the prompt's head, with their reasons."""
        text = prompt[:MAX_CLASSIFIED_CHARS]
        scores = dict.fromkeys(TaskType, 0.0)
        reasons: list[str] = []
        for pattern, index in self._compiled:
            if pattern.search(text):
                rule = self.policy.rules[index]
                scores[rule.task_type] += rule.weight
                reasons.append(f"rule {rule.name} -> {rule.task_type.value}")
        return scores, reasons

    def hint_scores(self, task_hints: list[str] | None) -> tuple[dict[TaskType, float], list[str]]:
        """Votes of the client's hints that the policy knows, with their reasons."""
        scores = dict.fromkeys(TaskType, 0.0)
        reasons: list[str] = []
        for hint in task_hints or []:
            task = self._hint_keys.get(hint.strip().lower())
            if task is not None and self.policy.hint_weight > 0:
                scores[task] += self.policy.hint_weight
                reasons.append(f"hint {hint!r} -> {task.value}")
        return scores, reasons

    def classify(self, prompt: str, task_hints: list[str] | None = None) -> Classification:
        """Classify a prompt, helped by the client's hints."""
        scores, reasons = self.rule_scores(prompt)
        hint_scores, hint_reasons = self.hint_scores(task_hints)
        for task, value in hint_scores.items():
            scores[task] += value
        reasons += hint_reasons

        share = foreign_script_share(prompt[:MAX_CLASSIFIED_CHARS])
        if share >= self.policy.foreign_script_threshold:
            # Written mainly in another language: multilingual, whatever it asks.
            top = max(scores.values())
            scores[TaskType.MULTILINGUAL] = top + 2.0
            reasons.append(f"non-Latin script share {share:.2f} -> multilingual")

        total = sum(scores.values())
        if total == 0:
            default = self.policy.default_task_type
            return Classification(
                default, 0.3, scores, ["no rule matched: default task type"], DecisionLayer.RULES
            )
        best = max(TaskType, key=lambda t: (scores[t], t == self.policy.default_task_type))
        # Smoothed share of the vote: one weak match is not certainty.
        confidence = round(scores[best] / (total + 1.0), 4)
        return Classification(best, confidence, scores, reasons, DecisionLayer.RULES)

    def with_policy(self, policy: RoutingPolicy) -> RuleClassifier:
        """The same classifier over another policy's rules and hints."""
        return RuleClassifier(policy)

    def describe(self) -> dict[str, object]:
        """Which layers run, for the rules endpoint."""
        return {"active": "rules", "layers": ["override", "rules"], "unavailable_reason": None}
