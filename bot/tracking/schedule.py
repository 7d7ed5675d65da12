"""When each tracked message is polled next: the poll loop's runtime truth, kept in memory.

The database keeps ``next_poll_at``/``poll_attempts`` only as a *restart hint*, written in the
same UPDATE as a state change (:class:`storage.messages.StateChange`). A poll that changes nothing
moves its message's entry here and writes nothing, so a message costs one row write per state
change however often it is polled.

An entry is a due time (POSIX seconds) and the polls made so far; the heap holds
``(due, message id)`` pairs and is cleaned lazily (a re-armed or dropped message leaves a stale
pair behind that is skipped when it reaches the top). About 200 bytes per message: 10,000 open
messages cost a few MB.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime

_COMPACT_AT = 1024  # stale heap pairs tolerated beyond twice the live entries


class PollSchedule:
    """The next poll of every tracked message, earliest first."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[float, int]] = {}
        self._heap: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._entries

    def arm(self, message_id: int, at: datetime, attempts: int) -> None:
        """Poll ``message_id`` at ``at``; it was polled ``attempts`` times so far."""
        due = at.timestamp()
        self._entries[message_id] = (due, attempts)
        heapq.heappush(self._heap, (due, message_id))
        if len(self._heap) > 2 * len(self._entries) + _COMPACT_AT:
            self._heap = [(due, i) for i, (due, _a) in self._entries.items()]
            heapq.heapify(self._heap)

    def drop(self, message_id: int) -> None:
        """No more polls of ``message_id`` (final, out of the read watch, or gone)."""
        self._entries.pop(message_id, None)

    def attempts(self, message_id: int) -> int | None:
        """How often the message was polled, or None when it is not scheduled."""
        entry = self._entries.get(message_id)
        return None if entry is None else entry[1]

    def when(self, message_id: int) -> datetime | None:
        """The message's next poll, or None when it is not scheduled."""
        entry = self._entries.get(message_id)
        return None if entry is None else datetime.fromtimestamp(entry[0], UTC)

    def next_due(self) -> datetime | None:
        """The earliest next poll of all, or None when nothing is scheduled."""
        top = self._top()
        return None if top is None else datetime.fromtimestamp(top[0], UTC)

    def take(self, now: datetime, limit: int, *, retry_at: datetime) -> list[int]:
        """Up to ``limit`` messages due at ``now``, earliest first.

        Each is re-armed at ``retry_at`` with its attempts unchanged, so a round that fails
        before the poll's answer re-arms it does not lose the message; the caller re-arms or
        drops every id it gets.
        """
        stamp = now.timestamp()
        taken: dict[int, None] = {}  # ordered, and a message armed twice is taken once
        while len(taken) < limit:
            top = self._top()
            if top is None or top[0] > stamp:
                break
            heapq.heappop(self._heap)
            message_id = top[1]
            if message_id not in taken:
                taken[message_id] = None
                self.arm(message_id, retry_at, self._entries[message_id][1])
        return list(taken)

    def _top(self) -> tuple[float, int] | None:
        heap = self._heap
        while heap:
            due, message_id = heap[0]
            entry = self._entries.get(message_id)
            if entry is not None and entry[0] == due:
                return heap[0]
            heapq.heappop(heap)
        return None
