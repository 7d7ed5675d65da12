"""Typed results of the Parrotica client, each built from one documented (or inferred) object.

Message, sender ID and transaction shapes are printed in ``shared/api-docs/parrotica.txt``;
contact, group, contact-summary and activity shapes are not, so their parsers accept the
usual spellings (``fullName``/``name``, ``number``/``phone``, …) and never fail on a field
they do not know. Only a missing or fractional ``id`` is an :class:`UnexpectedResponse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from i18n import N_, _
from providers.base import DeliveryState, SendResult, StatusReport
from providers.errors import UnexpectedResponse
from providers.parrotica.facts import NAME, parse_time, read_id
from providers.parrotica.states import StateReading, read_state

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``total`` when Parrotica's ``meta`` says it."""

    items: tuple[T, ...]
    page: int
    limit: int
    total: int | None = None

    @property
    def has_more(self) -> bool:
        """Whether a next page may hold more items."""
        if self.total is not None:
            return self.page * self.limit < self.total
        return len(self.items) >= self.limit


class IdSource(StrEnum):
    """Where a sent message's id came from."""

    RESPONSE = "response"
    MESSAGE_LIST = "message list"  # i18n: not shown
    NONE = "none"


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """Parrotica accepted a send; ``message_id`` is ``None`` when it cannot be told.

    An unknown id means the message *was* accepted but cannot be tracked: mark it
    ``unknown`` and never send it again.
    """

    message_id: int | None
    found_by: IdSource
    scheduled_at: datetime | None = None
    detail: str = ""

    @property
    def id_known(self) -> bool:
        """Whether the message id is known."""
        return self.message_id is not None

    @property
    def state(self) -> DeliveryState:
        """``accepted`` with a known id, else ``unknown``."""
        return DeliveryState.ACCEPTED if self.id_known else DeliveryState.UNKNOWN

    def to_send_result(self) -> SendResult:
        """The project-wide :class:`SendResult` (``ref`` empty when the id is unknown)."""
        ref = "" if self.message_id is None else str(self.message_id)
        return SendResult(ref=ref, state=self.state, detail=self.detail)


