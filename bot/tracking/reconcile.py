"""Settling ``unknown`` messages: ask the provider about a send whose answer was lost.

A request that may have reached the provider but whose answer was lost (a timeout, a dropped
connection, a kill mid-send) leaves its messages ``unknown``: never resent blindly. Once their
provider's records have had time to catch up (:data:`RECONCILE_AFTER`), each such send is
looked up once where the adapter can (``capabilities.find_lost``):

- found → the provider's state and ref (then polled like any message);
- absent → ``failed``: it was not sent, so sending it again is safe and the chat is told so;
- ambiguous → left ``unknown``, saying why.

Where the provider cannot be asked, the message says so once, plainly. Every outcome is one
history row with the source ``reconcile``, which is also what marks a message as looked up.
Nothing is ever sent from here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.tracking.poller import Poller
from i18n import _, use_language
from providers.base import DeliveryState, Lookup, LostSend, LostSendAnswer, SendFinder
from providers.errors import ProviderError
from providers.registry import REGISTRY
from storage.messages import RECONCILE, Messages, StateChange
from storage.models import Message

log = logging.getLogger(__name__)

RECONCILE_AFTER = timedelta(minutes=2)  # the provider's lists may lag its answers
PAGE = 100


def _display(provider: str) -> str:
    spec = REGISTRY.get(provider)
    return spec.display if spec else provider


def _settle(
    answer: LostSendAnswer,
    ids: list[int],
    name: str,
    changes: list[StateChange],
    notes: list[tuple[list[int], str]],
    first_poll: datetime,
) -> None:
    """What one lookup's answer changes (state changes) or says (notes) for ``ids``."""
    if answer.lookup == Lookup.FOUND and answer.report is not None:
        report = answer.report
        detail = _("Its answer was lost; {provider} has it, so it was not sent again.").format(
            provider=name
        )
        changes.extend(
            StateChange(
                message_id=i,
                state=report.state,
                source=RECONCILE,
                provider_ref=report.ref,
                provider_status=report.provider_status,
                detail=detail,
                next_poll_at=first_poll,
                poll_attempts=0,
            )
            for i in ids
        )
    elif answer.lookup == Lookup.CANNOT_ASK:
        note = _(
            "Its answer was lost and {provider} cannot be asked whether it sent it "
            "({reason}): check with {provider} before sending it again."
        ).format(provider=name, reason=answer.detail)
        notes.append((ids, note))
    elif answer.lookup == Lookup.ABSENT:
        detail = _(
            "Its answer was lost and {provider} has no such message: it was not sent. "
            "Send it again if it is still needed."
        ).format(provider=name)
        changes.extend(
            StateChange(message_id=i, state=DeliveryState.FAILED, source=RECONCILE, detail=detail)
            for i in ids
        )
    elif answer.detail:
        note = _(
            "Its answer was lost and {provider} cannot tell which of its messages it is: "
            "{reason}; it was not sent again."
        ).format(provider=name, reason=answer.detail)
        notes.append((ids, note))
    else:
        note = _(
            "Its answer was lost and {provider} cannot tell which of its messages it is; "
            "it was not sent again."
        ).format(provider=name)
        notes.append((ids, note))


async def reconcile(poller: Poller, messages: Messages, now: datetime) -> int:
    """Look up the ``unknown`` sends due for it; returns how many messages were settled."""
    lost = await messages.lost_sends(now - RECONCILE_AFTER, PAGE)
    if not lost:
        return 0
    adapters = await poller.adapters(lost)
    # One lookup per provider request: a batch's recipients on a route that takes many in one
    # request shared it (and its text: a personalised send's texts went in requests of their
    # own); elsewhere each message was its own request.
    groups: dict[tuple[int, str, str, int, str], list[Message]] = {}
    for message in lost:
        adapter = adapters[(message.chat_id, message.provider)]
        shared = not isinstance(adapter, Exception) and (
            adapter.capabilities.per_request(message.channel) > 1
        )
        key = (
            message.batch_id,
            message.provider,
            message.channel,
            0 if shared else message.id or 0,
            message.text if shared else "",
        )
        groups.setdefault(key, []).append(message)
    changes: list[StateChange] = []
    notes: list[tuple[list[int], str]] = []
    for (_batch, provider, channel, _one, _text), group in groups.items():
        ids = [m.id for m in group if m.id is not None]
        name = _display(provider)
        adapter = adapters[(group[0].chat_id, provider)]
        if isinstance(adapter, Exception):
            continue  # not connected (any more): tried again on a later sweep
        # The details are stored as the chat's card shows them: in the chat's language.
        language = await poller.language(group[0].chat_id)
        if not (adapter.capabilities.find_lost and isinstance(adapter, SendFinder)):
            with use_language(language):
                note = _(
                    "Its answer was lost and {provider} cannot be asked whether it sent it: "
                    "check with {provider} before sending it again."
                ).format(provider=name)
            notes.append((ids, note))
            continue
        lookup = LostSend(
            channel=channel,
            recipients=tuple(m.recipient for m in group),
            text=group[0].text,
            stored_at=min(m.created_at for m in group),
        )
        try:
            answer = await adapter.find_sent(lookup)
        except ProviderError as exc:  # asked again on the next sweep
            log.info("could not look up %d lost %s message(s): %s", len(ids), name, exc)
            continue
        with use_language(language):
            _settle(answer, ids, name, changes, notes, now + poller.policy.delay(0))
    # Both owe the chat a card edit through the outbox, in their own transactions.
    moved = (await messages.apply_changes(changes)).moved
    for ids, detail in notes:
        await messages.note(ids, detail, source=RECONCILE)
    poller.track(moved, now)
    return len(moved)
