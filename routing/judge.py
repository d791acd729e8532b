"""An LLM judge for low-confidence decisions: one model call, a strict JSON answer, a timeout."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from policies.classification import Classification
from policies.errors import RouterError
from policies.routing_policy import JudgePolicy
from policies.types import DecisionLayer, TaskType
from policies.usage import Usage

SYSTEM = (
    "You label security-operations requests with exactly one task type, by what the request "
    "asks to get back:\n"
    "general_reasoning: analysis, explanation, planning, comparison, summary not mainly about "
    "an adversary.\n"
    "multilingual: a translation, a request written mainly in another language, or "
    "cross-language work.\n"
    "structured_parsing: fields, entities or indicators pulled out into a structure.\n"
    "rule_generation: code or detection content written (YARA, Sigma, KQL, SPL, regex, "
    "scripts), or a query converted between languages.\n"
    "adversarial_reasoning: the attacker: behaviour, intent, attack paths, ATT&CK mapping, "
    "attribution, evasion.\n"
    "classification: one label from a small set, a short answer.\n"
    'Answer with JSON only: {"task_type": "<one of the six>"}'
)
_JSON = re.compile(r"\{[^{}]*\}")


def parse_verdict(text: str) -> TaskType | None:
    """The task type from a strict `{"task_type": ...}` answer; None for anything else."""
    match = _JSON.search(text)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {"task_type"}:
        return None
    try:
        return TaskType(str(data["task_type"]))
    except ValueError:
        return None


@dataclass(frozen=True)
class Answer:
    """A model's answer to the judge: its text and the tokens it cost."""

    text: str
    usage: Usage


class ModelCaller(Protocol):
    """Calls a model on a reservation of the job's, at its priority; RouterError on failure."""

    async def __call__(
        self,
        model: str,
        prompt: str,
        parameters: dict[str, Any],
        *,
        system: str,
        job_id: str,
        priority: int,
    ) -> Answer: ...


@dataclass
class LLMJudge:
    """Asks a model to label a request when the classifier is unsure."""

    call: ModelCaller
    policy: JudgePolicy

    def wants(self, decision: Classification) -> bool:
        return self.policy.enabled and decision.confidence < self.policy.below_confidence

    async def judge(
        self, prompt: str, decision: Classification, *, job_id: str, priority: int
    ) -> tuple[Classification, Usage]:
        """The judge's decision and what it cost, or `decision` unchanged (with the reason)
        when the judge fails; its call is reserved under `job_id` at `priority`."""
        try:
            answer = await asyncio.wait_for(
                self.call(
                    self.policy.model,
                    f"Request:\n{prompt[:4000]}",
                    {"temperature": 0, "max_tokens": 20},
                    system=SYSTEM,
                    job_id=job_id,
                    priority=priority,
                ),
                self.policy.timeout_s,
            )
        except TimeoutError:
            return _noted(decision, f"judge {self.policy.model} timed out"), Usage()
        except RouterError as exc:
            return _noted(decision, f"judge {self.policy.model} failed: {exc.code}"), Usage()
        verdict = parse_verdict(answer.text)
        if verdict is None:
            note = f"judge {self.policy.model} gave no valid task type"
            return _noted(decision, note), answer.usage
        scores = dict(decision.scores)
        reasons = [*decision.reasons, f"judge {self.policy.model} -> {verdict.value}"]
        judged = Classification(
            verdict, max(decision.confidence, 0.6), scores, reasons, DecisionLayer.JUDGE
        )
        return judged, answer.usage


def _noted(decision: Classification, note: str) -> Classification:
    return Classification(
        decision.task_type,
        decision.confidence,
        decision.scores,
        [*decision.reasons, note],
        decision.layer,
    )