@dataclass(frozen=True, slots=True)
class Message:
    """A Parrotica message (``MessageExisting``)."""

    id: int
    content: str
    sender_id: str
    state: str
    status: str
    scheduled_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    contact_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()

    @property
    def reading(self) -> StateReading:
        """What the ``state``/``status`` words mean (see :mod:`providers.parrotica.states`)."""
        return read_state(self.state, self.status)

    def status_report(self) -> StatusReport | None:
        """A receipt for the tracker, or ``None`` when the word is unknown (no change)."""
        reading = self.reading
        if reading.state is None:
            return None
        return StatusReport(
            ref=str(self.id),
            state=reading.state,
            provider_status=reading.provider_status,
            detail=reading.detail,
            at=self.updated_at,
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """An address-book contact."""

    id: int
    full_name: str
    number: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """A contact group (``group:<id>`` in a send)."""

    id: int
    name: str
    contact_count: int | None = None


@dataclass(frozen=True, slots=True)
class ContactSummary:
    """The numbers of the contact summary (field names as Parrotica sends them)."""

    counts: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_contacts(self) -> int | None:
        """The contact total, under whichever name Parrotica used."""
        for key in ("totalContacts", "total", "contacts", "count"):
            if key in self.counts:
                return int(self.counts[key])
        return None


@dataclass(frozen=True, slots=True)
class SenderId:
    """A sender ID of the account."""

    id: int
    sender_id: str
    status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One credit transaction (top-up, charge, refund)."""

    id: int
    amount: float | None
    unit: str
    value: float | None
    action: str
    description: str
    status: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """One entry of the account's activity log (shape not documented)."""

    id: int | None
    action: str
    description: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """An answer without data: Parrotica's own ``message``."""

    message: str


def _text(item: Mapping[str, object], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return ""


def _number(item: Mapping[str, object], *keys: str) -> float | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


def _ids(raw: object) -> tuple[int, ...]:
    """Ids out of ``contacts[]``/``groups[]`` (ints, or objects with an ``id``)."""
    if not isinstance(raw, list):
        return ()
    out: list[int] = []
    for entry in raw:
        value = entry.get("id") if isinstance(entry, dict) else entry
        try:
            out.append(read_id(value))
        except UnexpectedResponse:
            continue  # the samples show "{}" placeholders: nothing to track
    return tuple(out)


def as_object(raw: object, *, what: str) -> Mapping[str, object]:
    """A JSON object from ``data`` or a list, or ``UnexpectedResponse``."""
    if not isinstance(raw, dict):
        raise UnexpectedResponse(
            _("{provider} sent {what} that is not an object.").format(provider=NAME, what=_(what)),
            provider=NAME,
        )
    return raw


def as_list(raw: object, *, what: str) -> list[object]:
    """A JSON list from ``data``, or ``UnexpectedResponse``."""
    if not isinstance(raw, list):
        raise UnexpectedResponse(
            _("{provider} sent {what} that is not a list.").format(provider=NAME, what=_(what)),
            provider=NAME,
        )
    return raw


def parse_message(raw: object) -> Message:
    """A ``MessageExisting`` object."""
    item = as_object(raw, what=N_("a message"))
    return Message(
        id=read_id(item.get("id"), what=N_("a message id")),
        content=_text(item, "content"),
        sender_id=_text(item, "senderId"),
        state=_text(item, "state"),
        status=_text(item, "status"),
        scheduled_at=parse_time(item.get("scheduledAt")),
        created_at=parse_time(item.get("createdAt")),
        updated_at=parse_time(item.get("updatedAt")),
        contact_ids=_ids(item.get("contacts")),
        group_ids=_ids(item.get("groups")),
    )


def parse_contact(raw: object) -> Contact:
    """A contact (``{id, fullName, number, …}``; the fields are inferred)."""
    item = as_object(raw, what=N_("a contact"))
    return Contact(
        id=read_id(item.get("id"), what=N_("a contact id")),
        full_name=_text(item, "fullName", "name"),
        number=_text(item, "number", "phone", "phoneNumber"),
        created_at=parse_time(item.get("createdAt")),
    )


def parse_group(raw: object) -> Group:
    """A group (``{id, name, …}``; the fields are inferred)."""
    item = as_object(raw, what=N_("a group"))
    count = _number(item, "contactCount", "totalContacts", "count")
    members = item.get("contacts")
    if count is None and isinstance(members, list):
        count = float(len(members))
    return Group(
        id=read_id(item.get("id"), what=N_("a group id")),
        name=_text(item, "name", "groupName", "title"),
        contact_count=None if count is None else int(count),
    )


def parse_summary(raw: object) -> ContactSummary:
    """The contact summary: every numeric field, by the name Parrotica gave it."""
    item = as_object(raw, what=N_("a contact summary"))
    counts = {
        key: float(value)
        for key, value in item.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return ContactSummary(counts=counts)


def parse_sender_id(raw: object) -> SenderId:
    """A ``SenderId`` object."""
    item = as_object(raw, what=N_("a sender ID"))
    return SenderId(
        id=read_id(item.get("id"), what=N_("a sender ID id")),
        sender_id=_text(item, "senderId"),
        status=_text(item, "status"),
        created_at=parse_time(item.get("createdAt")),
        updated_at=parse_time(item.get("updatedAt")),
    )


def parse_transaction(raw: object) -> Transaction:
    """A transaction object."""
    item = as_object(raw, what=N_("a transaction"))
    return Transaction(
        id=read_id(item.get("id"), what=N_("a transaction id")),
        amount=_number(item, "amount"),
        unit=_text(item, "unit"),
        value=_number(item, "value"),
        action=_text(item, "action"),
        description=_text(item, "description"),
        status=_text(item, "status"),
        created_at=parse_time(item.get("createdAt")),
    )


def parse_activity(raw: object) -> Activity:
    """An activity entry; the id is optional, the wording taken from the usual fields."""
    item = as_object(raw, what=N_("an activity entry"))
    raw_id = item.get("id")
    return Activity(
        id=None if raw_id is None else read_id(raw_id, what=N_("an activity id")),
        action=_text(item, "action", "type", "event", "activity"),
        description=_text(item, "description", "message", "details"),
        created_at=parse_time(item.get("createdAt") or item.get("date")),
    )
