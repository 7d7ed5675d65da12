"""Scheduled sends: create, list, cancel and reschedule (what the chat commands call).

Everything a send needs is checked when the schedule is made (route, recipients, text length,
a connected provider), so a typo is answered at once rather than at 09:00 tomorrow; the
recipients are stored normalised. Firing is :mod:`bot.services.schedule_runner`'s job.

A one-off on a route whose provider keeps scheduled messages itself (``capabilities.schedule``)
is handed to that provider at once (:mod:`bot.services.provider_schedules`); the local
scheduler never fires it. Recurring schedules are always fired here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from bot.services.accounts import Accounts
from bot.services.chats import chain_text
from bot.services.errors import BadInput, NotAllowed
from bot.services.provider_schedules import HandOver, ProviderSchedules, cannot_cancel
from bot.services.sending import Sender, personal_recipients, recipients_for, validate_text
from bot.services.stoplist import drop_stopped
from bot.services.when import When, describe_time, read_when
from i18n import _
from providers.registry import Route
from storage.models import AuditOutcome, Chat, Schedule, ScheduleState, utcnow
from storage.repo import Repository
from storage.schedules import ScheduleRepository

OPEN_STATES = (ScheduleState.PENDING, ScheduleState.CLAIMED)
# A one-off that never went out (missed while down, or failed) can be given a new time.
RESCHEDULABLE = (ScheduleState.PENDING, ScheduleState.MISSED, ScheduleState.FAILED)
_RETRIES = 3


@dataclass(frozen=True, slots=True)
class ScheduleDraft:
    """A /schedule as typed, already split into its parts."""

    chat: Chat
    actor_id: int
    actor_name: str
    when: When
    route: Route
    recipients: Sequence[str]
    text: str
    fallbacks: tuple[Route, ...] = ()  # the rest of the chat's failover chain
    # A template filled per recipient: each one's text, in the order of ``recipients``.
    texts: Sequence[str] | None = None
    # The command a held send came from (unique among schedules): a replay finds it.
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A cancelled schedule; ``after_current_run`` when a run was being sent at that moment."""

    schedule: Schedule
    after_current_run: bool = False


@dataclass(frozen=True, slots=True)
class Created:
    """A new schedule; ``handed_over`` when its provider holds it (with the send's outcome)."""

    schedule: Schedule
    handed_over: HandOver | None = None
    stopped: tuple[str, ...] = ()  # recipients (E.164) left out: on the chat's stoplist


def origin_of(row: Schedule) -> str:
    """The unique origin of the send a schedule's next run makes."""
    return f"schedule:{row.id}:{row.runs + 1}"


def recipients_of(row: Schedule) -> list[str]:
    """A schedule's stored recipients."""
    value = json.loads(row.recipients)
    assert isinstance(value, list)
    return [str(item) for item in value]


def texts_of(row: Schedule) -> list[str] | None:
    """A personalised schedule's texts, one per stored recipient; None when all get ``text``."""
    if row.texts is None:
        return None
    value = json.loads(row.texts)
    assert isinstance(value, list)
    return [str(item) for item in value]


def why_closed(row: Schedule) -> str:
    """Why a schedule can no longer be changed, for the chat (HTML)."""
    ran = describe_time(row.last_run_at, row.timezone) if row.last_run_at else ""
    values = {"id": row.id, "when": ran, "note": escape(row.note), "state": escape(row.state)}
    if row.state == ScheduleState.DONE and ran:
        text = _("Scheduled send #{id} was already sent on {when}. Make a new one with /schedule.")
    elif row.state == ScheduleState.DONE:
        text = _("Scheduled send #{id} was already sent. Make a new one with /schedule.")
    elif row.state == ScheduleState.CANCELLED:
        text = _("Scheduled send #{id} is cancelled already.")
    elif row.state == ScheduleState.MISSED:
        text = _(
            "Scheduled send #{id} was missed while the bot was not running and was never sent."
        )
    elif row.state == ScheduleState.FAILED:
        text = _("Scheduled send #{id} already ran and failed: {note}")
    elif row.state == ScheduleState.CLAIMED:
        text = _("Scheduled send #{id} is being sent right now.")
    else:
        text = _("Scheduled send #{id} is {state}.")
    return text.format(**values)


