"""Before a send is handed over: quiet hours, and a Send press for large sends.

:meth:`SendGate.check_send` decides what a /send does before anything reaches a provider:

- a send to more than ``CONFIRM_ABOVE`` recipients (counted after de-duplication; a provider
  group counts as more) is stored as a :class:`~storage.models.Confirmation` and shown with
  Send / Cancel (:class:`Plan`: route, count, encoding and segments, estimated cost and the
  balance that pays for it, repeats of the same text in the last hour, quiet hours);
- inside the chat's quiet hours a send is *held*: it becomes a one-off scheduled send at the
  window's end (:mod:`bot.services.scheduling`, so it survives restarts), and the chat is told
  when it goes. ``/send now`` goes at once, after a confirmation that names the quiet hours;
- anything else passes (``None``) and the caller sends as before.

An operator's send to more than the chat's ``/approval`` threshold is held for an admin
(:mod:`bot.services.approvals`, :class:`Waiting`) before anything else: when it also needs a
Send press, the operator presses first (the confirmation shows what an admin will be asked),
and the press holds it for approval instead of sending. An approved send is made by
:meth:`SendGate.release`, which applies quiet hours at that moment as a Send press would.

A press (:meth:`SendGate.press`) is decided once by the shared confirmation store
(:meth:`storage.confirmations.Confirmations.press`); a confirmed send keeps the origin of the
command that asked for it, so a second press, or a replay of the command, never sends twice.
After Send, the caller hands the returned :class:`~bot.services.sending.SendRequest` to the
unchanged send path. /schedule to many recipients is confirmed the same way (kind
``schedule``): the press creates the schedule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.services.accounts import Accounts
from bot.services.approvals import UNKNOWN_SIZE, Approvals, Waiting, new_origin
from bot.services.errors import BadInput
from bot.services.gate_payload import (
    MediaRef,
    draft_request,
    read_draft,
    read_request,
    schedule_payload,
    send_payload,
)
from bot.services.multicasts import KIND as MULTICAST
from bot.services.multicasts import multicast_request
from bot.services.quiet import QuietHours
from bot.services.scheduling import Created, ScheduleDraft, Schedules
from bot.services.sending import SendRequest, addressed
from bot.services.stoplist import drop_stopped
from bot.services.when import When
from i18n import _
from providers.base import BalanceKind, Cost, Media
from providers.errors import ProviderError
from providers.registry import Route
from providers.sms_encoding import SmsSegments, count_segments
from storage.confirmations import Confirmations, Pressed
from storage.messages import Messages
from storage.models import Approval, Chat, Confirmation, Role, utcnow
from storage.repo import Repository

SEND = "send"
SCHEDULE = "schedule"
KINDS = (SEND, SCHEDULE)
CONFIRM_TTL = timedelta(minutes=15)
REPEAT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A send's cost as the provider documents it, and the balance that pays for it."""

    amount: float
    unit: str
    balance_name: str
    balance: float | None = None  # None: the provider did not report that line
    problem: str = ""  # why the balance could not be read
    at_least: bool = False  # provider groups: their members are not counted

    @property
    def short(self) -> bool:
        """Whether the balance is below the estimated cost."""
        return self.balance is not None and self.balance < self.amount


@dataclass(frozen=True, slots=True)
class Plan:
    """What a Send press will do, counted before anything is sent (the confirmation shows it)."""

    confirmation_id: int
    kind: str
    route: Route
    fallbacks: tuple[Route, ...]
    recipients: int
    duplicates: int
    groups: int
    text: str  # the longest text (personalised sends) or the one text
    personal: bool
    segments: SmsSegments | None  # of ``text``, on SMS routes
    parts: int  # SMS parts of the whole send
    estimate: Estimate | None
    repeats: int  # recipients who got the same text in the last hour
    quiet: QuietHours | None
    held_until: datetime | None  # Send holds it until then (quiet hours)
    now: bool  # /send now inside quiet hours: Send sends at once
    zone: str
    when: datetime | None = None  # a schedule's first run
    media: str = ""  # what file goes with it (photo, document …)
    approve: bool = False  # after Send it waits for an admin's approval


