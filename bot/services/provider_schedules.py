"""One-off schedules handed to a provider that keeps scheduled messages itself.

A provider whose adapter declares ``capabilities.schedule`` gets a one-off /schedule at once,
through the normal send path with the option :data:`~providers.base.SCHEDULED_AT`: the
message then goes out at its time even while the bot is down. The schedule row keeps the
provider's message ids in ``provider_ref`` (comma-separated: a large send is several
provider messages), so the local scheduler never fires it; once its time has passed it is
marked ``done`` (:meth:`storage.schedules.ScheduleRepository.close_handed_over`). Its messages
are tracked like any send's, their first poll coming after the due time. Recurring schedules
stay in the bot's scheduler: a provider takes one time per message.

Crash safety: the row is stored (``pending``, no ref) *before* the provider is called, and the
send's origin is the one the row's first local run would use (``schedule:<id>:1``, unique).
A crash between the provider call and storing the ref leaves a pending row without ref: the
local scheduler fires it at its time, the send path finds the batch already stored and sends
nothing again; the run is completed from that batch and its card posted. At worst the chat
sees the card at the due time instead of at /schedule; never a second send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from bot.services.accounts import Accounts
from bot.services.chats import route_from
from bot.services.errors import BadInput
from bot.services.sending import Sender, SendOutcome, SendRequest
from bot.services.when import When, describe_time
from i18n import _
from providers.base import SCHEDULED_AT, DeliveryState, ReschedulingProvider
from providers.errors import ProviderError
from storage.models import Chat, Schedule, ScheduleState
from storage.schedules import ScheduleRepository

log = logging.getLogger(__name__)

REF_SEPARATOR = ","


@dataclass(frozen=True, slots=True)
class HandOver:
    """What a /schedule handed to the provider: the row as stored and the send's outcome."""

    schedule: Schedule
    outcome: SendOutcome


def refs_of(row: Schedule) -> list[str]:
    """The provider's message ids of a schedule it holds (empty when it holds none)."""
    return [ref for ref in (row.provider_ref or "").split(REF_SEPARATOR) if ref]


def holder(row: Schedule) -> str:
    """The display name of the provider of a schedule's route."""
    return route_from(row.route).provider.display


def cannot_cancel(row: Schedule) -> str:
    """The plain refusal of /cancel for a schedule its provider holds and cannot cancel (HTML)."""
    return _(
        "{provider} cannot cancel a scheduled message: scheduled send #{id} is already with "
        "{provider} and goes out on {when}. Nothing was changed. To send it at another time: "
        "/reschedule {id} &lt;when&gt;."
    ).format(
        provider=escape(holder(row)),
        id=row.id,
        when=describe_time(row.next_run_at, row.timezone),
    )


def _failure_note(outcome: SendOutcome) -> str:
    details = [m.detail.rstrip(". ") for m in outcome.messages if m.detail]
    if any(m.state == DeliveryState.UNKNOWN for m in outcome.messages):
        if details:
            return _(
                "the answer was lost; it may or may not be scheduled there ({reason})"
            ).format(reason=details[0])
        return _("the answer was lost; it may or may not be scheduled there")
    return details[0] if details else _("nothing was accepted")


class ProviderSchedules:
    """Hand-over and moves of schedules kept by their provider."""

    def __init__(self, store: ScheduleRepository, accounts: Accounts, sender: Sender) -> None:
        self.store = store
        self._accounts = accounts
        self._sender = sender

    async def hand_over(
        self,
        row: Schedule,
        chat: Chat,
        recipients: list[str],
        *,
        origin: str,
        now: datetime,
        texts: list[str] | None = None,
    ) -> HandOver:
        """Send a stored one-off now with its future time; record the provider's ids.

        Nothing accepted (every recipient refused, or the answer lost) fails the row with the
        reason, so it is never fired here as well; the card shows each recipient's outcome.
        """
        assert row.id is not None
        outcome = await self._sender.send(
            SendRequest(
                chat_id=row.chat_id,
                actor_id=row.created_by,
                actor_name=row.created_by_name,
                route=route_from(row.route),
                recipients=recipients,
                text=row.text,
                texts=texts,
                origin=origin,
                country=chat.country,
                options={SCHEDULED_AT: row.next_run_at.astimezone(UTC).isoformat()},
                schedule_id=row.id,
                send_at=row.next_run_at,
            )
        )
        refs = list(dict.fromkeys(m.provider_ref for m in outcome.messages if m.provider_ref))
        if refs:
            if not await self.store.hand_over(row.id, REF_SEPARATOR.join(refs)):
                log.warning("schedule %s changed during its hand-over; its card tells", row.id)
        else:
            await self.store.end_unclaimed(
                row.id, state=ScheduleState.FAILED, note=_failure_note(outcome), now=now
            )
        stored = await self.store.get(row.id)
        assert stored is not None
        return HandOver(stored, outcome)

    async def move(self, chat: Chat, row: Schedule, when: When, *, now: datetime) -> bool:
        """Move a schedule its provider holds to ``when.at``; False when the row moved meanwhile.

        Raises:
            BadInput: it is due already, ``when`` repeats, or the provider cannot move it.
            ProviderError: the provider refused (nothing is changed here).

        """
        assert row.id is not None
        name = escape(holder(row))
        if row.next_run_at <= now:
            await self.store.close_handed_over(now)
            raise BadInput(
                _(
                    "Scheduled send #{id} was due on {when} and {provider} has sent it "
                    "(or is sending it); it can no longer be moved."
                ).format(
                    id=row.id, when=describe_time(row.next_run_at, row.timezone), provider=name
                )
            )
        if when.recurrence is not None:
            raise BadInput(
                _(
                    "{provider} keeps one time per scheduled message: give #{id} a single time, "
                    "e.g. /reschedule {id} tomorrow 09:00. For a repeating send, make a new "
                    "/schedule; repeating schedules are run by the bot."
                ).format(provider=name, id=row.id)
            )
        adapter = await self._accounts.adapter(chat.id, route_from(row.route).provider)
        if not adapter.capabilities.reschedule or not isinstance(adapter, ReschedulingProvider):
            raise BadInput(
                _("{provider} cannot move a scheduled message once it has it.").format(
                    provider=name
                )
            )
        refs = refs_of(row)
        for done, ref in enumerate(refs):
            try:
                await adapter.reschedule(ref, when.at)
            except ProviderError as exc:
                if done == 0:
                    raise
                raise BadInput(
                    _(
                        "{provider} moved {done} of the {count} messages of #{id}, then "
                        "refused: {reason} Run the /reschedule again."
                    ).format(
                        provider=name,
                        done=done,
                        count=len(refs),
                        id=row.id,
                        reason=escape(exc.message),
                    )
                ) from exc
        return await self.store.reschedule(
            row.id,
            chat.id,
            states=(ScheduleState.PENDING,),
            next_run_at=when.at,
            recurrence=None,
            timezone=when.zone,
        )
