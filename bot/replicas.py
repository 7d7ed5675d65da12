"""Running as one of several replicas: its heartbeat, and taking over dead replicas' work.

At start (:func:`start_replica`) the replica writes its row, adopts every replica that is
dead and not in a live replica's hands (:class:`storage.replicas.Replicas`), and the
application takes over their leftovers. While it runs, :class:`ReplicaLoop` refreshes the
heartbeat every ``REPLICA_HEARTBEAT_SECONDS`` and looks for replicas that died meanwhile;
the adopter of a dead one (one conditional UPDATE decides who) takes over:

1. its messages still ``queued`` become ``unknown`` (their provider call may have happened);
2. its open messages' status polls and the chat messages it still owed (cards, edits,
   notices, texts), holds ended (``Tracker.adopt``);
3. its claimed schedules (``Scheduler.adopt``: completed from their stored send, never
   resent);
4. the Telegram updates it stored and had not handled (replayed here, ``bot/inbox.py``).

A replica that finds itself adopted (it stalled past ``REPLICA_DEAD_SECONDS`` and another
took its work) stops at once rather than work beside its adopter.

SQLite is a single process: the replica row is written, and at start everything is taken
as before (``Gone.anyone_else``); there is no heartbeat loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from storage.replicas import Gone, Replicas

log = logging.getLogger(__name__)

TakeOver = Callable[[Gone], Awaitable[None]]


async def adopt_gone(replicas: Replicas, *, ownerless: bool = False) -> Gone:
    """The dead replicas this one now adopts (one conditional UPDATE each)."""
    gone = await replicas.gone(ownerless=ownerless)
    if gone.anyone_else:
        return gone
    mine = [rid for rid in sorted(gone.ids) if await replicas.adopt(rid, gone)]
    return Gone(replicas.me, frozenset(mine), ownerless=ownerless)


class ReplicaLoop:
    """Heartbeat and watch for dead replicas, in one asyncio task."""

    def __init__(
        self,
        replicas: Replicas,
        *,
        every: float,
        take_over: TakeOver,
        fenced: Callable[[], None],
        on_live: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.replicas = replicas
        self.every = every
        self._take_over = take_over
        self._fenced = fenced
        self._on_live = on_live  # told how many replicas are live, this one included
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Start the task."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="replica-heartbeat")

    async def stop(self) -> None:
        """Stop the task and mark this replica stopped (its leftovers go without waiting)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.replicas.stop()

    async def once(self) -> Gone | None:
        """One round: heartbeat, then adopt and take over what died. What was adopted."""
        if not await self.replicas.beat() or await self._adopted():
            log.critical(
                "this replica was declared dead (no heartbeat for %.0f s) and its work was "
                "taken over: stopping",
                self.replicas.dead_after.total_seconds(),
            )
            self._fenced()
            return None
        gone = await adopt_gone(self.replicas)
        if gone.empty:
            return None
        log.warning("replicas %s are dead: taking over their work", ", ".join(sorted(gone.ids)))
        await self._take_over(gone)
        return gone

    async def _adopted(self) -> bool:
        rows = await self.replicas.rows()
        now = self.replicas.clock()
        self._on_live(sum(not self.replicas.is_dead(row, now) for row in rows))
        for row in rows:
            if row.id == self.replicas.me:
                return row.adopted_by is not None
        return True  # our row is gone: someone cleaned us up as dead

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.once()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("a replica heartbeat round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)