@dataclass(frozen=True, slots=True)
class Held:
    """A send moved to the end of the chat's quiet hours, as a scheduled send."""

    created: Created
    until: datetime
    quiet: QuietHours
    zone: str


@dataclass(frozen=True, slots=True)
class Decided:
    """What a Send press leads to: one of a send to hand over, a held send, a new schedule.

    ``earlier``: an earlier press did it already; nothing more happens.
    """

    kind: str
    request: SendRequest | None = None
    media: MediaRef | None = None
    held: Held | None = None
    created: Created | None = None
    earlier: bool = False
    waiting: Waiting | None = None  # held for an admin's approval instead


def _held_until(chat: Chat, at: datetime) -> tuple[QuietHours | None, datetime | None]:
    quiet = QuietHours.stored(chat.quiet_hours)
    return quiet, quiet.held_until(at, chat.timezone) if quiet is not None else None


def _units(cost: Cost, text: str, media: bool) -> float:
    """What one message costs in the provider's unit."""
    if media:
        return cost.per_media if cost.per_media is not None else cost.per_message
    if cost.per_segment:
        return count_segments(text).segments * cost.per_message
    chunks = math.ceil(len(text) / cost.text_chunk) if cost.text_chunk else 1
    return max(chunks, 1) * cost.per_message


