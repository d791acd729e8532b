"""Loopback helpers: a free port, waiting for a server to answer, stopping a server process."""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return 32768, 60999
    return int(low), int(high)


def bindable(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:`port` now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(count: int = 1) -> int:
    """First of `count` consecutive TCP ports on 127.0.0.1, all free now.

    The ports lie outside the kernel's ephemeral range: a server that binds
    seconds later (vLLM takes about 30 s) could otherwise find its port taken
    by a socket the kernel handed to another process in the meantime.
    """
    low, high = _ephemeral_range()
    first, last = (10000, low - count) if low - count > 11000 else (high + 1, 65535 - count)
    rng = random.SystemRandom()
    for _ in range(500):
        base = rng.randint(first, last)
        if all(bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} free consecutive ports in {first}..{last + count}")


def stop_process(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM, so the process can stop what it started; SIGKILL after `grace_s`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, timeout_s: float = 30, alive: object = None) -> None:
    """Poll `url` until it answers below 500; RuntimeError after `timeout_s`.

    `alive`, when given, is a subprocess whose exit ends the wait early.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"the server behind {url} exited")
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout_s}s")


def wait_started(proc: subprocess.Popen[Any], url: str, timeout_s: float = 30) -> None:
    """`wait_http` on the server `proc` runs; a server that never comes up is stopped, not
    left behind to load the tests after it."""
    try:
        wait_http(url, timeout_s, alive=proc)
    except RuntimeError:
        stop_process(proc, grace_s=10)
        raise


class ThreadedServer:
    """An ASGI app served by uvicorn on a loopback port, in a thread of this process."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **config)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Shut the app down (its lifespan's shutdown included) and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            raise RuntimeError(f"server on port {self.port} did not stop within 60 s")
