"""The Parrotica adapter: one object per connected account, behind :class:`Provider`.

Parrotica takes up to :data:`~providers.parrotica.facts.MAX_RECIPIENTS_PER_REQUEST` recipients
in one request (numbers, contact ids, group ids), so it is a
:class:`~providers.base.BulkProvider`: every recipient of one request shares the Parrotica
message id as its ``ref``, and its state. Recipients arrive from the bot as international
digits (``628…``), ``contact:<id>`` or ``group:<id>``; numbers go out in E.164 (``+628…``).

A send uses the chat's chosen sender ID (credential key ``sender_id``, set with ``/senders``),
or the account's first approved one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import httpx

from i18n import N_, _
from providers.base import (
    SCHEDULED_AT,
    AccountInfo,
    ActivityEntry,
    Balance,
    BalanceKind,
    Capabilities,
    Contact,
    ContactGroup,
    ContactsPage,
    DeliveryState,
    Lookup,
    LostSend,
    LostSendAnswer,
    OutgoingMessage,
    SenderIdentity,
    SendResult,
    StatusReport,
)
from providers.errors import UnexpectedResponse, ValidationError
from providers.parrotica.client import ParroticaClient
from providers.parrotica.facts import MAX_RECIPIENTS_PER_REQUEST, NAME, parse_id
from providers.parrotica.models import Contact as ParroticaContact

# /balance: Parrotica has no balance endpoint; this many recent transactions are shown.
TRANSACTIONS_SHOWN = 10
# A lost send is looked for among messages created from LOST_SKEW before it was stored (clocks
# differ) to LOST_WINDOW after (the request may have waited, and been retried on a 429).
LOST_SKEW = timedelta(minutes=2)
LOST_WINDOW = timedelta(minutes=10)
SENDER_KEY = "sender_id"  # the credential key /senders stores the choice under
APPROVED = frozenset({"approved", "active", "verified", "enabled"})
RECIPIENT_KINDS = ("contact", "group")


def read_recipient(raw: str) -> str | None:
    """``contact:<id>`` / ``group:<id>`` as the adapter takes them; None for a phone number.

    Raises:
        ValueError: an address-book recipient whose id is not a positive whole number.

    """
    kind, sep, value = raw.strip().partition(":")
    kind = kind.lower()
    if not sep or kind not in RECIPIENT_KINDS:
        return None
    what = N_("contact id") if kind == "contact" else N_("group id")
    try:
        return f"{kind}:{parse_id(value, what=what)}"
    except ValidationError as exc:
        wrong = (
            _("“{kind}:{value}” is not a contact id: write {kind}:<number>, e.g. {kind}:12.")
            if kind == "contact"
            else _("“{kind}:{value}” is not a group id: write {kind}:<number>, e.g. {kind}:12.")
        )
        raise ValueError(wrong.format(kind=kind, value=value)) from exc


@dataclass(frozen=True, slots=True)
class ParroticaSettings:
    """What every Parrotica adapter is built with besides credentials."""

    base_url: str = "https://api.parrotica.com"
    paths: Mapping[str, str] | None = None


class Parrotica:
    """Everything Parrotica offers one account."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        recipients_per_request=MAX_RECIPIENTS_PER_REQUEST,
        schedule=True,
        reschedule=True,
        senders=True,
        address_book=True,
        activity=True,
        balance=BalanceKind.TRANSACTIONS,
        find_lost=True,
    )

    def __init__(self, client: ParroticaClient, *, sender_id: str = "") -> None:
        self.client = client
        self._chosen = sender_id.strip()
        self._default_sender: str | None = None

    async def verify(self) -> AccountInfo:
        """Check the key and User ID with a cheap read (the sender IDs)."""
        return await self.client.verify()

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send to one recipient (``message.to``)."""
        return (await self.send_many(message, [message.to]))[0]

    async def send_many(
        self, message: OutgoingMessage, recipients: Sequence[str]
    ) -> list[SendResult]:
        """One Parrotica message to these recipients; each gets its id as ``ref``."""
        numbers: list[str] = []
        contacts: list[int] = []
        groups: list[int] = []
        for recipient in recipients:
            kind, sep, value = recipient.partition(":")
            if sep and kind == "contact":
                contacts.append(parse_id(value, what=N_("contact id")))
            elif sep and kind == "group":
                groups.append(parse_id(value, what=N_("group id")))
            else:
                numbers.append(recipient if recipient.startswith("+") else f"+{recipient}")
        outcome = await self.client.send(
            message.text,
            sender_id=await self.sender_id(),
            numbers=numbers,
            contact_ids=contacts,
            group_ids=groups,
            scheduled_at=_scheduled_at(message.options),
        )
        return [outcome.to_send_result()] * len(recipients)

    async def status(self, ref: str, *, channel: str) -> StatusReport:
        """Where a message is; an unknown word is kept verbatim and moves nothing."""
        message = await self.client.get_message(parse_id(ref, what=N_("message id")))
        report = message.status_report()
        if report is not None:
            return report
        word = message.state or message.status
        return StatusReport(
            ref=ref,
            state=DeliveryState.ACCEPTED,
            provider_status=word,
            detail=_("{provider} says “{word}”, which this bot does not know").format(
                provider=NAME, word=word
            ),
        )

    async def balances(self) -> list[Balance]:
        """Recent transactions (Parrotica has no balance endpoint), then their cost per unit."""
        lines = []
        totals: dict[str, float] = {}
        for t in (await self.client.transactions())[:TRANSACTIONS_SHOWN]:
            when = t.created_at.date().isoformat() + " " if t.created_at else ""
            what = " ".join(x for x in (t.action, t.description, t.status) if x)
            amount = t.amount if t.amount is not None else (t.value or 0.0)
            lines.append(Balance(f"{when}{what}".strip() or f"#{t.id}", amount, t.unit or ""))
            totals[t.unit or ""] = totals.get(t.unit or "", 0.0) + amount
        total = _("total of these {count}").format(count=len(lines))
        summary = [Balance(total, v, unit) for unit, v in totals.items()]
        return lines + summary

    async def find_sent(self, lost: LostSend) -> LostSendAnswer:
        """Look for a lost send in the message list: same text and sender, sent in its window.

        Parrotica's list does not show recipients, so a lost send of more recipients than one
        request takes (several messages with the same text) cannot be told apart.
        """
        if len(lost.recipients) > MAX_RECIPIENTS_PER_REQUEST:
            return LostSendAnswer(Lookup.AMBIGUOUS, detail=_("it was sent in several requests"))
        sender = await self.sender_id()
        low, high = lost.stored_at - LOST_SKEW, lost.stored_at + LOST_WINDOW
        listed, complete = await self.client.messages_between(low, high)
        matches = [
            m for m in listed if m.content.strip() == lost.text.strip() and m.sender_id == sender
        ]
        if len(matches) > 1:
            return LostSendAnswer(
                Lookup.AMBIGUOUS,
                detail=_("{count} messages with this text were sent").format(count=len(matches)),
            )
        if not matches:
            if not complete:
                return LostSendAnswer(
                    Lookup.AMBIGUOUS, detail=_("its message list is too long to search")
                )
            return LostSendAnswer(Lookup.ABSENT)
        (message,) = matches
        report = message.status_report() or StatusReport(
            ref=str(message.id),
            state=DeliveryState.ACCEPTED,
            provider_status=message.state or message.status,
        )
        return LostSendAnswer(Lookup.FOUND, report)

    async def reschedule(self, ref: str, when: datetime) -> None:
        """Move a message handed over with a future time to ``when``."""
        await self.client.reschedule(parse_id(ref, what=N_("message id")), when)

    async def senders(self) -> list[SenderIdentity]:
        """The account's sender IDs; only approved ones can send."""
        return [
            SenderIdentity(
                s.sender_id, {SENDER_KEY: s.sender_id}, s.status, s.status.lower() in APPROVED
            )
            for s in await self.client.sender_ids()
        ]

    async def sender_id(self) -> str:
        """The sender ID this account sends from: the chosen one, else the first approved."""
        if self._chosen:
            return self._chosen
        if self._default_sender is None:
            senders = await self.client.sender_ids()
            usable = [s for s in senders if s.status.lower() in APPROVED] or senders
            if not usable:
                raise ValidationError(
                    _(
                        "{provider} has no sender ID for this account yet; create one at "
                        "Parrotica, then pick it with /senders parrotica."
                    ).format(provider=NAME),
                    provider=NAME,
                )
            self._default_sender = usable[0].sender_id
        return self._default_sender

    async def contacts(self, page: int) -> ContactsPage:
        """One page of the address book."""
        found = await self.client.contacts(page=page)
        return ContactsPage(
            items=tuple(_contact(c) for c in found.items),
            page=found.page,
            has_more=found.has_more,
            total=found.total,
        )

    async def add_contact(self, name: str, number: str) -> Contact | None:
        """Add a contact (the number in E.164); the new one when Parrotica returns it."""
        added = await self.client.add_contact(name, number)
        return None if added is None else _contact(added)

    async def delete_contacts(self, ids: Sequence[int]) -> None:
        """Delete contacts by id (one request)."""
        await self.client.delete_contacts(ids)

    async def groups(self) -> list[ContactGroup]:
        """The address book's groups."""
        return [ContactGroup(g.id, g.name, g.contact_count) for g in await self.client.groups()]

    async def activity(self) -> list[ActivityEntry]:
        """The account's recent activity."""
        return [
            ActivityEntry(at=a.created_at, action=a.action, description=a.description)
            for a in await self.client.activity()
        ]

    async def aclose(self) -> None:
        """Nothing to let go: the client shares the application's HTTP client."""


def _contact(contact: ParroticaContact) -> Contact:
    return Contact(id=contact.id, name=contact.full_name, number=contact.number)


def _scheduled_at(options: Mapping[str, str]) -> datetime | None:
    raw = options.get(SCHEDULED_AT)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError as exc:  # the bot writes this option itself: a bug, not user input
        raise UnexpectedResponse(f"bad {SCHEDULED_AT} option {raw!r}", provider=NAME) from exc


def build_parrotica(
    http: httpx.AsyncClient, creds: Mapping[str, str], *, settings: ParroticaSettings
) -> Parrotica:
    """The adapter for stored credentials."""
    client = ParroticaClient(
        http,
        api_key=creds.get("api_key", ""),
        user_id=creds.get("user_id", ""),
        base_url=settings.base_url,
        paths=settings.paths,
    )
    return Parrotica(client, sender_id=creds.get("sender_id", ""))
