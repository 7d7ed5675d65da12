"""Queries of scheduled sends. Every state change is one conditional ``UPDATE``.

A schedule moves ``pending → claimed → done | failed`` (one-off) or back to ``pending`` with a
later ``next_run_at`` (recurring); ``cancelled`` and ``missed`` end it too. A one-off handed to
its provider for later keeps the provider's message ids in ``provider_ref``: it is never
claimed here and moves ``pending → done`` once its time has passed. Each move names the
state it expects in its ``WHERE`` clause and reports whether a row matched, so two workers, or
a ``/cancel`` and a firing, can never both win: whoever's ``UPDATE`` lands first owns the row,
the other sees ``rowcount == 0``. The end of a run writes what its chat is told (the line
above the run's card, or why it was not sent) to the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Update, and_, case, func, update
from sqlmodel import col, select

from storage.db import Database
from storage.models import OutboxEntry, Schedule, ScheduleState, may_be_row_id, utcnow
from storage.outbox import Outbox
from storage.replicas import Gone


def _claimed_by(schedule_id: int, worker: str) -> ColumnElement[bool]:
    """The schedule is still ``worker``'s claim: a release or a finish never undoes another's."""
    return and_(
        col(Schedule.id) == schedule_id,
        col(Schedule.state) == ScheduleState.CLAIMED.value,
        col(Schedule.claimed_by) == worker,
    )


@dataclass(frozen=True, slots=True)
class Finish:
    """How a claimed run ended, written by :meth:`ScheduleRepository.finish`."""

    state: ScheduleState
    note: str = ""
    ran: bool = True
    next_run_at: datetime | None = None
    # Set when quiet hours hold the run (``next_run_at`` is then the window's end): the time
    # it was due, kept for a repeating schedule's rhythm. Any other end of a run clears it.
    hold_due: datetime | None = None


@dataclass(frozen=True, slots=True)
class Tell:
    """What the chat hears about a run, rendered from the row as the run's end wrote it.

    With ``batch_id`` the text is the line above that batch's card (posted with the card,
    unless the card is out already); without, it is a message of its own.
    """

    render: Callable[[Schedule], str]
    batch_id: int | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """A run's end as written: the row, and the outbox entry that tells the chat (if any)."""

    row: Schedule
    told: OutboxEntry | None


