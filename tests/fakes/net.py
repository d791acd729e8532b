"""Loopback helpers: a free port, and waiting for a server to answer."""

from __future__ import annotations

import socket
import time

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
