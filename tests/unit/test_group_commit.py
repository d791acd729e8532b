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


async def test_a_commit_that_names_failed_items_fails_only_their_writes() -> None:
    async def commit(items: Sequence[int]) -> list[Exception | None]:
        return [ValueError(f"refused {n}") if n % 2 else None for n in items]

    group = GroupCommit(commit)
    results = await asyncio.gather(*(group.submit(n) for n in range(4)), return_exceptions=True)
    assert [str(r) if r else None for r in results] == [None, "refused 1", None, "refused 3"]


async def test_a_commit_with_the_wrong_number_of_outcomes_fails_its_batch_and_not_the_next() -> (
    None
):
    calls: list[list[int]] = []

    async def commit(items: Sequence[int]) -> list[Exception | None] | None:
        calls.append(list(items))
        return [None] if len(calls) == 1 else None

    group = GroupCommit(commit)
    results = await asyncio.gather(*(group.submit(n) for n in (1, 2)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "2 items gave 1" in str(r) for r in results)
    await group.submit(3)
    assert calls == [[1, 2], [3]]
