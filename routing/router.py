"""The router agent: classifies a request and picks its model."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from policies.classification import Classification
from policies.errors import InvalidRequest, UnknownModel
from policies.routing_policy import RoutingPolicy
from policies.types import DecisionLayer, TaskType
from policies.usage import Usage

log = logging.getLogger(__name__)
#: The classification thread's nice value (0 normal, 19 lowest).
CLASSIFY_NICE = 10


class TaskClassifier(Protocol):
    """Anything that turns a prompt and hints into a classification."""

    def classify(self, prompt: str, task_hints: list[str] | None = None) -> Classification: ...

    def with_policy(self, policy: RoutingPolicy) -> TaskClassifier: ...

    def describe(self) -> dict[str, object]: ...


class Judge(Protocol):
    """A second opinion for decisions the classifier is unsure of."""

    def wants(self, decision: Classification) -> bool: ...

    async def judge(
        self, prompt: str, decision: Classification, *, job_id: str, priority: int
    ) -> tuple[Classification, Usage]: ...


class Override(StrEnum):
    """What the caller fixed instead of letting the router decide."""

    TASK_TYPE = "task_type"
    MODEL = "model"


@dataclass(frozen=True)
class Alternate:
    """A task type the router did not pick, with its score."""

    task_type: TaskType
    score: float


@dataclass(frozen=True)
class RoutingDecision:
    """Task type, model and priority for one request or chain operation, and why."""

    task_type: TaskType
    """The task type decided."""
    model: str
    """The preferred model: the first candidate."""
    candidates: list[str]
    """Models that may serve it, preferred first."""
    priority: int
    """1 most urgent .. 5 least."""
    confidence: float
    """0-1: how sure the deciding layer was."""
    layer: DecisionLayer
    """Which layer decided."""
    reasons: list[str]
    """Rules, hints, nearest examples or overrides behind the decision."""
    alternates: list[Alternate]
    """The other task types, best first."""
    override: Override | None = None
    """What the caller fixed, if anything."""
    operation: str | None = None
    """The chain operation this decision is for."""
    step: int | None = None
    """The chain step this decision is for."""
    usage: Usage = field(default_factory=Usage)
    """Tokens the decision itself cost (the judge's call)."""
    judged: bool = False
    """The LLM judge was asked."""

    def for_operation(self, operation: str, step: int) -> RoutingDecision:
        """This decision as a chain step's, routed by its operation."""
        return replace(
            self,
            layer=DecisionLayer.OPERATION,
            reasons=[f"operation {operation!r} -> {self.task_type.value}"],
            operation=operation,
            step=step,
        )


@dataclass
class PolicySource:
    """Where the routing policy in force came from, and how its last reload went."""

    path: Path
    mtime: float
    """The file's modification time when last read."""
    loaded_at: float
    """When the policy in force was loaded."""
    last_error: str | None = None
    """Why the latest change to the file was refused, if it was."""


def _yield_to_the_loop() -> None:
    """Lower the calling thread's scheduling priority: when the cores are busy, the event
    loop (and the requests that need no classification) goes first."""
    # Elsewhere a thread id is no process id: setpriority could reach another process.
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CLASSIFY_NICE)
    except OSError as exc:  # not permitted: classification still runs
        log.info("classification thread keeps its priority: %s", exc)


class LLMRouter:
    """Explicit task_type or model wins; otherwise the classifier decides (and maybe a judge)."""

    def __init__(
        self,
        policy: RoutingPolicy,
        models: Sequence[str],
        classifier: TaskClassifier,
        judge: Judge | None = None,
        source: PolicySource | None = None,
    ) -> None:
        self.policy = policy
        self.classifier = classifier
        self.judge = judge
        self.source = source
        self._models = tuple(models)
        # Classifying runs the encoder for milliseconds: on a thread of its own, the event
        # loop serves other requests meanwhile, and classifications queue instead of
        # oversubscribing the encoder's own threads. Started on first use.
        self._classifying = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="classify", initializer=_yield_to_the_loop
        )

    def close(self) -> None:
        """Stop the classification thread (after the classification it is running)."""
        self._classifying.shutdown(wait=True)

    def use_policy(self, policy: RoutingPolicy, judge: Judge | None) -> None:
        """Route by another policy from now on (the classifier keeps its learned layer)."""
        self.classifier = self.classifier.with_policy(policy)
        self.policy = policy
        self.judge = judge

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the router may pick, in config order."""
        return self._models

    def require_model(self, name: str) -> str:
        """`name`, when the cluster knows such a model; UnknownModel naming the valid ones."""
        if name not in self._models:
            raise UnknownModel(f"unknown model {name!r}; valid: {', '.join(self._models)}")
        return name

    def task_type_of(self, operation: str) -> TaskType:
        """The task type a chain operation routes to; InvalidRequest naming the valid ones."""
        try:
            return self.policy.operation_task_type(operation)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

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
        classification = self._classify(prompt, task_hints, task_type, model)
        override = Override.TASK_TYPE if task_type is not None else None
        return self._decision(classification, model, priority, override)

    async def adecide(
        self,
        prompt: str,
        task_hints: list[str] | None = None,
        *,
        task_type: TaskType | str | None = None,
        model: str | None = None,
        priority: int | None = None,
        job_id: str,
    ) -> RoutingDecision:
        """`decide`, then the judge when one is configured and the classifier is unsure; the
        judge's call is the job's, at its priority (the unsure task type's when none given).
        A classification runs off the event loop."""
        if task_type is None:
            classification = await asyncio.get_running_loop().run_in_executor(
                self._classifying, self._classify, prompt, task_hints, None, model
            )
        else:
            classification = self._classify(prompt, task_hints, task_type, model)
        fixed = task_type is not None or model is not None
        if fixed or self.judge is None or not self.judge.wants(classification):
            override = Override.TASK_TYPE if task_type is not None else None
            return self._decision(classification, model, priority, override)
        tentative = self.policy.task_types[classification.task_type].priority
        judged, usage = await self.judge.judge(
            prompt,
            classification,
            job_id=job_id,
            priority=tentative if priority is None else priority,
        )
        return dataclasses.replace(
            self._decision(judged, model, priority, None), usage=usage, judged=True
        )

    def _classify(
        self,
        prompt: str,
        task_hints: list[str] | None,
        task_type: TaskType | str | None,
        model: str | None,
    ) -> Classification:
        if model is not None:
            self.require_model(model)
        if task_type is None:
            return self.classifier.classify(prompt, task_hints)
        try:
            parsed = TaskType.parse(task_type) if isinstance(task_type, str) else task_type
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return Classification(
            parsed,
            1.0,
            {t: float(t is parsed) for t in TaskType},
            ["explicit task_type in request"],
            DecisionLayer.OVERRIDE,
        )

    def _decision(
        self,
        classification: Classification,
        model: str | None,
        priority: int | None,
        override: Override | None,
    ) -> RoutingDecision:
        chosen = classification.task_type
        candidates = self.policy.models_for(chosen)
        if model is not None:
            candidates = [model]
            override = Override.MODEL
        return RoutingDecision(
            task_type=chosen,
            model=candidates[0],
            candidates=candidates,
            priority=priority if priority is not None else self.policy.task_types[chosen].priority,
            confidence=classification.confidence,
            layer=classification.layer,
            reasons=classification.reasons,
            alternates=[Alternate(t, round(s, 4)) for t, s in classification.alternates()],
            override=override,
        )
