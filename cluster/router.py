"""The router agent: classifies a request and picks its model, as the specification's API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cluster.config import ClusterConfig
from cluster.errors import InvalidRequest
from policies.classification import Classification
from policies.routing_policy import RoutingPolicy
from policies.types import TaskType


class TaskClassifier(Protocol):
    """Anything that turns a prompt and hints into a classification."""

    def classify(self, prompt: str, task_hints: list[str] | None = None) -> Classification: ...


@dataclass(frozen=True)
class RoutingDecision:
    """Task type, model and priority for one request or chain operation."""

    task_type: TaskType
    model: str
    candidates: list[str]
    priority: int
    classification: Classification
    override: str | None

    def to_dict(self) -> dict[str, Any]:
        c = self.classification
        return {
            "task_type": self.task_type.value,
            "model": self.model,
            "endpoint": self.model,
            "priority": self.priority,
            "candidates": self.candidates,
            "confidence": c.confidence,
            "layer": c.layer,
            "reasons": c.reasons,
            "alternates": [{"task_type": t.value, "score": round(s, 4)} for t, s in c.alternates()],
            "override": self.override,
        }


class Judge(Protocol):
    """A second opinion for decisions the classifier is unsure of."""

    def wants(self, decision: Classification) -> bool: ...

    async def judge(self, prompt: str, decision: Classification) -> Classification: ...


class LLMRouter:
    """Explicit task_type or model wins; otherwise the classifier decides (and maybe a judge)."""

    def __init__(
        self,
        policy: RoutingPolicy,
        cluster: ClusterConfig,
        classifier: TaskClassifier,
        judge: Judge | None = None,
    ) -> None:
        self.policy = policy
        self.cluster = cluster
        self.classifier = classifier
        self.judge = judge

    def decide(
        self,
        prompt: str,
        task_hints: list[str] | None = None,
        *,
        task_type: TaskType | str | None = None,
        model: str | None = None,
        priority: int | None = None,
    ) -> RoutingDecision:
        """Route one prompt; InvalidRequest for an unknown task type or model."""
        if model is not None:
            self.cluster.require_model(model)
        override: str | None = None
        if task_type is not None:
            try:
                parsed = TaskType.parse(task_type) if isinstance(task_type, str) else task_type
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
            classification = Classification(
                parsed,
                1.0,
                {t: float(t is parsed) for t in TaskType},
                ["explicit task_type in request"],
                "override",
            )
            override = "task_type"
        else:
            classification = self.classifier.classify(prompt, task_hints)
        return self._decision(classification, model, priority, override)

    async def adecide(
        self,
        prompt: str,
        task_hints: list[str] | None = None,
        *,
        task_type: TaskType | str | None = None,
        model: str | None = None,
        priority: int | None = None,
    ) -> RoutingDecision:
        """`decide`, then the judge when one is configured and the classifier is unsure."""
        decision = self.decide(
            prompt, task_hints, task_type=task_type, model=model, priority=priority
        )
        if self.judge is None or decision.override or not self.judge.wants(decision.classification):
            return decision
        judged = await self.judge.judge(prompt, decision.classification)
        return self._decision(judged, model, priority, None)

    def _decision(
        self,
        classification: Classification,
        model: str | None,
        priority: int | None,
        override: str | None,
    ) -> RoutingDecision:
        chosen_type = classification.task_type
        candidates = self.policy.models_for(chosen_type)
        if model is not None:
            candidates = [model]
            override = "model"
        task_policy = self.policy.task_types[chosen_type]
        return RoutingDecision(
            task_type=chosen_type,
            model=candidates[0],
            candidates=candidates,
            priority=priority if priority is not None else task_policy.priority,
            classification=classification,
            override=override,
        )

    def route_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """The specification's call: a request dict in, a routing decision dict out."""
        if "prompt" not in request:
            raise InvalidRequest("route_request needs a 'prompt'")
        return self.decide(
            str(request["prompt"]),
            list(request.get("task_hints") or []),
            task_type=request.get("task_type"),
            model=request.get("model"),
            priority=request.get("priority"),
        ).to_dict()
