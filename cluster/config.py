"""Cluster configuration: `config/cluster.yaml` loaded and validated."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from policies.errors import UnknownModel
from policies.routing_policy import RoutingPolicy

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
_URL = TypeAdapter(AnyHttpUrl)


class ModelConfig(BaseModel):
    """A model the cluster can serve."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = ""
    """Human name, e.g. `LLaMA 3.1`."""
    specialization: str = ""
    """What it is good at."""
    vram_gb: float = Field(gt=0)
    """VRAM its weights take on a node."""
    job_vram_gb: float = Field(default=2.0, gt=0)
    """VRAM one running request needs (KV cache and activations), reserved per job."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most tokens one answer may ask for (`max_tokens`); no limit of the router's when empty."""


class Deployment(BaseModel):
    """A model served on one node: where its OpenAI-compatible API answers."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "{node_url}/{model}/v1"
    """ChatOpenAI base_url; `{node_url}` and `{model}` are filled in."""
    served_name: str | None = None
    """Model name the server expects; the model's own name when empty."""
    api_key: str = "EMPTY"
    """Bearer key the server wants (vLLM: `--api-key`)."""


class NodeConfig(BaseModel):
    """A GB10 node and the models loaded on it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    """Node id, e.g. `gb10-node-1`."""
    hostname: str = ""
    """Host name shown to clients; the id when empty."""
    url: str
    """Base URL of the node's model servers."""
    vram_total_gb: float = Field(gt=0)
    """Total VRAM of the node."""
    vram_used_gb: float = Field(default=0.0, ge=0)
    """VRAM in use outside the router's reservations at start, until telemetry says more."""
    max_jobs: int | None = Field(default=None, ge=1)
    """Most jobs the router runs on it at once; unlimited when empty."""
    models: dict[str, Deployment]
    """Models loaded on it, by model name."""

    @model_validator(mode="after")
    def _check(self) -> NodeConfig:
        _URL.validate_python(self.url)
        if self.vram_used_gb > self.vram_total_gb:
            raise ValueError(f"vram_used_gb {self.vram_used_gb} is over vram_total_gb")
        if not self.hostname:
            self.hostname = self.id
        return self


class PlacementWeights(BaseModel):
    """How much each load signal counts when choosing a node; see policies.placement.score."""

    model_config = ConfigDict(extra="forbid")

    utilization: float = Field(default=1.0, ge=0)
    queue: float = Field(default=0.5, ge=0)
    kv_cache: float = Field(default=0.5, ge=0)
    in_flight: float = Field(default=0.25, ge=0)
    vram: float = Field(default=0.25, ge=0)


class ClusterConfig(BaseModel):
    """Every node and model of the cluster."""

    model_config = ConfigDict(extra="forbid")

    placement: PlacementWeights = Field(default_factory=PlacementWeights)
    """Placement score weights."""
    models: dict[str, ModelConfig]
    """Model catalogue by name."""
    nodes: list[NodeConfig]
    """Nodes in order; the first is node 1 for `LLM_NODE_1_URL`."""

    @model_validator(mode="after")
    def _check(self) -> ClusterConfig:
        dupes = [k for k, n in Counter(node.id for node in self.nodes).items() if n > 1]
        if dupes:
            raise ValueError(f"nodes: duplicate node id {', '.join(dupes)}")
        for index, node in enumerate(self.nodes):
            where = f"nodes.{index}.models"
            unknown = [m for m in node.models if m not in self.models]
            if unknown:
                raise ValueError(f"{where}: unknown model {', '.join(unknown)} on {node.id}")
            weights = sum(self.models[m].vram_gb for m in node.models)
            if weights > node.vram_total_gb:
                raise ValueError(
                    f"{where}: models need {weights:g} GB, over {node.id}'s "
                    f"vram_total_gb {node.vram_total_gb:g}"
                )
            for name, dep in node.models.items():
                try:
                    _URL.validate_python(self.base_url(node, name, dep))
                except ValueError as exc:
                    raise ValueError(f"{where}.{name}.base_url: not a URL ({exc})") from None
        return self

    @staticmethod
    def base_url(node: NodeConfig, model: str, dep: Deployment) -> str:
        """The deployment's ChatOpenAI base_url."""
        return dep.base_url.format(node_url=node.url.rstrip("/"), model=model)

    def served_models(self) -> list[str]:
        """Models loaded on at least one node, in catalogue order."""
        return [m for m in self.models if any(m in node.models for node in self.nodes)]

    def serving(self, model: str) -> list[NodeConfig]:
        """The nodes that load `model`, in config order."""
        return [node for node in self.nodes if model in node.models]

    def require_model(self, name: str) -> ModelConfig:
        """The model called `name`; UnknownModel naming the valid ones."""
        try:
            return self.models[name]
        except KeyError:
            valid = ", ".join(self.models)
            raise UnknownModel(f"unknown model {name!r}; valid: {valid}") from None

    def node(self, node_id: str) -> NodeConfig:
        """The node with this id; KeyError naming the valid ids."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(f"unknown node {node_id!r}; valid: {', '.join(n.id for n in self.nodes)}")

    def with_node_urls(self, urls: dict[int, str]) -> ClusterConfig:
        """A copy whose n-th node (1-based) has URL `urls[n]`; re-validated."""
        data = self.model_dump()
        for number, url in urls.items():
            if not 1 <= number <= len(self.nodes):
                raise ValueError(f"LLM_NODE_{number}_URL: the cluster has {len(self.nodes)} nodes")
            data["nodes"][number - 1]["url"] = url
        return ClusterConfig.model_validate(data)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None


def load_cluster_config(path: Path) -> ClusterConfig:
    """Load and validate a cluster file."""
    return ClusterConfig.model_validate(_read_yaml(path))


def load_routing_policy(path: Path) -> RoutingPolicy:
    """Load and validate a routing policy file."""
    return RoutingPolicy.model_validate(_read_yaml(path))


def check_policy_models(policy: RoutingPolicy, cluster: ClusterConfig) -> None:
    """Raise ValueError when the policy names a model that no node serves."""
    served = cluster.served_models()
    if policy.judge.enabled and policy.judge.model not in served:
        raise ValueError(f"judge.model: {policy.judge.model!r} is served by no node")
    for task, task_policy in policy.task_types.items():
        for model in [task_policy.primary, *task_policy.fallbacks]:
            if model not in served:
                raise ValueError(
                    f"task_types.{task.value}: model {model!r} is served by no node; "
                    f"served: {', '.join(sorted(served))}"
                )
