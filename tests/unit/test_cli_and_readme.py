"""The command line and the README's promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jwt
import pytest

from cli.main import main
from graph.builder import build_graph

ROOT = Path(__file__).resolve().parents[2]


def test_readme_diagram_is_the_graph() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    assert block.group(1) == build_graph().compile().get_graph().draw_mermaid()


def test_readme_names_the_ci_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "uv run --frozen pytest" in readme and "uv run --frozen pytest" in ci


def test_classify_prints_the_decision(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch
) -> None:
    assert main(["classify", "Write a Sigma rule for psexec", "--hint", "rule"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "qwen-coder"


def test_nodes_and_models_list_the_cluster(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch
) -> None:
    assert main(["nodes"]) == 0
    assert "gb10-node-2" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "http://gb10-node-2:8001/granite-guardian/v1" in capsys.readouterr().out


def test_token_is_signed_with_the_secret(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch
) -> None:
    secret = "cli-secret-0123456789abcdef0123456789"
    clean_env.setenv("ROUTER_JWT_SECRET", secret)
    assert main(["token", "--user", "ann", "--tenant", "acme", "--admin", "--ttl", "60"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), secret, algorithms=["HS256"])
    assert (claims["sub"], claims["tenant"], claims["roles"]) == ("ann", "acme", ["admin"])
    assert claims["exp"] - claims["iat"] == 60
    assert main(["token", "--user", "noc", "--tenant", "ops", "--operator"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), secret, algorithms=["HS256"])
    assert claims["roles"] == ["operator"]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["token", "--user", "a", "--tenant", "b"], {}, "ROUTER_JWT_SECRET is not set"),
        (["nodes", "--cluster-config", "/missing.yaml"], {}, "/missing.yaml: cannot read"),
        (["models"], {"LLM_NODE_1_URL": "nope"}, "LLM_NODE_1_URL"),
        (["serve", "--port", "0"], {}, "no credentials configured"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    clean_env: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gb10-router: error: ") and message in err
    assert err.count("\n") == 1
