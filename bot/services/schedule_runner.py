"""Firing due schedules exactly once, and the policy for runs missed while the bot was down.

Exactly once:
- a due row is *claimed* (``pending → claimed``, one conditional ``UPDATE``) before anything
  else; a worker whose claim matched no row does nothing, so two schedulers, or a ``/cancel``
  racing the firing, can never both win;
- the send's origin is ``schedule:<id>:<run>``, unique in the database: if a run is fired again
  (a claim taken over after a crash) the existing batch is found and nothing is sent again.

Missed while down: a run found late by at most ``grace`` is sent late with a note saying so;
later than that it is *missed*: a one-off becomes ``missed`` (it can be given a new time with
/reschedule), a recurring one skips to its next future run; either way the chat is told.
When downtime skipped several runs of a recurring schedule only the latest is considered.

A claim left by a stopped process is taken over at start (:meth:`ScheduleRunner.recover`):
when its batch exists the run did reach the send path, so the run is completed from the stored
batch (its card posted if it was not); when it does not, the claim is released and the normal
rules above decide. Neither path can send twice.

Told for sure: what the chat hears about a run (the line above its card, or why it was not
sent) is written with the run's end in one transaction (:class:`storage.schedules.Tell`), and
the run's card is owed since its batch was stored, so a stop after the run ended is caught up
by the outbox at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from html import unescape
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.services.chats import route_chain
from bot.services.errors import UserError
from bot.services.quiet import QuietHours
from bot.services.scheduling import origin_of, recipients_of, texts_of
from bot.services.sending import Sender, SendOutcome, SendRequest
from bot.services.stoplist import skipped_note
from bot.services.when import Recurrence, duration_label
from i18n import ENGLISH, N_, _, use_language
from providers.errors import ProviderError
from storage.models import OutboxEntry, Schedule, ScheduleState, utcnow
from storage.replicas import Gone
from storage.repo import Repository
from storage.schedules import Finish, ScheduleRepository, Tell

log = logging.getLogger(__name__)

LATE_NOTE_AFTER = timedelta(minutes=1)
# Notes stored with a run, translated when written (in the run's chat's language).
INTERNAL = N_("an internal error (logged)")
CUT_OFF = N_("the bot stopped while this run was being sent; unanswered messages are unknown")
DUE_BATCH = 50


class Notifier(Protocol):
    """Tells a chat what happened to one of its schedules (the bot implements it).

    The texts are rendered first and stored with the run's end (the outbox), then
    :meth:`deliver` posts them at once; whatever a stop cuts off is posted after the restart.
    """

    def fired(self, schedule: Schedule, note: str) -> str:
        """The line above the card of a run that went through the send path."""
        ...

    def failed(self, schedule: Schedule, reason: str) -> str:
        """A run could not be sent (not connected, route gone ...)."""
        ...

    def missed(self, schedule: Schedule, due: datetime) -> str:
        """A run was due at ``due``, longer ago than the grace period allows."""
        ...

    def held(self, schedule: Schedule, until: datetime) -> str:
        """A run fell inside the chat's quiet hours and waits until ``until``."""
        ...

    async def deliver(self, told: OutboxEntry | None, outcome: SendOutcome | None) -> None:
        """Post what the run's end stored now: its card (``outcome``) or its text."""
        ...


def worker_name() -> str:
    """A name for this process's claims: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def plain(html_text: str) -> str:
    """A user error's HTML message as plain text (notes are stored plain, escaped on display)."""
    return unescape(re.sub(r"<[^>]+>", "", html_text))


def _next_run(row: Schedule, now: datetime, due: datetime) -> datetime | None:
    """A recurring schedule's first run after ``now`` (keeping the phase of ``due``)."""
    if not row.recurrence:
        return None
    return Recurrence(row.recurrence).next_after(now, zone=_zone(row), anchor=due)


def _anchor(row: Schedule) -> datetime:
    """The run time a repeating schedule's rhythm follows (a held run's original due time)."""
    return row.hold_due or row.next_run_at


