"""The rule classifier and the router's overrides."""

from __future__ import annotations

import pytest

from app.api import Router
from cluster.config import CONFIG_DIR, load_cluster_config, load_routing_policy
from policies.classification import RuleClassifier, foreign_script_share
from policies.errors import InvalidRequest, UnknownModel
from policies.types import TaskType
from routing.router import LLMRouter

POLICY = load_routing_policy(CONFIG_DIR / "routing.yaml")
CLUSTER = load_cluster_config(CONFIG_DIR / "cluster.yaml")
ROUTER = LLMRouter(POLICY, list(CLUSTER.models), RuleClassifier(POLICY))


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Write a Sigma rule that flags certutil downloading files", TaskType.RULE_GENERATION),
        (
            "Extract every IP address and domain from this email into JSON",
            TaskType.STRUCTURED_PARSING,
        ),
        (
            "Map this behaviour to MITRE ATT&CK techniques and explain the attacker's goal",
            TaskType.ADVERSARIAL_REASONING,
        ),
        ("Classify this alert: true positive or false positive?", TaskType.CLASSIFICATION),
        ("Translate this ransom note into English", TaskType.MULTILINGUAL),
        ("Проанализируйте этот журнал и объясните, что произошло", TaskType.MULTILINGUAL),
        ("Summarize the incident timeline for the weekly report", TaskType.GENERAL_REASONING),
    ],
)
def test_rules_route_typical_requests(prompt: str, task: TaskType) -> None:
    assert RuleClassifier(POLICY).classify(prompt).task_type is task


@pytest.mark.parametrize(
    ("prompt", "rule", "matches"),
    [
        ("Summarise the advisory in Portuguese for the Lisbon team.", "output_language", True),
        ("Explain it in plain English for the board.", "output_language", False),
        ("Explain the regex, no need to write a new one.", "explain_not_write", True),
        ("Write a regex for AWS keys.", "explain_not_write", False),
    ],
)
def test_labelling_conventions_have_rules(prompt: str, rule: str, matches: bool) -> None:
    _, reasons = RuleClassifier(POLICY).rule_scores(prompt)
    assert any(r.startswith(f"rule {rule} ") for r in reasons) is matches


def test_decision_explains_itself() -> None:
    decision = Router(ROUTER).route_request(
        {"prompt": "Analyze this threat...", "task_hints": ["threat", "adversary"]}
    )
    assert decision["task_type"] == "adversarial_reasoning"
    assert decision["model"] == "llama31"
    assert decision["priority"] == 1
    assert 0 < decision["confidence"] <= 1
    assert any("hint 'threat'" in r for r in decision["reasons"])


def test_nothing_matches_falls_to_the_default_with_low_confidence() -> None:
    c = RuleClassifier(POLICY).classify("hello there")
    assert c.task_type is TaskType.GENERAL_REASONING
    assert c.confidence < 0.5


def test_explicit_task_type_and_model_win() -> None:
    d = ROUTER.decide("Write a YARA rule", task_type="classification")
    assert (d.task_type, d.model, d.override) == (
        TaskType.CLASSIFICATION,
        "granite-guardian",
        "task_type",
    )
    d = ROUTER.decide("Write a YARA rule", model="deepseek")
    assert d.model == "deepseek" and d.candidates == ["deepseek"]


def test_unknown_names_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(UnknownModel, match="valid: deepseek, qwen72"):
        ROUTER.decide("x", model="gpt")
    with pytest.raises(InvalidRequest, match="valid: general_reasoning"):
        ROUTER.decide("x", task_type="poetry")


def test_foreign_script_share() -> None:
    assert foreign_script_share("hello") == 0
    assert foreign_script_share("привет") == 1
    assert foreign_script_share("123 !!") == 0


def test_operations_map_to_task_types() -> None:
    assert POLICY.operation_task_type("Extract") is TaskType.STRUCTURED_PARSING
    assert POLICY.operation_task_type("analyze") is TaskType.ADVERSARIAL_REASONING
    assert POLICY.operation_task_type("multilingual") is TaskType.MULTILINGUAL
    with pytest.raises(ValueError, match="valid: "):
        POLICY.operation_task_type("juggle")


def test_without_spill_over_only_the_primary_is_a_candidate() -> None:
    policy = POLICY.model_copy(deep=True)
    policy.task_types[TaskType.CLASSIFICATION].spill_over = False
    router = LLMRouter(policy, list(CLUSTER.models), RuleClassifier(policy))
    assert router.decide("x", task_type="classification").candidates == ["granite-guardian"]
    assert ROUTER.decide("x", task_type="classification").candidates == [
        "granite-guardian",
        "phi4",
        "deepseek",
    ]
