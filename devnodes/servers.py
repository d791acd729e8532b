"""Real vLLM OpenAI-compatible servers on the CPU, standing in for the GB10 nodes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import yaml

from cluster.config import CONFIG_DIR, ClusterConfig, load_cluster_config

#: The cluster the stand-ins replace: one server per node, serving that node's models.
DEFAULT_CLUSTER = CONFIG_DIR / "cluster.yaml"


def node_models(cluster: ClusterConfig) -> dict[str, list[str]]:
    """Which models each stand-in node serves (served-model-name aliases of one server)."""
    return {node.id: list(node.models) for node in cluster.nodes}


OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}

#: Defaults the caller's environment may override. Idle OpenMP threads otherwise spin for
#: a while after each step, starving the router that shares the CPU: through the router, a
#: 16-token answer took 175 ms at p50 spinning and 112 ms passive (bench/openai_latency.py).
CPU_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass
class VllmServer:
    """One vLLM server process serving one model under several names."""

    name: str
    python: Path
    model: Path
    served_names: list[str]
    port: int
    log_path: Path
    max_num_seqs: int = 4
    max_model_len: int = 2048
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model),
            "--served-model-name",
            *self.served_names,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--enforce-eager",
            "--distributed-executor-backend",
            "uni",
            "--max-num-seqs",
            str(self.max_num_seqs),
            "--max-model-len",
            str(self.max_model_len),
            # Tool calling and JSON output, which the router passes through. The pythonic
            # parser needs no special tokens, so it works with any small model's tokenizer;
            # compact JSON keeps guided answers short.
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "pythonic",
            "--structured-outputs-config.backend",
            "xgrammar",
            "--structured-outputs-config.disable_any_whitespace",
            "true",
        ]

    def start(self) -> None:
        """Launch the process (returns at once; see `wait_ready`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = {**CPU_ENV, **os.environ, **OFFLINE_ENV}
        self.proc = subprocess.Popen(
            self.command(),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 240) -> float:
        """Block until `/health` answers; seconds it took. RuntimeError if it dies first."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """Stop at once, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, grace_s: float = 10) -> None:
        """Stop cleanly (SIGTERM), killing after `grace_s`."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


def local_servers(python: Path, model: Path, base_port: int, log_dir: Path) -> list[VllmServer]:
    """One server per node of the default cluster, on `base_port + 1`, `base_port + 2`, ..."""
    topology = node_models(load_cluster_config(DEFAULT_CLUSTER))
    return [
        VllmServer(node, python, model, names, base_port + i, log_dir / f"{node}.log")
        for i, (node, names) in enumerate(topology.items(), start=1)
    ]


def write_cluster_config(servers: list[VllmServer], path: Path) -> Path:
    """The default cluster file with each node pointed at its local server."""
    data = yaml.safe_load(DEFAULT_CLUSTER.read_text())
    by_node = {s.name: s for s in servers}
    for node in data["nodes"]:
        server = by_node[node["id"]]
        node["url"] = server.url
        node["models"] = {m: {"base_url": "{node_url}/v1"} for m in server.served_names}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
