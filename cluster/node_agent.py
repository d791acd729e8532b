"""The GB10 node agent: reads the GPU through NVML and reports it to the router."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import httpx

from cluster.connections import node_limits

log = logging.getLogger(__name__)
GIB = 1024**3
MODEL_SERVER_PATTERN = r"vllm"
"""Command lines of the node's model servers, by default."""


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this machine (no driver, no GPU)."""


@dataclass(frozen=True)
class GpuSample:
    """One reading of every GPU of the node, summed."""

    gpus: int
    vram_used_gb: float
    vram_total_gb: float
    utilization: float
    """Mean compute utilisation, 0-1."""
    processes: int
    power_w: float
    temperature_c: float
    """Hottest GPU."""
    model_server_vram_gb: float = 0.0
    """Held by the node's own model servers: weights and vLLM's preallocated KV cache."""

    @property
    def other_vram_gb(self) -> float:
        """In use by anything but the model servers (another tenant's job, a fine-tune).

        The model servers' memory is not free for other work, but the router already accounts
        for it: its reservations stand for the jobs' share of the KV cache, and vLLM's own
        KV-cache metric says how full that cache is. Counting it again would make every vLLM
        node look full, since vLLM takes most of the GPU at start.
        """
        return max(0.0, round(self.vram_used_gb - self.model_server_vram_gb, 3))


class GpuReader(Protocol):
    def read(self) -> GpuSample: ...


def command_line_matches(pattern: str) -> Callable[[int], bool]:
    """Whether a process's command line matches `pattern` (a regex), read from /proc."""
    compiled = re.compile(pattern)

    def matches(pid: int) -> bool:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            # Gone, or in another PID namespace (a containerised server): not one we can name.
            return False
        return bool(compiled.search(raw.replace(b"\0", b" ").decode(errors="replace")))

    return matches


class NvmlReader:
    """Reads NVML through nvidia-ml-py; `nvml` is the pynvml module (or a stand-in for tests).

    `is_model_server(pid)` picks out the node's model-server processes (default: command lines
    that mention vllm), whose memory is reported apart.
    """

    def __init__(
        self,
        nvml: ModuleType | None = None,
        is_model_server: Callable[[int], bool] | None = None,
    ) -> None:
        self._is_model_server = is_model_server or command_line_matches(MODEL_SERVER_PATTERN)
        if nvml is None:
            import pynvml as nvml_module

            nvml = nvml_module
        self._nvml = nvml
        try:
            nvml.nvmlInit()
            self._handles = [
                nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())
            ]
        except nvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML is not available here: {exc}") from None
        if not self._handles:
            raise NvmlUnavailable("NVML found no GPU")

    def read(self) -> GpuSample:
        n = self._nvml
        used = total = power = 0.0
        utils: list[float] = []
        processes = 0
        hottest = server_memory = 0.0
        for h in self._handles:
            memory = n.nvmlDeviceGetMemoryInfo(h)
            used += memory.used / GIB
            total += memory.total / GIB
            utils.append(n.nvmlDeviceGetUtilizationRates(h).gpu / 100)
            running = n.nvmlDeviceGetComputeRunningProcesses(h)
            processes += len(running)
            for proc in running:
                # usedGpuMemory is None where the driver cannot tell (some unified-memory GPUs).
                if proc.usedGpuMemory and self._is_model_server(proc.pid):
                    server_memory += proc.usedGpuMemory / GIB
            power += n.nvmlDeviceGetPowerUsage(h) / 1000
            hottest = max(hottest, float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)))
        return GpuSample(
            gpus=len(self._handles),
            vram_used_gb=round(used, 3),
            vram_total_gb=round(total, 3),
            utilization=round(sum(utils) / len(utils), 4),
            processes=processes,
            power_w=round(power, 1),
            temperature_c=hottest,
            model_server_vram_gb=round(server_memory, 3),
        )

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def status_update(node_id: str, sample: GpuSample) -> dict[str, Any]:
    """The body of `POST /api/llm/nodes/status` for a sample."""
    return {
        "node_id": node_id,
        "vram_used_gb": sample.other_vram_gb,
        "compute_utilization": min(1.0, max(0.0, sample.utilization)),
        "gpu": asdict(sample),
    }


class NodeAgent:
    """Posts a sample every `interval_s`; while the router is unreachable, retries with backoff."""

    def __init__(
        self,
        node_id: str,
        router_url: str,
        token: str,
        reader: GpuReader,
        *,
        interval_s: float = 2.0,
        max_backoff_s: float = 30.0,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.node_id = node_id
        self.url = router_url.rstrip("/") + "/api/llm/nodes/status"
        self.reader = reader
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self._client = client or httpx.AsyncClient(timeout=5, limits=node_limits())
        self._headers = {"Authorization": f"Bearer {token}"}
        self._sleep = sleep
        self.sent = 0
        self.failures = 0

    async def report_once(self) -> dict[str, Any]:
        """Read and post one sample; httpx errors propagate. A 4xx is a configuration error."""
        body = status_update(self.node_id, self.reader.read())
        response = await self._client.post(self.url, json=body, headers=self._headers)
        if 400 <= response.status_code < 500:
            raise PermissionError(
                f"router refused the report ({response.status_code}): {response.text[:200]}"
            )
        response.raise_for_status()
        self.sent += 1
        return body

    async def run(self, iterations: int | None = None) -> None:
        """Report until cancelled (or `iterations` successful reports)."""
        backoff = 1.0
        while iterations is None or self.sent < iterations:
            try:
                body = await self.report_once()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                self.failures += 1
                log.warning("router unreachable (%s); retrying in %.0fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 1.0
            log.info("reported %s at %s", body["gpu"], time.strftime("%H:%M:%S"))
            if iterations is None or self.sent < iterations:
                await self._sleep(self.interval_s)

    async def aclose(self) -> None:
        await self._client.aclose()
