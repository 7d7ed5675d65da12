"""Queries of delivery tracking: due polls, expiry, receipts by provider ref, status cards.

State changes themselves go through :meth:`storage.repo.Repository.apply_changes` (forward-only,
one history row per real change, which also stores the poll hint ``next_poll_at`` /
``poll_attempts``: the schedule itself lives in memory, see :mod:`bot.tracking.schedule`); this
module only finds rows and keeps the bookkeeping of cards (``card_event_id``,
``notice_event_id``: the newest :class:`StatusEvent` a card or a failure notice already shows),
settling the outbox entry a post or an edit delivered in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, true, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from providers.base import DeliveryState
from storage.large_sends import handed_counts
from storage.messages import Messages
from storage.models import Batch, Message, OutboxEntry, OutboxKind, StatusEvent, utcnow
from storage.replicas import Gone

OPEN_STATES = tuple(s.value for s in DeliveryState if not s.is_final)
FAILURE_STATES = tuple(s.value for s in DeliveryState if s.is_failure)


@dataclass(frozen=True, slots=True)
class ReadWatch:
    """Which delivered messages are still polled for a read receipt, and since when."""

    channels: frozenset[str]
    since: datetime | None

    def clause(self) -> ColumnElement[bool]:
        """Rows that are open, or delivered on a read-receipt channel recently enough."""
        open_ = col(Message.state).in_(OPEN_STATES)
        if self.since is None or not self.channels:
            return open_
        watched = and_(
            col(Message.state) == DeliveryState.DELIVERED.value,
            col(Message.channel).in_(sorted(self.channels)),
            col(Message.updated_at) >= self.since,
        )
        return or_(open_, watched)

    def covers(self, message: Message) -> bool:
        """Whether this message should keep being polled."""
        if message.state in OPEN_STATES:
            return True
        return (
            self.since is not None
            and message.state == DeliveryState.DELIVERED.value
            and message.channel in self.channels
            and message.updated_at >= self.since
        )


@dataclass(frozen=True, slots=True)
class PollHint:
    """What a restart needs to re-arm one message's polls (see ``PollPolicy.catch_up``)."""

    message_id: int
    next_poll_at: datetime | None
    poll_attempts: int
    delivered_at: datetime | None  # set for a delivered message (polled for its read)


