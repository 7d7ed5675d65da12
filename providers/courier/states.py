"""courier's status words for each resource, and its ``callback-status-url`` posts.

One table per resource, used by polls and callbacks alike. A word that is not in its table is
never guessed into a state: :class:`Reading` keeps it verbatim with ``state=None``, and the
adapter reports it without moving the message.

- **texts** are Twilio-backed; only ``accepted`` is printed in courier's documentation, so the
  table holds Twilio's values (api-docs README).
- **bulk messages** have no status word, only ``draft`` and ``posted-time``: posted means
  courier put the message into each recipient's channel, which is as far as it reports.
- **multicasts** carry a ``status`` string whose values are not documented (*inferred*: the
  words job queues and Twilio/Carium use for a broadcast's progress).
- **e-mails** carry ``status`` (``draft`` is printed; the rest *inferred*).

The callback body is not documented either: assumed to be the text resource as JSON:API
(``{"data": {"id": ..., "type": "texts", "attributes": {"status": ..., "error": ...}}}``) or
flat (``{"id": ..., "status": ...}``); Twilio's own form fields (``MessageSid`` /
``MessageStatus`` / ``ErrorMessage``) are read as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from i18n import N_, _
from providers.base import DeliveryState
from providers.receipts import ReceiptFields, Receipts, items_of, read_items

_D = DeliveryState

TEXT_STATES: Mapping[str, DeliveryState] = MappingProxyType(
    {
        "accepted": _D.ACCEPTED,
        "scheduled": _D.ACCEPTED,
        "queued": _D.ACCEPTED,
        "sending": _D.SENT,
        "sent": _D.SENT,
        "delivered": _D.DELIVERED,
        "read": _D.READ,
        "undelivered": _D.UNDELIVERED,
        "failed": _D.FAILED,
        "canceled": _D.ABORTED,
        "cancelled": _D.ABORTED,
    }
)

MULTICAST_STATES: Mapping[str, DeliveryState] = MappingProxyType(
    {
        "created": _D.ACCEPTED,
        "new": _D.ACCEPTED,
        "pending": _D.ACCEPTED,
        "accepted": _D.ACCEPTED,
        "queued": _D.ACCEPTED,
        "scheduled": _D.ACCEPTED,
        "processing": _D.ACCEPTED,
        "in-progress": _D.ACCEPTED,
        "running": _D.ACCEPTED,
        "sending": _D.ACCEPTED,
        # A multicast is done when courier has handed every message on; it does not report
        # each recipient's delivery, so "done" is as far as ``sent``.
        "sent": _D.SENT,
        "done": _D.SENT,
        "complete": _D.SENT,
        "completed": _D.SENT,
        "finished": _D.SENT,
        "success": _D.SENT,
        "succeeded": _D.SENT,
        "failed": _D.FAILED,
        "error": _D.FAILED,
        "canceled": _D.ABORTED,
        "cancelled": _D.ABORTED,
        "aborted": _D.ABORTED,
    }
)

EMAIL_STATES: Mapping[str, DeliveryState] = MappingProxyType(
    {
        "draft": _D.ACCEPTED,
        "pending": _D.ACCEPTED,
        "queued": _D.ACCEPTED,
        "sending": _D.ACCEPTED,
        "sent": _D.SENT,
        "delivered": _D.DELIVERED,
        "opened": _D.READ,
        "failed": _D.FAILED,
        "error": _D.FAILED,
        "bounced": _D.UNDELIVERED,
        "rejected": _D.FAILED,
    }
)

# A bulk message's two documented facts, as the words shown in the chat.
BULK_DRAFT = "draft"
BULK_POSTING = "posting"
BULK_POSTED = "posted"
BULK_STATES: Mapping[str, DeliveryState] = MappingProxyType(
    {BULK_DRAFT: _D.ACCEPTED, BULK_POSTING: _D.ACCEPTED, BULK_POSTED: _D.SENT}
)

# Stored in English as a status detail and translated where a chat shows it (bot/render.py).
_MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        BULK_DRAFT: N_("held as a draft at courier, not posted"),
        BULK_POSTING: N_("accepted by courier, not posted yet"),
        BULK_POSTED: N_("posted to the recipients' channels"),
    }
)


@dataclass(frozen=True, slots=True)
class Reading:
    """What a status word says; ``state`` is None for a word its table does not know."""

    state: DeliveryState | None
    provider_status: str
    detail: str = ""

    @property
    def known(self) -> bool:
        """Whether the word is in its table."""
        return self.state is not None


def normalise(word: str) -> str:
    """``" In_Progress "`` → ``"in-progress"``: the tables' key form."""
    return "-".join(word.strip().lower().replace("_", " ").split())


def _read(table: Mapping[str, DeliveryState], word: str, what: str) -> Reading:
    state = table.get(normalise(word))
    if state is not None:
        return Reading(state, word, _MEANINGS.get(normalise(word), ""))
    detail = (
        _("courier reports the {what} as “{word}”, a status this bot does not know").format(
            what=_(what), word=word
        )
        if word.strip()
        else _("no status reported")
    )
    return Reading(None, word, detail)


def read_text(word: str) -> Reading:
    """A text's ``status``."""
    return _read(TEXT_STATES, word, N_("text"))


def read_multicast(word: str) -> Reading:
    """A multicast's ``status``."""
    return _read(MULTICAST_STATES, word, N_("multicast"))


def read_email(word: str) -> Reading:
    """An e-mail's ``status``."""
    return _read(EMAIL_STATES, word, N_("e-mail"))


def bulk_word(*, draft: bool | None, posted_time: str) -> str:
    """A bulk message's progress as one word: posted, draft, or posting (neither yet)."""
    if posted_time.strip():
        return BULK_POSTED
    if draft:
        return BULK_DRAFT
    return BULK_POSTING


def read_bulk(*, draft: bool | None, posted_time: str) -> Reading:
    """A bulk message's ``draft`` and ``posted-time``."""
    return _read(BULK_STATES, bulk_word(draft=draft, posted_time=posted_time), N_("bulk message"))


# -- callbacks ---------------------------------------------------------------------------------

FIELDS = ReceiptFields(
    ref=("id", "text-id", "text_id", "MessageSid", "SmsSid", "twilio-sid"),
    status=("status", "MessageStatus", "SmsStatus"),
    detail=("error", "ErrorMessage", "error-message", "detail"),
)


def state_of(raw: str) -> DeliveryState | None:
    """The state a courier text status means, None when it is not in the table."""
    return TEXT_STATES.get(normalise(raw))


def read_status(body: Any) -> Receipts:
    """Read a courier ``callback-status-url`` post (JSON:API, flat, or Twilio form fields)."""
    flat: list[Mapping[str, Any]] = []
    for item in items_of(body):
        attributes = item.get("attributes")
        if isinstance(attributes, Mapping):
            merged = dict(attributes)
            if item.get("id") not in (None, ""):
                merged["id"] = item["id"]
            flat.append(merged)
        else:
            flat.append(item)
    return read_items(flat, state_of, FIELDS)
