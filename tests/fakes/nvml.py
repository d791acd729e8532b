"""A stand-in for the pynvml module: the calls the node agent makes, over a settable GPU state."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

GIB = 1024**3


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


@dataclass
class FakeGpu:
    used_gib: float = 0.6
    total_gib: float = 139.8
    util_percent: int = 0
    processes: int = 0
    process_gib: list[float | None] = field(default_factory=list)
    """Memory of each compute process (pids 1000, 1001, ...); else `processes` of 1 GiB."""
    power_mw: int = 118_000
    temperature_c: int = 31


@dataclass
class FakeNvml:
    """Behaves like the module: `nvml.nvmlInit()`, `nvml.nvmlDeviceGetMemoryInfo(h)`, ..."""

    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    missing: bool = False
    initialised: bool = False
    NVMLError: type[Exception] = NVMLError
    NVML_TEMPERATURE_GPU: int = 0

    def nvmlInit(self) -> None:
        if self.missing:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> Any:
        return SimpleNamespace(
            used=int(h.used_gib * GIB),
            total=int(h.total_gib * GIB),
            free=int((h.total_gib - h.used_gib) * GIB),
        )

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Any:
        return SimpleNamespace(gpu=h.util_percent, memory=0)

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[Any]:
        sizes = h.process_gib or [1.0] * h.processes
        return [
            SimpleNamespace(pid=1000 + i, usedGpuMemory=None if gib is None else int(gib * GIB))
            for i, gib in enumerate(sizes)
        ]

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        return h.power_mw

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        return h.temperature_c