@dataclass(frozen=True, slots=True)
class CardView:
    """What a status card shows: the batch, counts per state and the first messages."""

    batch: Batch
    counts: dict[str, int]
    shown: list[Message]
    total: int
    last_event_id: int
    # A large send only: rows handed to the provider, and since it (re)started (the rate).
    handed: int = 0
    handed_since: int = 0

    @property
    def has_open(self) -> bool:
        """Whether some message is not final yet."""
        return any(self.counts.get(s, 0) for s in OPEN_STATES)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure event of a batch still to be announced."""

    message: Message
    event: StatusEvent


class TrackingRepository:
    """Every query the tracker, the card updater and the webhook receipts run."""

    def __init__(
        self,
        messages: Messages,
        *,
        untracked: Collection[tuple[str, str]] = (),
    ) -> None:
        self.messages = messages
        self.db = messages.db
        self.outbox = messages.outbox
        # (provider, channel) pairs that report no per-message delivery: never polled/expired.
        self.untracked = frozenset(untracked)
        self._tracked: ColumnElement[bool] = and_(
            true(),
            *(
                or_(col(Message.provider) != provider, col(Message.channel) != channel)
                for provider, channel in sorted(untracked)
            ),
        )

    # -- polling -----------------------------------------------------------------------------

    def tracks(self, provider: str, channel: str) -> bool:
        """Whether messages of this provider and channel report delivery (are polled)."""
        return (provider, channel) not in self.untracked

    async def poll_hints(self, watch: ReadWatch) -> list[PollHint]:
        """At start: every message to poll (open or read-watched, with a ref, tracked)."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(
                    Message.id,
                    Message.next_poll_at,
                    Message.poll_attempts,
                    case(
                        (col(Message.state) == DeliveryState.DELIVERED.value, Message.updated_at),
                        else_=None,
                    ),
                ).where(col(Message.provider_ref).is_not(None), watch.clause(), self._tracked)
            )
            return [PollHint(*row) for row in rows if row[0] is not None]

    async def adopt_polls(self, gone: Gone, watch: ReadWatch) -> list[PollHint]:
        """Take over the polls of ``gone`` replicas' messages: ours now (one UPDATE).

        The messages this replica polls are the ones it owns (``message.replica``), so two
        replicas never poll one message; two adopting at once split the rows.
        """
        if gone.empty:
            return []
        async with self.db.write() as s:
            result = await s.exec(
                update(Message)
                .where(
                    col(Message.provider_ref).is_not(None),
                    watch.clause(),
                    self._tracked,
                    gone.where(Message.replica),
                )
                .values(replica=gone.me)
                .returning(
                    col(Message.id),
                    col(Message.next_poll_at),
                    col(Message.poll_attempts),
                    case(
                        (col(Message.state) == DeliveryState.DELIVERED.value, Message.updated_at),
                        else_=None,
                    ),
                )
                .execution_options(synchronize_session=False)
            )
            return [PollHint(*row) for row in sorted(result.all()) if row[0] is not None]

    async def stale_open(self, cutoff: datetime, *, limit: int) -> list[tuple[int, int]]:
        """``(id, chat id)`` of messages still open although sent before ``cutoff`` (to expire).

        A message handed to a provider for later counts from when it goes out (``send_at``).
        """
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message.id, Message.chat_id)
                .where(
                    col(Message.state).in_(OPEN_STATES),
                    func.coalesce(col(Message.send_at), col(Message.created_at)) < cutoff,
                    self._tracked,
                )
                .order_by(col(Message.id))
                .limit(limit)
            )
            return [(i, chat) for i, chat in rows if i is not None]

    async def open_in_batch(self, batch_id: int, watch: ReadWatch, *, limit: int) -> list[Message]:
        """The messages of one send that a Refresh should ask about, oldest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message)
                .where(
                    Message.batch_id == batch_id,
                    col(Message.provider_ref).is_not(None),
                    watch.clause(),
                )
                .order_by(col(Message.id))
                .limit(limit)
            )
            return list(rows)

    # -- receipts ----------------------------------------------------------------------------

    async def by_refs(self, provider: str, refs: Collection[str]) -> list[Message]:
        """Messages of ``provider`` with these provider refs."""
        if not refs:
            return []
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message).where(
                    Message.provider == provider, col(Message.provider_ref).in_(list(refs))
                )
            )
            return list(rows)

    # -- cards -------------------------------------------------------------------------------

    async def card_view(self, batch_id: int, *, lines: int) -> CardView | None:
        """The batch's card contents, read in one transaction with the newest event id."""
        async with self.db.read() as s:
            batch = await s.get(Batch, batch_id)
            if batch is None:
                return None
            counted = await s.exec(
                select(Message.state, func.count())
                .where(Message.batch_id == batch_id)
                .group_by(col(Message.state))
            )
            counts = {state: int(n) for state, n in counted}
            shown = await s.exec(
                select(Message)
                .where(Message.batch_id == batch_id)
                .order_by(col(Message.id))
                .limit(lines)
            )
            last = await s.exec(
                select(func.max(StatusEvent.id))
                .join(Message, col(Message.id) == col(StatusEvent.message_id))
                .where(Message.batch_id == batch_id)
            )
            handed = handed_since = 0
            if batch.progress is not None:
                handed, handed_since = await handed_counts(s, batch)
            return CardView(
                batch=batch,
                counts=counts,
                shown=list(shown),
                total=sum(counts.values()),
                last_event_id=int(last.one() or 0),
                handed=handed,
                handed_since=handed_since,
            )

    async def card_state(self, batch_id: int) -> tuple[Batch, OutboxEntry | None] | None:
        """The batch as stored now and its card's outbox entry (before posting a card)."""
        async with self.db.read() as s:
            batch = await s.get(Batch, batch_id)
            if batch is None:
                return None
            entry = (
                await s.exec(
                    select(OutboxEntry).where(
                        OutboxEntry.batch_id == batch_id,
                        OutboxEntry.kind == OutboxKind.CARD.value,
                    )
                )
            ).first()
            return batch, entry

    async def set_card(self, batch_id: int, message_id: int, event_id: int) -> bool:
        """A card was posted showing everything up to ``event_id`` (no notice owed before).

        One transaction with the card's outbox entry, which is delivered when the card shows
        what it asks for; whether it was (False: a newer change still needs an edit). Urgent:
        until it commits, a crash would make the card be posted again.
        """
        async with self.db.write(urgent=True) as s:
            await self._set(
                s,
                batch_id,
                card_message_id=message_id,
                card_event_id=event_id,
                notice_event_id=event_id,
                card_dead=False,
            )
            return await self.outbox.settle(
                s,
                OutboxKind.CARD,
                batch_id,
                shown_event_id=event_id,
                now=utcnow(),
                message_id=message_id,
            )

    async def card_synced(self, batch_id: int, event_id: int) -> bool:
        """The card now shows everything up to ``event_id``; whether its entry is delivered."""
        async with self.db.write() as s:
            await self._set(s, batch_id, card_event_id=event_id)
            return await self.outbox.settle(
                s, OutboxKind.CARD, batch_id, shown_event_id=event_id, now=utcnow()
            )

    async def notified(self, batch_id: int, event_id: int, message_id: int | None = None) -> None:
        """Failures up to ``event_id`` were announced (as ``message_id``: urgent, as a card)."""
        async with self.db.write(urgent=message_id is not None) as s:
            await self._set(s, batch_id, notice_event_id=event_id)
            await self.outbox.settle(
                s,
                OutboxKind.FAILURES,
                batch_id,
                shown_event_id=event_id,
                now=utcnow(),
                message_id=message_id,
            )

    async def mark_card_dead(self, batch_id: int) -> None:
        """The card was deleted or cannot be edited: stop editing it."""
        async with self.db.write() as s:
            await self._set(s, batch_id, card_dead=True)
            await self.outbox.drop_batch(s, OutboxKind.CARD, batch_id)

    async def mark_chat_dead(self, chat_id: int) -> None:
        """The chat blocked the bot: none of its cards is edited, nothing owed is posted."""
        async with self.db.write() as s:
            await s.exec(update(Batch).where(col(Batch.chat_id) == chat_id).values(card_dead=True))
            await self.outbox.drop_chat(s, chat_id)

    async def failures_since(self, batch_id: int, after_event_id: int) -> list[Failure]:
        """Failure events of a batch newer than ``after_event_id`` that came after the send."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Message, StatusEvent)
                .join(StatusEvent, col(StatusEvent.message_id) == col(Message.id))
                .where(
                    Message.batch_id == batch_id,
                    col(StatusEvent.id) > after_event_id,
                    col(StatusEvent.state).in_(FAILURE_STATES),
                    StatusEvent.source != "send",
                )
                .order_by(col(StatusEvent.id))
            )
            return [Failure(message, event) for message, event in rows]

    async def _set(self, s: AsyncSession, batch_id: int, **values: object) -> None:
        await s.exec(update(Batch).where(col(Batch.id) == batch_id).values(**values))
