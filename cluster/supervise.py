"""Background loops that survive their own failures: logged with the traceback, retried later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def supervise(
    name: str,
    step: Callable[[], Awaitable[object]],
    interval_s: float,
    *,
    max_backoff_s: float = 60.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Run `step` every `interval_s`, for ever (until cancelled). An exception is logged with
    its traceback and the next attempt waits twice as long as the last, up to `max_backoff_s`;
    a success brings the wait back to `interval_s`."""
    wait = interval_s
    while True:
        await sleep(wait)
        try:
            await step()
        except Exception:
            wait = min(max_backoff_s, max(wait, interval_s) * 2)
            log.exception("%s failed; trying again in %.1f s", name, wait)
        else:
            wait = interval_s
