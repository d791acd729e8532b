"""Routing policy reloads without a restart; the LLM judge for unsure decisions."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from app.runtime import RouterRuntime, build_runtime, judge_caller
from cluster.config import CONFIG_DIR
from policies.classification import Classification
from policies.routing_policy import JudgePolicy
from policies.types import DecisionLayer, TaskType
from routing.judge import LLMJudge, parse_verdict
from tests.conftest import FakeCluster
from tests.integration.conftest import SECRET


def copy_policy(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    shutil.copy(CONFIG_DIR / "routing.yaml", path)
    return path


def rewrite(path: Path, change: dict[str, object] | str) -> None:
    if isinstance(change, str):
        path.write_text(change)
    else:
        data = yaml.safe_load(path.read_text())
        data["task_types"]["classification"].update(change)
        path.write_text(yaml.safe_dump(data))
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))


def test_a_changed_policy_takes_effect_and_a_broken_one_is_refused(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = copy_policy(tmp_path)
    rt = build_runtime(fake_cluster.settings(routing_config=path))
    prompt, hints = "Label this alert: true positive or false positive?", ["triage"]
    assert rt.router.decide(prompt, hints).model == "granite-guardian"
    assert rt.reload_policy() is False  # unchanged

    rewrite(path, {"primary": "phi4", "fallbacks": []})
    assert rt.reload_policy() is True
    assert rt.router.decide(prompt, hints).model == "phi4"
    assert rt.router.source.last_error is None

    rewrite(path, "task_types: [unclosed")
    assert rt.reload_policy() is False
    assert "not valid YAML" in (rt.router.source.last_error or "")
    assert rt.router.decide(prompt, hints).model == "phi4"

    rewrite(
        path,
        (CONFIG_DIR / "routing.yaml")
        .read_text()
        .replace("primary: granite-guardian", "primary: gpt-9"),
    )
    assert rt.reload_policy() is False
    assert "gpt-9" in (rt.router.source.last_error or "")
    assert rt.router.decide(prompt, hints).model == "phi4"


def test_rules_endpoint_shows_the_classifier_and_reload_errors(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from server import create_app
    from service.auth import issue_token

    path = copy_policy(tmp_path)
    runtime = build_runtime(
        fake_cluster.settings(routing_config=path, jwt_secret=SECRET, health_interval_s=0)
    )
    app = create_app(runtime=runtime)
    headers = {"Authorization": f"Bearer {issue_token(SECRET, user='u', tenant='t')}"}
    with TestClient(app) as client:
        rules = client.get("/api/llm/routing/rules", headers=headers).json()
        assert rules["classifier"]["active"] == "learned"
        assert rules["classifier"]["layers"] == ["override", "language", "learned"]
        assert rules["policy_file"]["last_reload_error"] is None
        rewrite(path, "nonsense: [")
        runtime.reload_policy()
        rules = client.get("/api/llm/routing/rules", headers=headers).json()
        assert "not valid YAML" in rules["policy_file"]["last_reload_error"]
        decision = client.post(
            "/api/llm/test-classification",
            headers=headers,
            json={"prompt": "Write a Sigma rule for psexec"},
        ).json()
        routing = decision["routing"]
        assert routing["task_type"] == "rule_generation" and routing["layer"] == "learned"
        assert routing["alternates"] and routing["reasons"]


def test_rules_only_service_says_so(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch
) -> None:
    rt = build_runtime(fake_cluster.settings(classifier="rules"))
    assert rt.router.classifier.describe()["active"] == "rules"


def test_verdict_parsing_is_strict() -> None:
    assert parse_verdict('{"task_type": "classification"}') is TaskType.CLASSIFICATION
    assert parse_verdict('Sure! {"task_type": "rule_generation"}') is TaskType.RULE_GENERATION
    assert parse_verdict('{"task_type": "poetry"}') is None
    assert parse_verdict('{"task_type": "classification", "why": "x"}') is None
    assert parse_verdict("classification") is None


UNSURE = Classification(
    TaskType.GENERAL_REASONING, 0.3, dict.fromkeys(TaskType, 0.1), ["x"], DecisionLayer.LEARNED
)


async def test_judge_overrules_an_unsure_decision(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = lambda m, msgs: '{"task_type": "classification"}'
    judge = LLMJudge(judge_caller(runtime.calls), JudgePolicy(enabled=True, below_confidence=0.5))
    assert judge.wants(UNSURE)
    judged, usage = await judge.judge("Is this bad?", UNSURE, job_id="job_j", priority=2)
    assert (judged.task_type, judged.layer) == (TaskType.CLASSIFICATION, "judge")
    assert fake_cluster.node2.calls[0].path_model == "granite-guardian"
    assert usage.total_tokens > 0
    assert runtime.scheduler.leases() == []  # its reservation ended with the call


async def test_judge_failure_keeps_the_decision(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    judge = LLMJudge(judge_caller(runtime.calls), JudgePolicy(enabled=True, timeout_s=0.2))
    fake_cluster.node2.behaviour.reply = lambda m, msgs: "I think it is classification"
    kept, _ = await judge.judge("Is this bad?", UNSURE, job_id="job_j", priority=2)
    assert kept.task_type is TaskType.GENERAL_REASONING and "no valid task type" in kept.reasons[-1]
    fake_cluster.node2.behaviour.delay_s = 1.0
    kept, usage = await judge.judge("Is this bad?", UNSURE, job_id="job_j", priority=2)
    assert "timed out" in kept.reasons[-1] and usage.total_tokens == 0


async def test_router_asks_the_judge_only_when_enabled_and_unsure(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = lambda m, msgs: '{"task_type": "rule_generation"}'
    runtime.router.judge = LLMJudge(
        judge_caller(runtime.calls), JudgePolicy(enabled=True, below_confidence=1.0)
    )
    decision = await runtime.router.adecide("Summarize the incident", job_id="job_1")
    assert decision.layer == "judge" and decision.model == "qwen-coder"
    assert decision.usage.total_tokens > 0
    explicit = await runtime.router.adecide(
        "Summarize the incident", task_type="general_reasoning", job_id="job_2"
    )
    assert explicit.override == "task_type" and explicit.usage.total_tokens == 0
    runtime.router.judge = LLMJudge(judge_caller(runtime.calls), JudgePolicy(enabled=False))
    assert (await runtime.router.adecide("Summarize the incident", job_id="job_3")).layer != "judge"
