"""Group commit: what queues during a commit shares the next one; every waiter hears failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.group_commit import GroupCommit


class Recorder:
    """A commit that takes a while, remembers its batches, and fails when told to."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def commit(self, items: Sequence[int]) -> None:
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.batches.append(list(items))


async def test_writes_that_arrive_during_a_commit_share_the_next() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.commit)
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)  # the first commit is now running, held by the recorder
    rest = [asyncio.create_task(group.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    recorder.release.set()
    await asyncio.gather(first, *rest)
    assert recorder.batches == [[1], [2, 3, 4]]


async def test_every_waiter_of_a_failed_batch_hears_why_and_later_ones_go_on() -> None:
    recorder = Recorder()
    recorder.fail_next = True
    group = GroupCommit(recorder.commit)
    failing = [asyncio.create_task(group.submit(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    recorder.release.set()
    for task in failing:
        with pytest.raises(OSError, match="disk full"):
            await task
    await group.submit(3)
    assert recorder.batches == [[3]]


async def test_a_cancelled_caller_leaves_its_write_to_be_committed() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.commit)
    caller = asyncio.create_task(group.submit(7))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    recorder.release.set()
    await group.drain()
    assert recorder.batches == [[7]]
