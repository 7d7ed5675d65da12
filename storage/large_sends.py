"""Large sends: hand-over of each chunk, Stop, the end, and what a restart goes on with.

A send to more than ``CONFIRM_ABOVE`` recipients is stored like any other (every row
``queued`` in one transaction, :meth:`storage.messages.Messages.store_send`), with
``batch.progress`` set. Exactly once per recipient rests on one column, ``message.handed_at``:

- before a chunk's provider call, :meth:`LargeSends.hand_over` sets it with one conditional
  ``UPDATE … WHERE state='queued' AND handed_at IS NULL`` and the call takes only the rows
  that update returned;
- Stop (:meth:`LargeSends.stop`) is one transaction that ends the batch's ``sending`` state
  and makes every row not handed over ``aborted``: whichever of the two commits first wins a
  row, so a row is either handed over (and sent) or stopped, never both, never neither;
- after a crash, rows handed over without an answer become ``unknown`` (the usual path,
  :meth:`~storage.messages.Messages.mark_interrupted_sends`), rows never handed over stay
  ``queued`` and are sent by the restarted process (:meth:`LargeSends.unhanded`).

Every change the chat must see owes the batch's card an edit (:mod:`storage.outbox`) in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, false, func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from providers.base import DeliveryState
from storage.db import Database
from storage.models import AuditEntry, Batch, Message, OutboxKind, Progress, StatusEvent, utcnow
from storage.outbox import Due, Outbox, Want
from storage.replicas import Gone

QUEUED = DeliveryState.QUEUED.value
STOP_SOURCE = "stop"  # the history source of a row a Stop kept from being sent


@dataclass(frozen=True, slots=True)
class Stopped:
    """What a Stop press did: the send's author and how many recipients it kept back."""

    batch: Batch
    not_sent: int


