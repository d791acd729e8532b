"""The layered classifier: language, the learned model, its explanations, and the fallback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from cluster.config import CONFIG_DIR, load_routing_policy
from policies.types import TaskType
from routing.encoder import shared_encoder
from routing.layered import DEFAULT_MODEL, LayeredClassifier
from routing.learned import LearnedModel
from training.fit import TRAINING_FILE

POLICY = load_routing_policy(CONFIG_DIR / "routing.yaml")


@pytest.fixture(scope="module")
def classifier() -> LayeredClassifier:
    loaded = LayeredClassifier.load(POLICY)
    assert loaded.active == "learned", loaded.unavailable_reason
    return loaded


def test_the_committed_model_was_trained_on_the_committed_examples() -> None:
    model = LearnedModel.load(DEFAULT_MODEL)
    assert model.training_sha256 == hashlib.sha256(TRAINING_FILE.read_bytes()).hexdigest()
    assert len(model.train_ids) == sum(1 for line in TRAINING_FILE.read_text().splitlines() if line)


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        (
            "Write a KQL query that finds sign-ins from anonymising proxies.",
            TaskType.RULE_GENERATION,
        ),
        (
            "Pull every sender address out of these headers as JSON.\nFrom: a@b.c\nReply-To: d@e.f",
            TaskType.STRUCTURED_PARSING,
        ),
        (
            "What is the intruder after when they enumerate domain trusts?",
            TaskType.ADVERSARIAL_REASONING,
        ),
        ("Benign or malicious? One word.\nwhoami /priv", TaskType.CLASSIFICATION),
        ("Explain to our CFO why we need a second SOC analyst.", TaskType.GENERAL_REASONING),
        (
            "Traduce este aviso al inglés, por favor: 'Su cuenta ha sido bloqueada.'",
            TaskType.MULTILINGUAL,
        ),
    ],
)
def test_typical_requests(classifier: LayeredClassifier, prompt: str, task: TaskType) -> None:
    assert classifier.classify(prompt).task_type is task


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        # The script, query or configuration is the deliverable: rule_generation.
        (
            "Need a bash one-liner that lists every user with UID 0 in /etc/passwd.",
            TaskType.RULE_GENERATION,
        ),
        (
            "Give me an osquery query for launch daemons added in the last day.",
            TaskType.RULE_GENERATION,
        ),
        ("Write an auditd rule that logs every write to /etc/sudoers.", TaskType.RULE_GENERATION),
        (
            "jq filter please: from this CloudTrail JSON keep eventName and sourceIPAddress.",
            TaskType.RULE_GENERATION,
        ),
        # An English request for one label about foreign text, a URL or domains: classification.
        (
            "Spam or not? Just the word.\n'Gana un iPhone gratis, haz clic aquí ahora'",
            TaskType.CLASSIFICATION,
        ),
        (
            "Phishing or legitimate, one word: hxxp://micros0ft-login[.]support/auth",
            TaskType.CLASSIFICATION,
        ),
        # Saying what a rule does is general_reasoning; writing it is rule_generation.
        (
            "What does this Sigma rule actually catch? Explain it for the runbook.\n"
            "detection:\n  selection:\n    Image|endswith: '\\\\rundll32.exe'\n"
            "  condition: selection",
            TaskType.GENERAL_REASONING,
        ),
    ],
)
def test_boundary_conventions(classifier: LayeredClassifier, prompt: str, task: TaskType) -> None:
    assert classifier.classify(prompt).task_type is task


def test_confidence_is_calibrated_by_the_fitted_temperature() -> None:
    model = LearnedModel.load(DEFAULT_MODEL)
    assert 0.2 < model.temperature < 5 and model.temperature != 1.0


def test_a_decision_explains_itself(classifier: LayeredClassifier) -> None:
    decision = classifier.classify("Write a Sigma rule for certutil downloads", ["rule"])
    assert decision.layer == "learned"
    assert 0 < decision.confidence <= 1
    assert sum(decision.scores.values()) == pytest.approx(1, abs=1e-3)
    assert any(r.startswith("nearest example t-") for r in decision.reasons)
    assert any("hint 'rule'" in r for r in decision.reasons)
    assert decision.alternates() and decision.alternates()[0][0] is not decision.task_type


def test_foreign_requests_are_decided_by_the_language_layer(classifier: LayeredClassifier) -> None:
    decision = classifier.classify("Напиши правило YARA для этого образца, пожалуйста.")
    assert (decision.task_type, decision.layer) == (TaskType.MULTILINGUAL, "language")


def test_without_the_learned_model_rules_decide_and_say_why(tmp_path: Path) -> None:
    fallback = LayeredClassifier.load(POLICY, model_path=tmp_path / "missing.npz")
    assert fallback.active == "rules"
    assert "rules alone" in (fallback.unavailable_reason or "")
    decision = fallback.classify("Write a YARA rule for this sample")
    assert (decision.task_type, decision.layer) == (TaskType.RULE_GENERATION, "rules")
    assert fallback.describe()["unavailable_reason"] == fallback.unavailable_reason


def test_embeddings_are_unit_vectors_and_mean_something() -> None:
    encoder = shared_encoder()
    a = encoder.encode("How do I reset my password?")
    b = encoder.encode("I forgot my login password and need a new one")
    c = encoder.encode("The firewall dropped packets from the scanner")
    assert np.linalg.norm(a) == pytest.approx(1, abs=1e-5)
    assert float(a @ b) > 0.5 > float(a @ c)
    assert np.array_equal(a, encoder.encode("How do I reset my password?"))


def test_long_prompts_are_windowed() -> None:
    encoder = shared_encoder()
    ids = encoder.token_ids(
        "Explain this. " + "EventID=4625 Account=svc_backup " * 300 + "Is it bad?"
    )
    assert len(ids) == encoder.max_tokens
    assert ids[-1] == encoder.token_ids("x")[-1]  # still ends with [SEP]