class Schedules:
    """The scheduling use-cases; ``clock`` is injected so tests choose the time."""

    def __init__(
        self,
        store: ScheduleRepository,
        repo: Repository,
        accounts: Accounts,
        sender: Sender,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self._repo = repo
        self._accounts = accounts
        self._provider = ProviderSchedules(store, accounts, sender)
        self.clock = clock
        # Set by the running scheduler: a new or moved schedule may be due sooner.
        self.on_change: Callable[[], None] | None = None

    def read_when(self, chat: Chat, body: str) -> tuple[When, str]:
        """``<when>`` off the front of ``body`` in the chat's zone, and the rest."""
        return read_when(body, zone=chat.timezone, now=self.clock())

    async def create(self, draft: ScheduleDraft) -> Created:
        """Check the send as /send would, then store it to fire later.

        A one-off whose provider keeps scheduled messages is handed to it right away, after
        the row is stored (see :mod:`bot.services.provider_schedules` for why in that order).
        """
        route = draft.route
        texts: list[str] | None = None
        if draft.texts is None:
            text = validate_text(route, draft.text, None)
            recipients = recipients_for(route, draft.recipients, draft.chat.country)
        else:  # numbers and texts are kept as they are now, whatever happens to the list
            text = draft.text.strip()
            pairs = personal_recipients(route, draft.recipients, draft.texts, draft.chat.country)
            recipients = [to for to, _own in pairs]
            texts = [validate_text(route, own, None) for _to, own in pairs]
        recipients, texts, stopped = await self._drop_stopped(draft, recipients, texts)
        adapter = await self._accounts.adapter(draft.chat.id, route.provider)  # NotConnected
        handing_over = adapter.capabilities.schedule and draft.when.recurrence is None
        # A schedule the bot fires keeps the chain; one the provider holds is that route's.
        chain = [route] if handing_over else [route, *draft.fallbacks]
        row = await self.store.add(
            Schedule(
                chat_id=draft.chat.id,
                route=chain_text(chain),
                recipients=json.dumps(recipients),
                text=text,
                next_run_at=draft.when.at,
                recurrence=draft.when.recurrence.rule if draft.when.recurrence else None,
                timezone=draft.when.zone,
                created_by=draft.actor_id,
                created_by_name=draft.actor_name,
                texts=json.dumps(texts) if texts is not None else None,
                origin=draft.origin,
            )
        )
        skipped = f"; {len(stopped)} skipped (stoplist)" if stopped else ""
        await self._repo.audit(
            draft.chat.id,
            draft.actor_id,
            "schedule",
            f"#{row.id} at {row.next_run_at}: {len(recipients)} recipient(s){skipped}",
        )
        if handing_over:
            handed = await self._provider.hand_over(
                row, draft.chat, recipients, origin=origin_of(row), now=self.clock(), texts=texts
            )
            return Created(handed.schedule, handed, tuple(stopped))
        self._changed()
        return Created(row, stopped=tuple(stopped))

    async def _drop_stopped(
        self, draft: ScheduleDraft, recipients: list[str], texts: list[str] | None
    ) -> tuple[list[str], list[str] | None, list[str]]:
        """Recipients (and their texts) the stoplist leaves, and the numbers it removed.

        Refused (audited) when it leaves none: nothing is scheduled.
        """
        own: list[str | None] = list(texts) if texts is not None else [None] * len(recipients)
        try:
            kept, stopped = await drop_stopped(
                self._repo.stoplist,
                draft.chat.id,
                draft.route,
                list(zip(recipients, own, strict=True)),
                doing="scheduled",
            )
        except BadInput:
            await self._repo.audit(
                draft.chat.id,
                draft.actor_id,
                "schedule",
                _("{count} recipient(s): all on the stoplist").format(count=len(recipients)),
                AuditOutcome.REFUSED,
            )
            raise
        kept_texts = [t or "" for _to, t in kept] if texts is not None else None
        return [to for to, _text in kept], kept_texts, stopped

    async def open_for_chat(self, chat_id: int) -> list[Schedule]:
        """The chat's schedules that have not fired for good, soonest first.

        Those a provider held whose time has passed are closed first (even with no scheduler
        running in this process).
        """
        await self.store.close_handed_over(self.clock())
        return await self.store.for_chat(chat_id, OPEN_STATES)

    async def owned(self, chat_id: int, schedule_id: int) -> Schedule:
        """One of this chat's schedules, or ``BadInput`` for an unknown or foreign id."""
        row = await self.store.get(schedule_id)
        if row is None:
            raise BadInput(
                _("There is no scheduled send #{id}. /scheduled lists them.").format(
                    id=schedule_id
                )
            )
        if row.chat_id != chat_id:
            raise BadInput(
                _(
                    "Scheduled send #{id} belongs to another chat; "
                    "you can only manage this chat's schedules."
                ).format(id=schedule_id)
            )
        return row

    async def cancel(
        self, chat_id: int, schedule_id: int, *, actor: int, name: str, anyones: bool
    ) -> Cancelled:
        """Cancel a pending schedule; a recurring one being sent stops after this run.

        ``anyones``: the actor may cancel schedules others made (admins); operators cancel
        only their own.

        Raises:
            NotAllowed: the schedule is someone else's and ``anyones`` is false.
            BadInput: unknown, another chat's, or no longer cancellable (saying why).

        """
        row = await self.owned(chat_id, schedule_id)
        _check_maker(row, actor, anyones=anyones, verb="cancel")
        for _attempt in range(_RETRIES):
            state = ScheduleState(row.state)
            if state == ScheduleState.PENDING and row.provider_ref:
                # No adapter cancels a message it holds (capabilities.cancel) yet: say so.
                raise BadInput(cannot_cancel(row))
            if state == ScheduleState.PENDING:
                note = _("cancelled by {name}").format(name=name)
                if await self.store.cancel(schedule_id, chat_id, note=note):
                    await self._repo.audit(chat_id, actor, "unschedule", f"#{schedule_id}")
                    self._changed()
                    return Cancelled(await self.owned(chat_id, schedule_id))
            elif state == ScheduleState.CLAIMED:
                if row.recurrence is None:
                    raise BadInput(
                        _(
                            "Scheduled send #{id} is being sent right now; it is too "
                            "late to cancel it. Its status card follows."
                        ).format(id=schedule_id)
                    )
                if await self.store.request_cancel(schedule_id, chat_id):
                    await self._repo.audit(chat_id, actor, "unschedule", f"#{schedule_id}")
                    return Cancelled(row, after_current_run=True)
            else:
                raise BadInput(why_closed(row))
            row = await self.owned(chat_id, schedule_id)  # it moved meanwhile: look again
        raise BadInput(_("Scheduled send #{id} kept changing; try again.").format(id=schedule_id))

    async def reschedule(
        self, chat: Chat, schedule_id: int, body: str, *, actor: int, anyones: bool
    ) -> tuple[Schedule, bool]:
        """Give a schedule a new time (or rule); returns it and whether its rule was kept.

        A one-off ``<when>`` on a recurring schedule moves only its next run. ``anyones`` as
        for :meth:`cancel`.

        Raises:
            NotAllowed: the schedule is someone else's and ``anyones`` is false.
            BadInput: unknown, another chat's, closed, or a bad ``<when>``.

        """
        row = await self.owned(chat.id, schedule_id)
        _check_maker(row, actor, anyones=anyones, verb="reschedule")
        when, rest = self.read_when(chat, body)
        if rest.strip():
            raise BadInput(
                _(
                    "Only a time goes after the id: /reschedule {id} &lt;when&gt;. "
                    "To change the text or recipients, /cancel it and /schedule a new one."
                ).format(id=schedule_id)
            )
        for _attempt in range(_RETRIES):
            state = ScheduleState(row.state)
            if state not in RESCHEDULABLE:
                raise BadInput(why_closed(row))
            if state == ScheduleState.PENDING and row.provider_ref:
                if await self._provider.move(chat, row, when, now=self.clock()):
                    await self._repo.audit(
                        chat.id, actor, "reschedule", f"#{schedule_id} at {when.at} (provider)"
                    )
                    return await self.owned(chat.id, schedule_id), False
                row = await self.owned(chat.id, schedule_id)
                continue
            kept = when.recurrence is None and row.recurrence is not None
            rule = when.recurrence.rule if when.recurrence else row.recurrence
            if await self.store.reschedule(
                schedule_id,
                chat.id,
                states=(state,),
                next_run_at=when.at,
                recurrence=rule,
                timezone=when.zone,
            ):
                await self._repo.audit(
                    chat.id, actor, "reschedule", f"#{schedule_id} at {when.at}"
                )
                self._changed()
                return await self.owned(chat.id, schedule_id), kept
            row = await self.owned(chat.id, schedule_id)
        raise BadInput(_("Scheduled send #{id} kept changing; try again.").format(id=schedule_id))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _check_maker(row: Schedule, actor: int, *, anyones: bool, verb: str) -> None:
    """Operators manage only the schedules they made; admins (``anyones``) anyone's."""
    if anyones or row.created_by == actor:
        return
    maker = escape(row.created_by_name) or _("another member")
    if verb == "cancel":
        refusal = _(
            "Scheduled send #{id} was made by {maker}: operators cancel only their own "
            "schedules; an admin can cancel anyone's."
        )
    else:
        refusal = _(
            "Scheduled send #{id} was made by {maker}: operators reschedule only their own "
            "schedules; an admin can reschedule anyone's."
        )
    raise NotAllowed(refusal.format(id=row.id, maker=maker))