def _zone(row: Schedule) -> ZoneInfo:
    try:
        return ZoneInfo(row.timezone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return ZoneInfo("UTC")


class ScheduleRunner:
    """Claims due schedules and sends them through the same path as /send."""

    def __init__(
        self,
        store: ScheduleRepository,
        repo: Repository,
        sender: Sender,
        notifier: Notifier,
        *,
        grace: timedelta,
        worker: str | None = None,
        language_of: Callable[[int], Awaitable[str]] | None = None,
    ) -> None:
        self.store = store
        # A run's notes and notices are written in its chat's language (None: English).
        self._language_of = language_of
        self._repo = repo
        self._sender = sender
        self._notifier = notifier
        self.grace = grace
        self.worker = worker or worker_name()
        self.started_at = utcnow()
        self._halted = False

    def halt(self) -> None:
        """Start no further run (the bot is stopping); the one being sent finishes."""
        self._halted = True

    async def recover(self, now: datetime, gone: Gone | None = None) -> int:
        """Take over claims left by a stopped process; returns how many.

        At start, and whenever a replica is seen dead: then only ``gone`` replicas' claims.
        """
        taken = 0
        for row in await self.store.claimed(gone):
            if row.claimed_by == self.worker or not await self.store.take_over(
                row, worker=self.worker, now=now
            ):
                continue
            taken += 1
            await self._guarded(row, now, self._resume)
        return taken

    async def run_due(self, now: datetime) -> int:
        """Fire every schedule due at ``now`` that this worker manages to claim.

        Schedules their provider holds are not fired: those whose time has passed are
        marked done.
        """
        await self.store.close_handed_over(now)
        handled = 0
        for _slot in range(DUE_BATCH):
            if self._halted:
                break
            claimed = await self.store.claim_next(worker=self.worker, now=now)
            if claimed is None:
                break  # nothing due is left unclaimed
            handled += 1
            await self._guarded(claimed, now, self._run)
        return handled

    async def _guarded(
        self, row: Schedule, now: datetime, step: Callable[[Schedule, datetime], Awaitable[None]]
    ) -> None:
        """Run one claimed row; an unexpected error fails it (never left claimed) and says so.

        Everything the run writes for its chat (notes, the card) is in the chat's language.
        """
        language = ENGLISH if self._language_of is None else await self._language_of(row.chat_id)
        with use_language(language):
            await self._step(row, now, step)

    async def _step(
        self, row: Schedule, now: datetime, step: Callable[[Schedule, datetime], Awaitable[None]]
    ) -> None:
        assert row.id is not None
        try:
            await step(row, now)
        except asyncio.CancelledError:
            # The bot is stopping and its grace ran out: leave no claim behind. Shielded, so
            # the cancellation that got us here cannot cut the cleanup short as well.
            await asyncio.shield(self._abandon(row, now))
            raise
        except Exception:
            log.exception("schedule %s could not be run", row.id)
            failed = await self.store.finish(
                row.id,
                worker=self.worker,
                now=now,
                outcome=Finish(ScheduleState.FAILED, _(INTERNAL), ran=False),
                tell=Tell(lambda done: self._notifier.failed(done, _(INTERNAL))),
            )
            if failed is not None:  # None: it was finished before the error, nothing to fix
                await self._notifier.deliver(failed.told, None)

    async def _abandon(self, row: Schedule, now: datetime) -> None:
        """A run cut off by a stop: give the claim back, or end the run if its send began.

        Without a batch nothing was sent, so the schedule is pending again and the next start
        fires it (or reports it missed). With one, some messages may have gone out: the run
        ends as if sent (never resent); the stop marks its unanswered messages ``unknown``.
        """
        assert row.id is not None
        try:
            batch = await self._repo.messages.batch_for_origin(origin_of(row))
            if batch is None:
                await self.store.release(row.id, worker=self.worker)
                return
            await self.store.finish(
                row.id,
                worker=self.worker,
                now=now,
                outcome=Finish(
                    ScheduleState.PENDING if row.recurrence else ScheduleState.DONE,
                    note=_(CUT_OFF),
                    next_run_at=_next_run(row, now, _anchor(row)),
                ),
            )
        except Exception:  # the next start takes the claim over instead
            log.exception("schedule %s: could not give back its claim at the stop", row.id)

    async def _resume(self, row: Schedule, now: datetime) -> None:
        """A claim taken over at start: complete the run if it reached the send path."""
        assert row.id is not None
        batch = await self._repo.messages.batch_for_origin(origin_of(row))
        if batch is None or batch.id is None:
            log.warning("schedule %s was claimed but not sent before a stop", row.id)
            await self.store.release(row.id, worker=self.worker)
            return
        log.warning("schedule %s was sent before a stop; completing its run", row.id)
        nxt = _next_run(row, now, _anchor(row))
        outcome = SendOutcome(batch, await self._repo.messages.of_batch(batch.id), replayed=True)
        await self._complete(row, now, nxt, outcome, note="after a restart")

    async def _run(self, row: Schedule, now: datetime) -> None:
        assert row.id is not None
        rule = Recurrence(row.recurrence) if row.recurrence else None
        if row.hold_due is not None:
            # Held by quiet hours: due at the window's end, in the rhythm of its first due time.
            due, anchor = row.next_run_at, row.hold_due
        else:
            due = (
                rule.latest_due(row.next_run_at, now, zone=_zone(row)) if rule else row.next_run_at
            )
            anchor = due
        nxt = _next_run(row, now, anchor)  # before sending: a broken rule fails the run unsent
        late = now - due
        if late > self.grace:
            finished = await self.store.finish(
                row.id,
                worker=self.worker,
                now=now,
                outcome=Finish(
                    ScheduleState.PENDING if rule else ScheduleState.MISSED,
                    note=_("missed the run due at {due:%Y-%m-%d %H:%M} UTC").format(due=due),
                    ran=False,
                    next_run_at=nxt,
                ),
                tell=Tell(lambda done: self._notifier.missed(done, due)),
            )
            if finished is not None:
                await self._notifier.deliver(finished.told, None)
            return
        until = await self._quiet_until(row.chat_id, now)
        if until is not None:
            await self._hold(row, now, until, anchor)
            return
        notes = []
        if late > LATE_NOTE_AFTER:
            if due < self.started_at:
                late_note = _("sent {late} late: the bot was not running at that time")
            else:
                late_note = _("sent {late} late")
            notes.append(late_note.format(late=duration_label(late)))
        if due > row.next_run_at:
            notes.append(_("earlier runs were skipped while the bot was not running"))
        try:
            outcome = await self._send(row)
        except (UserError, ProviderError) as exc:
            reason = plain(exc.message) if isinstance(exc, UserError) else exc.message
            await self._complete(row, now, nxt, None, note=reason)
            return
        except Exception:
            log.exception("scheduled send %s failed unexpectedly", row.id)
            await self._complete(row, now, nxt, None, note=_(INTERNAL))
            return
        if outcome.stopped:  # stopped after the schedule was made: skipped, and said so
            notes.append(skipped_note(outcome.stopped))
        await self._complete(row, now, nxt, outcome, note="; ".join(notes))

    async def _quiet_until(self, chat_id: int, now: datetime) -> datetime | None:
        """The end of the chat's quiet hours when ``now`` is inside them."""
        chat = await self._repo.get_chat(chat_id)
        quiet = QuietHours.stored(chat.quiet_hours) if chat is not None else None
        return quiet.held_until(now, chat.timezone) if quiet is not None and chat else None

    async def _hold(self, row: Schedule, now: datetime, until: datetime, due: datetime) -> None:
        """Move a run inside quiet hours to their end (nothing is dropped), and say so."""
        assert row.id is not None
        finished = await self.store.finish(
            row.id,
            worker=self.worker,
            now=now,
            outcome=Finish(
                ScheduleState.PENDING,
                note=_("held by quiet hours"),
                ran=False,
                next_run_at=until,
                hold_due=due,
            ),
            tell=Tell(lambda done: self._notifier.held(done, until)),
        )
        if finished is not None:
            await self._notifier.deliver(finished.told, None)

    async def _send(self, row: Schedule) -> SendOutcome:
        chat = await self._repo.get_chat(row.chat_id)
        route, *fallbacks = route_chain(row.route)
        return await self._sender.send(
            SendRequest(
                chat_id=row.chat_id,
                actor_id=row.created_by,
                actor_name=row.created_by_name,
                route=route,
                fallbacks=tuple(fallbacks),
                recipients=recipients_of(row),
                text=row.text,
                texts=texts_of(row),
                origin=origin_of(row),
                country=chat.country if chat else None,
                schedule_id=row.id,
            )
        )

    async def _complete(
        self,
        row: Schedule,
        now: datetime,
        nxt: datetime | None,
        outcome: SendOutcome | None,
        *,
        note: str,
    ) -> None:
        """Write how the run ended with what the chat is told, then tell it.

        Only the claim's holder does; what it tells is stored with the run's end (the outbox),
        so a stop between the two is caught up after the restart.
        """
        assert row.id is not None
        if row.recurrence:
            state = ScheduleState.PENDING
        else:
            state = ScheduleState.DONE if outcome is not None else ScheduleState.FAILED
        if outcome is None:
            tell = Tell(lambda done: self._notifier.failed(done, note))
        else:
            tell = Tell(lambda done: self._notifier.fired(done, note), outcome.batch.id)
        finished = await self.store.finish(
            row.id,
            worker=self.worker,
            now=now,
            outcome=Finish(state, note=note, next_run_at=nxt),
            tell=tell,
        )
        if finished is None:
            log.warning("schedule %s: the claim was taken over; its new holder reports", row.id)
            return
        await self._notifier.deliver(finished.told, outcome)
