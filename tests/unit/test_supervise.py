"""A supervised loop survives its step's failures: logged with the traceback, retried later."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cluster.supervise import supervise


async def test_a_failing_step_is_logged_and_retried_with_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    calls = 0

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 8:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise ValueError(f"boom {calls}")

    with (
        caplog.at_level(logging.ERROR, logger="cluster.supervise"),
        pytest.raises(asyncio.CancelledError),
    ):
        await supervise("flaky loop", step, 1.0, max_backoff_s=5.0, sleep=sleep)
    # Every interval, then twice as long after each failure (capped), back to it on success.
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 1.0, 1.0, 1.0]
    assert calls == 7
    assert caplog.text.count("flaky loop failed") == 4
    assert "ValueError: boom 1" in caplog.text  # with the traceback