class SendGate:
    """Quiet hours and confirmations of large sends; ``clock`` is injected for tests."""

    def __init__(
        self,
        confirmations: Confirmations,
        repo: Repository,
        accounts: Accounts,
        schedules: Schedules,
        approvals: Approvals,
        *,
        confirm_above: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._confirmations = confirmations
        self._messages: Messages = repo.messages
        self._repo = repo
        self._accounts = accounts
        self._schedules = schedules
        self._approvals = approvals
        self.confirm_above = confirm_above
        self.clock = clock

    async def check_send(
        self,
        chat: Chat,
        request: SendRequest,
        *,
        role: Role,
        now: bool = False,
        media: MediaRef | None = None,
    ) -> Plan | Held | Waiting | None:
        """A /send's way out: ``None`` to send at once, a plan to confirm, held, or waiting.

        ``role`` is the requester's: an operator's send above the chat's approval threshold
        waits for an admin (after its Send press, when it needs one).

        Raises:
            BadInput: a recipient or text the send path would refuse; a file or an option
                that cannot wait for the end of quiet hours.
            NotConnected: the route's provider is not connected (for the estimate).

        """
        quiet, until = _held_until(chat, self.clock())
        # A file may go without a caption: counted as the send path will check it, with one.
        probe = replace(request, media=Media(media.file_name, b"")) if media else request
        pairs = await self.counted(chat, request.route, addressed(probe)[1])
        groups = sum(1 for to, _text in pairs if request.route.channel.names_group(to))
        large = len(pairs) > self.confirm_above or groups > 0
        approve = self._approvals.needed(chat, role, len(pairs), unknown=groups > 0)
        if not large and until is None and not approve:
            return None  # the common case costs no query
        if await self._messages.batch_for_origin(request.origin) is not None:
            return None  # a replay of a send already made: the send path finds it
        payload = send_payload(request, now=now, media=media, approve=approve)
        if approve and not large:
            return await self._hold_for_approval(
                chat, SEND, payload, request.origin, request, pairs, groups
            )
        if not large and not now and quiet is not None and until is not None:
            return await self._hold(chat, request, media, quiet, until)
        # Large, or /send now inside quiet hours: either way a press first.
        return await self._ask(
            SEND,
            payload,
            request.actor_id,
            approve,
            chat,
            request.route,
            request.fallbacks,
            pairs,
            typed=len(request.recipients),
            personal=request.texts is not None,
            quiet=quiet,
            held_until=None if now else until,
            now=now and until is not None,
            media=media,
        )

    async def check_schedule(
        self, chat: Chat, draft: ScheduleDraft, *, role: Role
    ) -> Plan | Waiting | None:
        """A /schedule to many recipients as a plan to confirm; None to schedule at once.

        An operator's schedule above the approval threshold waits for an admin (after its
        Send press, when it needs one): approval creates the schedule.

        Raises:
            BadInput: a recipient or text the send path would refuse.

        """
        request = draft_request(draft, origin="")
        pairs = await self.counted(chat, draft.route, addressed(request)[1])
        groups = sum(1 for to, _text in pairs if draft.route.channel.names_group(to))
        approve = self._approvals.needed(chat, role, len(pairs), unknown=groups > 0)
        payload = schedule_payload(draft, approve=approve)
        if len(pairs) <= self.confirm_above and not groups:
            if not approve:
                return None
            return await self._hold_for_approval(
                chat,
                SCHEDULE,
                payload,
                new_origin(),
                draft_request(draft, origin=""),
                pairs,
                groups,
            )
        quiet, until = _held_until(chat, draft.when.at)
        return await self._ask(
            SCHEDULE,
            payload,
            draft.actor_id,
            approve,
            chat,
            draft.route,
            draft.fallbacks,
            pairs,
            typed=len(draft.recipients),
            personal=draft.texts is not None,
            quiet=quiet,
            held_until=until,
            now=False,
            media=None,
            when=draft.when.at,
        )

    async def counted(
        self, chat: Chat, route: Route, pairs: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The recipients (with their texts) a send is counted by, against ``CONFIRM_ABOVE``.

        ``pairs`` are de-duplicated already (normalised by the send path's own reader); the
        chat's stoplist drops its numbers here, so a confirmation counts who will get it. When
        it drops them all, none are counted: the send path refuses it (and audits that).
        """
        try:
            kept, _stopped = await drop_stopped(self._repo.stoplist, chat.id, route, pairs)
        except BadInput:
            return []
        return kept

    def quiet_until(self, chat: Chat, at: datetime) -> datetime | None:
        """When a send due at ``at`` may go, if the chat's quiet hours hold it."""
        return _held_until(chat, at)[1]

    async def waiting(self, chat_id: int, confirmation_id: int) -> Confirmation:
        """The chat's send or schedule confirmation, or ``BadInput`` when there is none."""
        row = await self._confirmations.get(confirmation_id)
        if row is None or row.chat_id != chat_id or row.kind not in KINDS:
            raise BadInput(
                _("This confirmation is not known here any more; run the command again.")
            )
        return row

    async def cancel(self, chat_id: int, confirmation_id: int, *, actor: int) -> bool:
        """Cancel a waiting send or schedule; whether this press cancelled it."""
        await self.waiting(chat_id, confirmation_id)
        return await self._confirmations.decide(confirmation_id, confirm=False, by=actor)

    async def press(self, chat: Chat, confirmation_id: int, *, actor: int) -> Decided:
        """Send pressed: what to do now (decided once, whoever presses and however often).

        Raises:
            BadInput: it was cancelled, it expired, or a schedule's time passed meanwhile.

        """
        row = await self.waiting(chat.id, confirmation_id)
        pressed = await self._confirmations.press(confirmation_id, by=actor)
        if pressed == Pressed.CANCELLED:
            if row.kind == SEND:
                raise BadInput(_("This send was cancelled; nothing was sent."))
            raise BadInput(_("This scheduled send was cancelled; nothing was sent."))
        if pressed == Pressed.EXPIRED:
            minutes = int(CONFIRM_TTL.total_seconds() // 60)
            if row.kind == SEND:
                expired = _(
                    "This send waited more than {minutes} minutes for its confirmation and "
                    "expired; nothing was sent. Run the command again."
                )
            else:
                expired = _(
                    "This scheduled send waited more than {minutes} minutes for its "
                    "confirmation and expired; nothing was sent. Run the command again."
                )
            raise BadInput(expired.format(minutes=minutes))
        data: dict[str, Any] = json.loads(row.payload)
        if data.get("approve"):  # the operator confirmed it: now an admin decides
            origin = data.get("origin") or f"confirm:{confirmation_id}"
            if pressed == Pressed.EARLIER:
                return Decided(row.kind, earlier=True)
            request = (
                read_request(chat, data)
                if row.kind == SEND
                else draft_request(read_draft(chat, data, self.clock()), origin="")
            )
            pairs = await self.counted(chat, request.route, addressed(request)[1])
            groups = sum(1 for to, _text in pairs if request.route.channel.names_group(to))
            waiting = await self._hold_for_approval(
                chat, row.kind, row.payload, origin, request, pairs, groups
            )
            return Decided(row.kind, waiting=waiting)
        if row.kind == SCHEDULE:
            if pressed == Pressed.EARLIER:
                return Decided(SCHEDULE, earlier=True)
            draft = read_draft(chat, data, self.clock())
            return Decided(SCHEDULE, created=await self._schedules.create(draft))
        return await self._release_send(chat, data, earlier=pressed == Pressed.EARLIER)

    async def release(self, chat: Chat, row: Approval) -> Decided:
        """What an approved send does now: send, hold for quiet hours, schedule or multicast.

        Safe to repeat (after a restart): each path finds what an earlier run stored by its
        unique origin, and then says ``earlier``.

        Raises:
            BadInput: a schedule's one-off time passed while it waited for approval.

        """
        data: dict[str, Any] = json.loads(row.payload)
        if row.kind == MULTICAST:
            return Decided(
                SEND,
                request=multicast_request(
                    chat.id,
                    data,
                    actor=row.requested_by,
                    actor_name=row.requested_by_name,
                    origin=row.origin,
                ),
            )
        if row.kind == SCHEDULE:
            origin = f"approval:{row.id}"
            if await self._schedules.store.by_origin(origin) is not None:
                return Decided(SCHEDULE, earlier=True)
            draft = replace(read_draft(chat, data, self.clock()), origin=origin)
            return Decided(SCHEDULE, created=await self._schedules.create(draft))
        return await self._release_send(chat, data, earlier=True, hold_again=True)

    async def _release_send(
        self, chat: Chat, data: dict[str, Any], *, earlier: bool, hold_again: bool = False
    ) -> Decided:
        """A decided send: held by quiet hours, or handed back to be sent now.

        ``earlier``: it may have been sent (or held) before, by a press or a run before a
        restart; then nothing more happens. ``hold_again``: a send quiet hours hold is held
        (again: the held schedule is found by origin) rather than called earlier.
        """
        request = read_request(chat, data)
        media = MediaRef(**data["media"]) if data.get("media") else None
        quiet, until = _held_until(chat, self.clock())
        holds = until is not None and quiet is not None and not data.get("now")
        if earlier and (
            (holds and not hold_again)
            or await self._messages.batch_for_origin(request.origin) is not None
        ):
            return Decided(SEND, earlier=True)
        if holds and quiet is not None and until is not None:
            held = await self._hold(chat, request, media, quiet, until)
            return Decided(SEND, held=held)  # a replay finds the held schedule by origin
        # Otherwise the send goes now; a press after a stop cut the first one off sends it
        # (its origin is unique, so it is never sent twice).
        return Decided(SEND, request=request, media=media)

    async def _hold_for_approval(
        self,
        chat: Chat,
        kind: str,
        payload: str,
        origin: str,
        request: SendRequest,
        pairs: Sequence[tuple[str, str]],
        groups: int,
    ) -> Waiting:
        """Keep a send for an admin's approval; its card counts who gets it."""
        texts = {text for _, text in pairs}
        return await self._approvals.hold(
            chat,
            kind,
            payload,
            origin=origin,
            actor_id=request.actor_id,
            actor_name=request.actor_name,
            route=str(request.route),
            recipients=UNKNOWN_SIZE if groups else len(pairs),
            text=max(texts, key=len) if texts else request.text,
        )

    async def _hold(
        self,
        chat: Chat,
        request: SendRequest,
        media: MediaRef | None,
        quiet: QuietHours,
        until: datetime,
    ) -> Held:
        """Keep a send for the end of quiet hours as a one-off scheduled send."""
        if media is not None or request.options:
            if media is not None:
                refusal = _(
                    "🌙 Quiet hours ({window}, {zone}): A {what} cannot wait for {end:%H:%M}, "
                    "since scheduled sends carry text only. Send it at once with /send now …, "
                    "or again after the quiet hours. Nothing was sent."
                )
            else:
                refusal = _(
                    "🌙 Quiet hours ({window}, {zone}): A send with --otp cannot wait for "
                    "{end:%H:%M}, since scheduled sends carry text only. Send it at once with "
                    "/send now …, or again after the quiet hours. Nothing was sent."
                )
            raise BadInput(
                refusal.format(
                    window=quiet.label,
                    zone=chat.timezone,
                    what=_(media.what) if media is not None else "",
                    end=quiet.end,
                )
            )
        earlier = await self._schedules.store.by_origin(request.origin)
        if earlier is not None:  # the command replayed (after a crash): held already
            return Held(Created(earlier), earlier.next_run_at, quiet, chat.timezone)
        draft = ScheduleDraft(
            chat=chat,
            origin=request.origin,
            actor_id=request.actor_id,
            actor_name=request.actor_name,
            when=When(at=until, zone=chat.timezone),
            route=request.route,
            fallbacks=request.fallbacks,
            recipients=request.recipients,
            text=request.text,
            texts=request.texts,
        )
        created = await self._schedules.create(draft)
        return Held(created, until, quiet, chat.timezone)

    async def _ask(
        self,
        kind: str,
        payload: str,
        actor: int,
        approve: bool,
        chat: Chat,
        route: Route,
        fallbacks: tuple[Route, ...],
        pairs: Sequence[tuple[str, str]],
        *,
        typed: int,
        personal: bool,
        quiet: QuietHours | None,
        held_until: datetime | None,
        now: bool,
        media: MediaRef | None,
        when: datetime | None = None,
    ) -> Plan:
        """Store the confirmation and say what Send will do.

        The estimate comes first: a provider that is not connected is refused before
        anything is stored.
        """
        estimate = await self._estimate(chat.id, route, pairs, media)
        recent = await self._messages.sent_since(chat.id, self.clock() - REPEAT_WINDOW)
        row = await self._confirmations.ask(chat.id, actor, kind, payload, ttl=CONFIRM_TTL)
        assert row.id is not None
        groups = sum(1 for to, _text in pairs if route.channel.names_group(to))
        texts = {text for _to, text in pairs}
        longest = max(texts, key=len) if texts else ""
        segments = parts = None
        if route.channel.sms and texts:
            counted = {t: count_segments(t) for t in texts}
            segments = (
                counted[longest]
                if len(texts) == 1
                else max(counted.values(), key=lambda s: s.segments)
            )
            parts = sum(counted[t].segments for _to, t in pairs)
        return Plan(
            confirmation_id=row.id,
            kind=row.kind,
            route=route,
            fallbacks=fallbacks,
            recipients=len(pairs),
            duplicates=max(typed - len(pairs), 0),
            groups=groups,
            text=longest,
            personal=personal,
            segments=segments,
            parts=parts or 0,
            estimate=estimate,
            repeats=sum(1 for pair in pairs if pair in recent),
            quiet=quiet,
            held_until=held_until,
            now=now,
            zone=chat.timezone,
            when=when,
            media=media.what if media is not None else "",
            approve=approve,
        )

    async def _estimate(
        self,
        chat_id: int,
        route: Route,
        pairs: Sequence[tuple[str, str]],
        media: MediaRef | None,
    ) -> Estimate | None:
        """The documented cost of the send and the balance that pays it; None: not stated."""
        adapter = await self._accounts.adapter(chat_id, route.provider, channel=route.channel)
        cost = adapter.capabilities.cost(route.channel.name)
        if cost is None:
            return None
        amount = sum(_units(cost, text, media is not None) for _to, text in pairs)
        balance, problem = None, ""
        if adapter.capabilities.balance == BalanceKind.CREDIT:
            try:
                lines = await adapter.balances()
            except ProviderError as exc:
                problem = exc.message
            else:
                found = next((b for b in lines if b.name == cost.balance), None)
                balance = found.amount if found is not None else None
        groups = any(route.channel.names_group(to) for to, _text in pairs)
        return Estimate(amount, cost.unit, cost.balance, balance, problem, at_least=groups)
