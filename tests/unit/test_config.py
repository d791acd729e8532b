"""Config files, their validation and the specification's environment overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.runtime import build_runtime
from app.settings import Settings
from cluster.config import CONFIG_DIR, ClusterConfig, load_routing_policy


def cluster_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "cluster.yaml").read_text())
    return data


def test_default_cluster_is_the_specification() -> None:
    cluster = ClusterConfig.model_validate(cluster_data())
    assert [n.id for n in cluster.nodes] == ["gb10-node-1", "gb10-node-2"]
    assert list(cluster.node("gb10-node-1").models) == ["deepseek", "qwen72"]
    assert list(cluster.node("gb10-node-2").models) == [
        "phi4",
        "qwen-coder",
        "llama31",
        "granite-guardian",
    ]
    assert {n: m.vram_gb for n, m in cluster.models.items()} == {
        "deepseek": 40,
        "qwen72": 35,
        "phi4": 15,
        "qwen-coder": 20,
        "llama31": 25,
        "granite-guardian": 10,
    }
    node2 = cluster.node("gb10-node-2")
    assert (
        ClusterConfig.base_url(node2, "llama31", node2.models["llama31"])
        == "http://gb10-node-2:8001/llama31/v1"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["nodes"][0]["models"].update({"gpt5": {}}),
            "nodes.0.models: unknown model gpt5",
        ),
        (lambda d: d["nodes"][1].update(vram_total_gb=50), "models need 70 GB, over gb10-node-2"),
        (lambda d: d["nodes"][1].update(id="gb10-node-1"), "duplicate node id gb10-node-1"),
        (lambda d: d["nodes"][0].update(url="not a url"), "url"),
        (
            lambda d: d["nodes"][0]["models"].update(deepseek={"base_url": "ftp//x"}),
            "deepseek.base_url",
        ),
    ],
)
def test_bad_cluster_config_names_the_field(mutate: Any, message: str) -> None:
    data = cluster_data()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        ClusterConfig.model_validate(data)


def test_task_type_without_a_model_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIG_DIR / "routing.yaml").read_text())
    del data["task_types"]["classification"]
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="task_types: no model for classification"):
        load_routing_policy(path)


def test_policy_naming_an_unserved_model_stops_start_up(tmp_path: Path, clean_env: Any) -> None:
    data = yaml.safe_load((CONFIG_DIR / "routing.yaml").read_text())
    data["task_types"]["multilingual"]["fallbacks"] = ["aya"]
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        ValueError, match="task_types.multilingual: model 'aya' is served by no node"
    ):
        build_runtime(Settings(routing_config=path))


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("task_types: [")
    with pytest.raises(ValueError, match="routing.yaml: not valid YAML"):
        load_routing_policy(path)


def test_environment_overrides_the_nodes_and_every_model_follows(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("LLM_NODE_1_URL", "http://10.0.0.5:9000")
    clean_env.setenv("LLM_NODE_2_URL", "http://10.0.0.6:9000/")
    clean_env.setenv("LLM_ENABLE_PARALLEL", "false")
    clean_env.setenv("LLM_MAX_PARALLEL_JOBS", "8")
    clean_env.setenv("LLM_DEFAULT_TIMEOUT", "12.5")
    rt = build_runtime(Settings())
    urls = {(e.node_id, e.model): e.base_url for e in rt.pool.endpoints()}
    assert urls[("gb10-node-1", "qwen72")] == "http://10.0.0.5:9000/qwen72/v1"
    assert urls[("gb10-node-2", "granite-guardian")] == "http://10.0.0.6:9000/granite-guardian/v1"
    assert rt.settings.llm_enable_parallel is False
    assert rt.settings.llm_max_parallel_jobs == 8
    assert rt.settings.llm_default_timeout == 12.5


def test_urgent_slots_reach_the_scheduler(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ROUTER_URGENT_SLOTS", "3")
    assert build_runtime(Settings()).scheduler.limits.urgent_slots == 3


def test_explicit_arguments_beat_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LLM_MAX_PARALLEL_JOBS", "8")
    assert Settings(llm_max_parallel_jobs=2).llm_max_parallel_jobs == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LLM_MAX_PARALLEL_JOBS", "0"),
        ("LLM_DEFAULT_TIMEOUT", "-1"),
        ("LLM_NODE_1_URL", "nope"),
        ("ROUTER_URGENT_SLOTS", "-1"),
    ],
)
def test_bad_environment_names_the_variable(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings()
