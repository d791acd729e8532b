"""Classifying happens on the router's own low-priority thread, never on the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from cluster.config import CONFIG_DIR, load_routing_policy
from policies.classification import Classification
from policies.routing_policy import RoutingPolicy
from policies.types import DecisionLayer, TaskType
from routing.router import CLASSIFY_NICE, LLMRouter

POLICY = load_routing_policy(CONFIG_DIR / "routing.yaml")


class SlowClassifier:
    """Blocks its thread for a while, as the encoder does, and notes where it ran."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.thread_ids: list[int] = []
        self.nice: list[int] = []

    def classify(self, prompt: str, task_hints: list[str] | None = None) -> Classification:
        self.thread_ids.append(threading.get_ident())
        self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        time.sleep(self.seconds)
        scores = {t: float(t is TaskType.CLASSIFICATION) for t in TaskType}
        return Classification(TaskType.CLASSIFICATION, 0.9, scores, [], DecisionLayer.LEARNED)

    def with_policy(self, policy: RoutingPolicy) -> SlowClassifier:
        return self

    def describe(self) -> dict[str, object]:
        return {}


async def test_the_loop_keeps_running_while_a_request_is_classified() -> None:
    classifier = SlowClassifier(0.3)
    router = LLMRouter(POLICY, ["llama31", "granite-guardian"], classifier)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        decision = await router.adecide("Benign or malicious?", job_id="t/j")
    finally:
        beat.cancel()
        router.close()
    assert decision.task_type is TaskType.CLASSIFICATION
    assert ticks >= 10  # the loop ran ~30 ticks' worth while the classifier slept
    assert classifier.thread_ids != [threading.get_ident()]
    assert classifier.nice[0] >= CLASSIFY_NICE


async def test_a_given_task_type_is_decided_without_the_classifier() -> None:
    classifier = SlowClassifier(0.0)
    router = LLMRouter(POLICY, ["llama31"], classifier)
    decision = await router.adecide("anything", task_type="rule_generation", job_id="t/j")
    router.close()
    assert decision.task_type is TaskType.RULE_GENERATION and classifier.thread_ids == []
