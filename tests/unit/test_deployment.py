"""docker-compose.yml agrees with the cluster files, the settings and .env.example, and
Debian's docker-compose accepts it (`docker-compose config`, no daemon needed)."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings
from cluster.config import ClusterConfig, load_cluster_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CLUSTER = yaml.safe_load((ROOT / "config/cluster.yaml").read_text())
COMPOSE_CLUSTER = yaml.safe_load((ROOT / "config/cluster.compose.yaml").read_text())
ENV_EXAMPLE = {
    line.lstrip("# ").split("=", 1)[0]
    for line in (ROOT / ".env.example").read_text().splitlines()
    if re.match(r"#? ?[A-Z][A-Z0-9_]*=", line)
}


def served_names(command: str) -> list[str]:
    words = command.split()
    start = words.index("--served-model-name") + 1
    return list(itertools.takewhile(lambda w: not w.startswith("--"), words[start:]))


def test_each_node_is_a_vllm_service_serving_its_models_on_its_port() -> None:
    models = {n["id"]: list(n["models"]) for n in CLUSTER["nodes"]}
    assert [n["id"] for n in COMPOSE_CLUSTER["nodes"]] == list(models)
    for node in COMPOSE_CLUSTER["nodes"]:
        host, port = re.fullmatch(r"http://([\w-]+):(\d+)", node["url"]).groups()  # type: ignore[union-attr]
        assert host == node["id"]
        assert list(node["models"]) == models[node["id"]]
        assert all(m["base_url"] == "{node_url}/v1" for m in node["models"].values())
        gpu, cpu = SERVICES[node["id"]], SERVICES[f"{node['id']}-cpu"]
        assert gpu["image"].startswith("vllm/vllm-openai:")
        assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
        assert node["id"] in cpu["networks"]["default"]["aliases"]
        for service in (gpu, cpu):
            assert service["ports"] == [f"{port}:{port}"]
            assert f"--port {port}" in service["command"]
            assert served_names(service["command"]) == models[node["id"]]
            assert "--enable-auto-tool-choice" in service["command"]
            assert "./models:/models:ro" in service["volumes"]
    assert (gpu["profiles"], cpu["profiles"]) == (["gpu"], ["cpu"])


def test_the_compose_cluster_differs_from_the_default_only_in_where_models_answer() -> None:
    loaded = load_cluster_config(ROOT / "config/cluster.compose.yaml")
    node = loaded.node("gb10-node-2")
    assert ClusterConfig.base_url(node, "llama31", node.models["llama31"]) == (
        "http://gb10-node-2:8002/v1"
    )
    assert COMPOSE_CLUSTER["models"] == CLUSTER["models"]
    assert COMPOSE_CLUSTER["placement"] == CLUSTER["placement"]
    strip = [{k: v for k, v in n.items() if k not in ("url", "models")} for n in CLUSTER["nodes"]]
    ours = [
        {k: v for k, v in n.items() if k not in ("url", "models")} for n in COMPOSE_CLUSTER["nodes"]
    ]
    assert ours == strip


def test_routers_agents_and_stores_are_wired_through_known_settings() -> None:
    routers = [SERVICES["router-1"], SERVICES["router-2"]]
    aliases = {
        alias
        for field in Settings.model_fields.values()
        for alias in getattr(field.validation_alias, "choices", [field.validation_alias])
        if isinstance(alias, str)
    }
    for router in routers:
        assert router["env_file"] == ".env"
        assert set(router["environment"]) <= aliases, set(router["environment"]) - aliases
        assert router["environment"]["ROUTER_CLUSTER_CONFIG"] == "/app/config/cluster.compose.yaml"
        assert {"redis", "postgres"} <= set(router["depends_on"])
    assert {r["ports"][0].split(":")[1] for r in routers} == {"8000"}
    for node in CLUSTER["nodes"]:
        agents = [s for s in SERVICES.values() if f"--node-id {node['id']}" in s.get("command", "")]
        assert len(agents) == 1 and "node-agent" in agents[0]["command"]
    referenced = set(re.findall(r"\$\{(\w+)\}", (ROOT / "docker-compose.yml").read_text()))
    assert referenced <= ENV_EXAMPLE, referenced - ENV_EXAMPLE
    assert {"ROUTER_JWT_SECRET", "POSTGRES_PASSWORD", "ROUTER_OPERATOR_TOKEN"} <= ENV_EXAMPLE


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    for profile in ("gpu", "cpu"):
        done = subprocess.run(
            ["docker-compose", "--profile", profile, "config", "-q"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
