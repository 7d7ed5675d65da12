"""What a confirmation of a large send or schedule stores, and reading it back at the press.

The payload is JSON (never a secret): a send's route chain, recipients (lists already
expanded), texts, origin and options, and the file's Telegram id when it carries one; a
schedule's draft with its first run and rule. :mod:`bot.services.gate` writes and reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.services.chats import chain_text, route_chain
from bot.services.errors import BadInput
from bot.services.scheduling import ScheduleDraft
from bot.services.sending import SendRequest
from bot.services.when import Recurrence, When, load_zone
from i18n import _
from storage.models import Chat


@dataclass(frozen=True, slots=True)
class MediaRef:
    """The file a confirmed send downloads at the press: Telegram keeps it, we keep its id."""

    file_id: str
    file_name: str
    extension: str
    limit: int
    mime_type: str
    what: str
    note: str = ""


def send_payload(
    request: SendRequest, *, now: bool, media: MediaRef | None, approve: bool = False
) -> str:
    """The JSON a /send confirmation keeps (``now``: /send now, which quiet hours do not hold).

    ``approve``: after the Send press it waits for an admin's approval.
    """
    return json.dumps(
        {
            "route": chain_text([request.route, *request.fallbacks]),
            "recipients": list(request.recipients),
            "text": request.text,
            "texts": list(request.texts) if request.texts is not None else None,
            "origin": request.origin,
            "options": dict(request.options) if request.options else None,
            "card_note": request.card_note,
            "actor_id": request.actor_id,
            "actor_name": request.actor_name,
            "now": now,
            "media": asdict(media) if media is not None else None,
            "approve": approve,
        }
    )


def read_request(chat: Chat, data: dict[str, Any]) -> SendRequest:
    """The send a /send confirmation kept, as the send path takes it (without its file)."""
    route, *fallbacks = route_chain(data["route"])
    return SendRequest(
        chat_id=chat.id,
        actor_id=int(data["actor_id"]),
        actor_name=str(data["actor_name"]),
        route=route,
        fallbacks=tuple(fallbacks),
        recipients=list(data["recipients"]),
        text=str(data["text"]),
        texts=data["texts"],
        origin=str(data["origin"]),
        country=chat.country,
        options=data["options"],
        card_note=str(data["card_note"]),
    )


def draft_request(draft: ScheduleDraft, *, origin: str) -> SendRequest:
    """A schedule draft as a send request, to count and check its recipients as a send would."""
    return SendRequest(
        chat_id=draft.chat.id,
        actor_id=draft.actor_id,
        actor_name=draft.actor_name,
        route=draft.route,
        recipients=draft.recipients,
        text=draft.text,
        texts=draft.texts,
        origin=origin,
        country=draft.chat.country,
    )


def schedule_payload(draft: ScheduleDraft, *, approve: bool = False) -> str:
    """The JSON a /schedule confirmation keeps (``approve``: see :func:`send_payload`)."""
    rule = draft.when.recurrence
    return json.dumps(
        {
            "route": chain_text([draft.route, *draft.fallbacks]),
            "recipients": list(draft.recipients),
            "text": draft.text,
            "texts": list(draft.texts) if draft.texts is not None else None,
            "actor_id": draft.actor_id,
            "actor_name": draft.actor_name,
            "at": draft.when.at.isoformat(),
            "zone": draft.when.zone,
            "rule": rule.rule if rule is not None else None,
            "approve": approve,
        }
    )


def read_draft(chat: Chat, data: dict[str, Any], now: datetime) -> ScheduleDraft:
    """The schedule a confirmation stored, its first run moved on if it passed meanwhile."""
    route, *fallbacks = route_chain(data["route"])
    at = datetime.fromisoformat(data["at"])
    rule = Recurrence(data["rule"]) if data["rule"] else None
    if at <= now:
        if rule is None:
            raise BadInput(
                _(
                    "The time of this scheduled send passed while it waited for its "
                    "confirmation; nothing was scheduled. Run /schedule again with a new time."
                )
            )
        at = rule.next_after(now, zone=load_zone(data["zone"]), anchor=at)
    return ScheduleDraft(
        chat=chat,
        actor_id=int(data["actor_id"]),
        actor_name=str(data["actor_name"]),
        when=When(at=at, zone=str(data["zone"]), recurrence=rule),
        route=route,
        fallbacks=tuple(fallbacks),
        recipients=list(data["recipients"]),
        text=str(data["text"]),
        texts=data["texts"],
    )