class ScheduleRepository:
    """Every query on the ``schedule`` table."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or Outbox(db)

    async def _moved(self, statement: Update) -> bool:
        """Run one conditional UPDATE; whether it matched its one row (whose move it was)."""
        async with self.db.write() as s:
            result = await s.exec(statement)
            return result.rowcount == 1

    async def add(self, row: Schedule) -> Schedule:
        """Store a new schedule; returns it with its id."""
        async with self.db.write() as s:
            s.add(row)
            await s.flush()
            return row

    async def get(self, schedule_id: int) -> Schedule | None:
        """One schedule by id, whatever its chat or state."""
        if not may_be_row_id(schedule_id):
            return None
        async with self.db.read() as s:
            return await s.get(Schedule, schedule_id)

    async def by_origin(self, origin: str) -> Schedule | None:
        """The schedule a command made (a send held by quiet hours), if any."""
        async with self.db.read() as s:
            return (await s.exec(select(Schedule).where(Schedule.origin == origin))).first()

    async def for_chat(self, chat_id: int, states: Collection[ScheduleState]) -> list[Schedule]:
        """A chat's schedules in the given states, soonest first."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Schedule)
                .where(
                    Schedule.chat_id == chat_id,
                    col(Schedule.state).in_([state.value for state in states]),
                )
                .order_by(col(Schedule.next_run_at), col(Schedule.id))
            )
            return list(rows)

    async def due(self, now: datetime, limit: int) -> list[Schedule]:
        """Pending schedules whose time has come and that this bot fires itself."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Schedule)
                .where(
                    Schedule.state == ScheduleState.PENDING.value,
                    col(Schedule.next_run_at) <= now,
                    col(Schedule.provider_ref).is_(None),
                )
                .order_by(col(Schedule.next_run_at), col(Schedule.id))
                .limit(limit)
            )
            return list(rows)

    async def next_due_at(self) -> datetime | None:
        """When the soonest pending schedule fires (None when there is none)."""
        async with self.db.read() as s:
            result = await s.exec(
                select(func.min(Schedule.next_run_at)).where(
                    Schedule.state == ScheduleState.PENDING.value,
                    col(Schedule.provider_ref).is_(None),
                )
            )
            return result.one()

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many runs this bot fires itself are due but not fired, and the oldest one's time.

        One aggregate over ``ix_schedule_due`` (state, next_run_at): cheap at scrape time.
        """
        async with self.db.read() as s:
            result = await s.exec(
                select(func.count(), func.min(Schedule.next_run_at)).where(
                    Schedule.state == ScheduleState.PENDING.value,
                    col(Schedule.next_run_at) <= now,
                    col(Schedule.provider_ref).is_(None),
                )
            )
            count, oldest = result.one()
            return int(count), oldest

    async def claim(self, schedule_id: int, *, worker: str, now: datetime) -> Schedule | None:
        """Take a due pending schedule for ``worker``; None when someone else was first.

        The ``next_run_at <= now`` condition also loses to a ``/reschedule`` that moved the
        row into the future after it was read as due.
        """
        async with self.db.write() as s:
            result = await s.exec(
                update(Schedule)
                .where(
                    col(Schedule.id) == schedule_id,
                    col(Schedule.state) == ScheduleState.PENDING.value,
                    col(Schedule.next_run_at) <= now,
                )
                .values(state=ScheduleState.CLAIMED.value, claimed_by=worker, claimed_at=now)
            )
            if result.rowcount != 1:
                return None
            return await s.get(Schedule, schedule_id)

    async def claim_next(self, *, worker: str, now: datetime) -> Schedule | None:
        """Claim the soonest due schedule nobody else is claiming; None when none is left.

        One transaction: the row is picked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
        ignores it and has one writer), so replicas firing at once take different rows
        instead of queueing on the same one, and the claim is the same conditional UPDATE.
        """
        async with self.db.write() as s:
            picked = (
                await s.exec(
                    select(Schedule.id)
                    .where(
                        Schedule.state == ScheduleState.PENDING.value,
                        col(Schedule.next_run_at) <= now,
                        col(Schedule.provider_ref).is_(None),
                    )
                    .order_by(col(Schedule.next_run_at), col(Schedule.id))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if picked is None:
                return None
            result = await s.exec(
                update(Schedule)
                .where(
                    col(Schedule.id) == picked,
                    col(Schedule.state) == ScheduleState.PENDING.value,
                )
                .values(state=ScheduleState.CLAIMED.value, claimed_by=worker, claimed_at=now)
            )
            if result.rowcount != 1:
                return None
            return await s.get(Schedule, picked)

    async def claimed(self, gone: Gone | None = None) -> list[Schedule]:
        """Schedules currently claimed: every one, or those of ``gone`` replicas only.

        At the start of a single process every claim was left by a stopped one; with several
        replicas only a dead replica's claims may be taken over (``storage/replicas.py``).
        """
        where = col(Schedule.state) == ScheduleState.CLAIMED.value
        if gone is not None:
            where = and_(where, gone.where(Schedule.claimed_by))
        async with self.db.read() as s:
            rows = await s.exec(select(Schedule).where(where).order_by(col(Schedule.id)))
            return list(rows)

    async def take_over(self, row: Schedule, *, worker: str, now: datetime) -> bool:
        """Move a claim from the worker that holds it to ``worker``; whether it worked."""
        assert row.id is not None
        return await self._moved(
            update(Schedule)
            .where(
                col(Schedule.id) == row.id,
                col(Schedule.state) == ScheduleState.CLAIMED.value,
                col(Schedule.claimed_by) == row.claimed_by,
            )
            .values(claimed_by=worker, claimed_at=now)
        )

    async def release(self, schedule_id: int, *, worker: str) -> bool:
        """Give a claim back: the schedule is pending again, untouched otherwise."""
        return await self._moved(
            update(Schedule)
            .where(_claimed_by(schedule_id, worker))
            .values(state=ScheduleState.PENDING.value, claimed_by=None, claimed_at=None)
        )

    async def finish(
        self,
        schedule_id: int,
        *,
        worker: str,
        now: datetime,
        outcome: Finish,
        tell: Tell | None = None,
    ) -> Finished | None:
        """End ``worker``'s claim; the row as written, or None when the claim was lost.

        Going back to ``pending`` becomes ``cancelled`` instead when a ``/cancel`` arrived
        while the run was being sent. ``tell`` is written to the outbox in the same
        transaction, so a stop right after cannot leave the chat untold.
        """
        state: object = outcome.state.value
        if outcome.state == ScheduleState.PENDING:
            state = case(
                (col(Schedule.cancel_requested), ScheduleState.CANCELLED.value),
                else_=ScheduleState.PENDING.value,
            )
        values: dict[str, object] = {
            "state": state,
            "note": outcome.note[:500],
            "claimed_by": None,
            "claimed_at": None,
            "hold_due": outcome.hold_due,
        }
        if outcome.next_run_at is not None:
            values["next_run_at"] = outcome.next_run_at
        if outcome.ran:
            values["runs"] = col(Schedule.runs) + 1
            values["last_run_at"] = now
        async with self.db.write() as s:
            result = await s.exec(
                update(Schedule).where(_claimed_by(schedule_id, worker)).values(**values)
            )
            if result.rowcount != 1:
                return None
            row = await s.get(Schedule, schedule_id)
            assert row is not None
            told = None
            if tell is not None:
                text, written = tell.render(row), utcnow()
                if tell.batch_id is not None:
                    told = await self.outbox.note_card(s, tell.batch_id, text, now=written)
                else:
                    told = await self.outbox.add_text(s, row.chat_id, text, now=written)
        self.outbox.announce([told])
        return Finished(row, told)

    async def cancel(self, schedule_id: int, chat_id: int, *, note: str) -> bool:
        """Cancel a pending schedule of this chat; False when it is not pending any more."""
        return await self._moved(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.chat_id) == chat_id,
                col(Schedule.state) == ScheduleState.PENDING.value,
            )
            .values(state=ScheduleState.CANCELLED.value, note=note[:500])
        )

    async def request_cancel(self, schedule_id: int, chat_id: int) -> bool:
        """Ask a recurring schedule whose run is being sent to stop after that run."""
        return await self._moved(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.chat_id) == chat_id,
                col(Schedule.state) == ScheduleState.CLAIMED.value,
                col(Schedule.recurrence).is_not(None),
            )
            .values(cancel_requested=True)
        )

    async def reschedule(
        self,
        schedule_id: int,
        chat_id: int,
        *,
        states: Collection[ScheduleState],
        next_run_at: datetime,
        recurrence: str | None,
        timezone: str,
    ) -> bool:
        """Set a new time (and rule) on a schedule in one of ``states``; pending again."""
        return await self._moved(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.chat_id) == chat_id,
                col(Schedule.state).in_([state.value for state in states]),
            )
            .values(
                state=ScheduleState.PENDING.value,
                next_run_at=next_run_at,
                recurrence=recurrence,
                timezone=timezone,
                note="",
                cancel_requested=False,
                hold_due=None,
            )
        )

    async def hand_over(self, schedule_id: int, refs: str) -> bool:
        """Record that the provider holds this pending schedule (its message ids)."""
        return await self._moved(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.state) == ScheduleState.PENDING.value,
                col(Schedule.provider_ref).is_(None),
            )
            .values(provider_ref=refs)
        )

    async def end_unclaimed(
        self, schedule_id: int, *, state: ScheduleState, note: str, now: datetime
    ) -> bool:
        """End a pending schedule that ran without a claim (a hand-over that went wrong)."""
        return await self._moved(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.state) == ScheduleState.PENDING.value,
                col(Schedule.provider_ref).is_(None),
            )
            .values(
                state=state.value,
                note=note[:500],
                runs=col(Schedule.runs) + 1,
                last_run_at=now,
            )
        )

    async def close_handed_over(self, now: datetime) -> int:
        """Mark schedules held by their provider whose time has passed ``done``; how many."""
        async with self.db.write() as s:
            result = await s.exec(
                update(Schedule)
                .where(
                    col(Schedule.state) == ScheduleState.PENDING.value,
                    col(Schedule.provider_ref).is_not(None),
                    col(Schedule.next_run_at) <= now,
                )
                .values(
                    state=ScheduleState.DONE.value,
                    runs=col(Schedule.runs) + 1,
                    last_run_at=col(Schedule.next_run_at),
                )
            )
            return int(result.rowcount)