class LargeSends:
    """The storage side of large sends."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def hand_over(self, message_ids: Sequence[int]) -> list[int]:
        """Mark these rows handed to the provider; the ids that were still to be sent.

        A row already handed over or no longer ``queued`` (a Stop aborted it) is not
        returned, so the caller sends exactly the returned rows.
        """
        if not message_ids:
            return []
        async with self.db.write() as s:
            result = await s.exec(
                update(Message)
                .where(
                    col(Message.id).in_(list(message_ids)),
                    col(Message.state) == QUEUED,
                    col(Message.handed_at).is_(None),
                )
                .values(handed_at=utcnow())
                .returning(col(Message.id))
                .execution_options(synchronize_session=False)
            )
            return [int(i) for (i,) in result.all()]

    async def stop(
        self, chat_id: int, batch_id: int, *, actor: int, by: str, detail: str
    ) -> Stopped | None:
        """Stop a running large send of this chat; None when it is not running (any more).

        One transaction: the batch becomes ``stopped`` and every row not yet handed over
        becomes ``aborted`` with ``detail`` and a history row (rows handed over go on), with
        an audit row naming ``actor``.
        """
        now = utcnow()
        async with self.db.write() as s:
            result = await s.exec(
                update(Batch)
                .where(
                    col(Batch.id) == batch_id,
                    col(Batch.chat_id) == chat_id,
                    col(Batch.progress) == Progress.SENDING.value,
                )
                .values(
                    progress=Progress.STOPPED.value,
                    stopped_by_name=by,
                    finished_at=now,
                    card_event_id=None,  # the card shows "sending": it needs an edit
                )
            )
            if not result.rowcount:
                return None
            stopped = await s.exec(
                update(Message)
                .where(
                    col(Message.batch_id) == batch_id,
                    col(Message.state) == QUEUED,
                    col(Message.handed_at).is_(None),
                )
                .values(
                    state=DeliveryState.ABORTED.value,
                    detail=detail,
                    updated_at=now,
                    next_poll_at=None,
                )
                .returning(col(Message.id))
                .execution_options(synchronize_session=False)
            )
            ids = [int(i) for (i,) in stopped.all()]
            if ids:
                await s.exec(
                    insert(StatusEvent),
                    params=[
                        {
                            "message_id": i,
                            "state": DeliveryState.ABORTED.value,
                            "source": STOP_SOURCE,
                            "detail": detail,
                            "at": now,
                            "provider_status": "",
                        }
                        for i in ids
                    ],
                )
            s.add(
                AuditEntry(
                    chat_id=chat_id,
                    user_id=actor,
                    action="stop",
                    detail=f"stopped send {batch_id}: {len(ids)} recipient(s) not sent",
                    at=now,
                )
            )
            batch = await s.get(Batch, batch_id)
            assert batch is not None
            told = await self._owe_edit(s, batch, now)
        self.outbox.announce(told)
        return Stopped(batch, len(ids))

    async def finish(self, batch_id: int) -> None:
        """The send went through every row: ``done`` (a stopped one stays ``stopped``).

        Its card is owed an edit showing the summary.
        """
        now = utcnow()
        async with self.db.write() as s:
            await s.exec(
                update(Batch)
                .where(col(Batch.id) == batch_id, col(Batch.progress) == Progress.SENDING.value)
                .values(progress=Progress.DONE.value)
            )
            await s.exec(
                update(Batch)
                .where(col(Batch.id) == batch_id)
                .values(finished_at=now, card_event_id=None)
            )
            batch = await s.get(Batch, batch_id)
            if batch is None:
                return
            told = await self._owe_edit(s, batch, now)
        self.outbox.announce(told)

    async def restarted(self, batch_id: int) -> None:
        """A restarted process goes on with this send: its rate counts from now."""
        async with self.db.write() as s:
            await s.exec(
                update(Batch).where(col(Batch.id) == batch_id).values(started_at=utcnow())
            )

    async def running(self, gone: Gone | None = None) -> list[Batch]:
        """Large sends still ``sending`` (at start: the ones a stop or a crash cut off).

        With several replicas (``gone``), only those stored by replicas seen dead: a live
        replica's running send is its own.
        """
        query = select(Batch).where(col(Batch.progress) == Progress.SENDING.value)
        if gone is not None:
            stored_by_gone = select(Message.batch_id).where(gone.where(Message.replica))
            query = query.where(col(Batch.id).in_(stored_by_gone))
        async with self.db.read() as s:
            return list(await s.exec(query.order_by(col(Batch.id))))

    async def unhanded(self, batch_id: int) -> list[Message]:
        """The rows of a send never handed to a provider, in recipient order."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(
                    col(Message.batch_id) == batch_id,
                    col(Message.state) == QUEUED,
                    col(Message.handed_at).is_(None),
                )
                .order_by(col(Message.id))
            )
            return list(rows)

    async def failed(self, batch_id: int) -> list[Message]:
        """The rows of a send that certainly were not sent (``failed``), never ``unknown``."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(
                    col(Message.batch_id) == batch_id,
                    col(Message.state) == DeliveryState.FAILED.value,
                )
                .order_by(col(Message.id))
            )
            return list(rows)

    async def _owe_edit(self, s: AsyncSession, batch: Batch, now: datetime) -> list[Due]:
        assert batch.id is not None
        last = await s.exec(
            select(func.max(StatusEvent.id))
            .join(Message, col(Message.id) == col(StatusEvent.message_id))
            .where(col(Message.batch_id) == batch.id)
        )
        want = Want(batch.id, batch.chat_id, int(last.one() or 0))
        return await self.outbox.want(s, OutboxKind.CARD, [want], now=now)


async def handed_counts(s: AsyncSession, batch: Batch) -> tuple[int, int]:
    """Rows of a large send handed over in all, and since it (re)started (its card's rate)."""
    since = batch.started_at
    recent = col(Message.handed_at) >= since if since is not None else false()
    counted = await s.exec(
        select(
            func.count(col(Message.handed_at)),
            func.count(case((recent, 1))),
        ).where(col(Message.batch_id) == batch.id)
    )
    handed, handed_since = counted.one()
    return int(handed), int(handed_since)
