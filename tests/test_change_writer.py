"""ChangeWriter: a send's outcomes are committed in the background, in batches, never lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

import pytest

from bot.services.sending import ChangeWriter
from providers.base import DeliveryState as S
from storage.messages import Applied, Messages, StateChange


class RecordingMessages:
    """Stands in for Messages.apply_changes; can be made to fail or to wait."""

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.chunks: list[int] = []
        self.fail_on = fail_on
        self.gate = asyncio.Event()
        self.gate.set()

    async def apply_changes(self, changes: Iterable[StateChange]) -> Applied:
        await self.gate.wait()
        if self.fail_on is not None and len(self.chunks) == self.fail_on:
            raise RuntimeError("disk full")
        self.chunks.append(len(list(changes)))
        return Applied([], [], sum(self.chunks))


def _writer(repo: RecordingMessages, size: int) -> ChangeWriter:
    return ChangeWriter(cast(Messages, repo), batch_size=size)


def _add(writer: ChangeWriter, count: int) -> None:
    for i in range(count):
        writer.add(StateChange(i + 1, S.ACCEPTED, "send"))


async def test_full_batches_commit_in_the_background_and_flush_stores_the_rest() -> None:
    repo = RecordingMessages()
    repo.gate.clear()
    writer = _writer(repo, 3)
    _add(writer, 3)  # does not wait for the commit
    assert repo.chunks == []
    _add(writer, 4)  # queued behind the running commit
    repo.gate.set()
    await writer.flush()
    assert sum(repo.chunks) == 7
    assert writer.last_event_id == 7


async def test_a_failed_background_commit_is_raised_by_flush() -> None:
    repo = RecordingMessages(fail_on=0)
    writer = _writer(repo, 2)
    _add(writer, 2)
    await asyncio.sleep(0)  # the background commit runs and fails
    _add(writer, 2)  # must not start another commit over the failure
    with pytest.raises(RuntimeError, match="disk full"):
        await writer.flush()
