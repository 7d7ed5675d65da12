"""The provider interface: typed requests and results, capabilities, the delivery state.

Every adapter implements :class:`Provider` and declares what it can do as data, in its class's
:class:`Capabilities` (as apprise does): the services ask, they never name a vendor. Its other
fixed facts (channels, text limits, the credential fields it needs) live in a
:class:`~providers.registry.ProviderSpec`, not in literals scattered through the bot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

from i18n import N_


class DeliveryState(StrEnum):
    """Where a message is, across every provider.

    ``queued`` is written before the provider is called; ``unknown`` means the request may have
    reached the provider but its answer was lost, so the message must not be resent blindly.
    """

    QUEUED = "queued"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    ABORTED = "aborted"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        """Whether nothing more is expected (``delivered`` may still become ``read``)."""
        return self in _FINAL

    @property
    def is_failure(self) -> bool:
        """Whether the message did not reach its recipient."""
        return self in _FAILURES

    def can_become(self, new: DeliveryState) -> bool:
        """Whether a receipt saying ``new`` may replace this state.

        States only move forward: duplicates and late, out-of-order receipts are ignored.
        """
        if new == self:
            return False
        if self in _FAILURES or self == DeliveryState.READ:
            return False
        if self == DeliveryState.DELIVERED:
            return new == DeliveryState.READ
        if new in _FAILURES:
            return True
        return _RANK[new] > _RANK[self]


_FAILURES = frozenset(
    {
        DeliveryState.FAILED,
        DeliveryState.ABORTED,
        DeliveryState.UNDELIVERED,
        DeliveryState.EXPIRED,
    }
)
_FINAL = _FAILURES | {DeliveryState.DELIVERED, DeliveryState.READ}
_RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.UNKNOWN: 1,
    DeliveryState.ACCEPTED: 2,
    DeliveryState.SENT: 3,
    DeliveryState.DELIVERED: 4,
    DeliveryState.READ: 5,
}


@dataclass(frozen=True, slots=True)
class Media:
    """A file to send with a message (WhatsApp media)."""

    file_name: str
    content: bytes
    mime_type: str | None = None


# OutgoingMessage option of a provider with ``Capabilities.schedule``: an ISO time (UTC) at which
# the provider sends the message itself.
SCHEDULED_AT = "scheduled_at"
# OutgoingMessage option on a channel whose ``ChannelSpec.subject`` is on (e-mail): the subject
# line; ``text`` is then the body.
SUBJECT = "subject"
# OutgoingMessage option in webhook mode: the URL where the provider may post this message's
# status changes (read by the ``("<provider>", "status")`` receipt reader of the registry).
STATUS_CALLBACK = "status_callback_url"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one recipient (or one provider-side group) on one channel."""

    channel: str
    to: str
    text: str
    media: Media | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider said when it took a message."""

    ref: str
    state: DeliveryState
    detail: str = ""
    provider_status: str = ""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A delivery receipt, from a poll or a callback."""

    ref: str
    state: DeliveryState
    provider_status: str
    detail: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """One balance or credit line of an account."""

    name: str
    amount: float
    unit: str = "credits"
    expires: date | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Who the provider says the credentials belong to (shown after /connect)."""

    account: str
    details: str = ""


@dataclass(frozen=True, slots=True)
class PhoneCheckResult:
    """One checked number: digits only, whether it is on WhatsApp (None: unknown), raw answer."""

    number: str
    on_whatsapp: bool | None
    status: str


@dataclass(frozen=True, slots=True)
class CredentialField:
    """One ``k=v`` credential key a provider takes."""

    key: str
    prompt: str
    required: bool = True
    secret: bool = True


class BalanceKind(StrEnum):
    """What ``/balance`` can show for a provider."""

    CREDIT = "credit"  # balances / credits (``Provider.balances``)
    TRANSACTIONS = "transactions"  # no balance endpoint: recent transactions and their cost
    NONE = "none"  # nothing: /balance says so plainly


@dataclass(frozen=True, slots=True)
class Cost:
    """What one message costs on a channel, where the provider documents it.

    ``balance`` names the :class:`Balance` line (``Provider.balances``) that pays for it, so a
    large send can be compared with what is left. A text costs ``per_message`` for every
    ``text_chunk`` characters begun (0: whatever its length); a file costs ``per_media``;
    ``per_segment`` counts each SMS part as a message.
    """

    balance: str
    # Marked for translation here, translated where a chat is shown the estimate.
    unit: str = N_("credits")
    per_message: float = 1.0
    text_chunk: int = 0
    per_media: float | None = None
    per_segment: bool = False


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do, declared on its class; services branch on these, not on names.

    ``recipients_per_request`` above 1 means :meth:`BulkProvider.send_many` takes that many
    recipients in one request (the sender chunks by it); 1 means one request per recipient.
    ``recipients_per_channel`` overrides it for channels whose API differs (a bulk endpoint
    beside a one-recipient one); :meth:`per_request` reads the two.
    """

    recipients_per_request: int = 1
    recipients_per_channel: Mapping[str, int] = field(default_factory=dict)
    schedule: bool = False  # hands a future send to the provider (survives the bot being down)
    reschedule: bool = False  # moves such a send at the provider
    cancel: bool = False  # cancels such a send at the provider
    number_check: bool = False  # "is this number on WhatsApp?" (results by callback)
    senders: bool = False  # lists sender identities a chat picks from (/senders)
    address_book: bool = False  # contacts and groups at the provider (/contacts, /groups)
    activity: bool = False  # the account's recent activity (/activity)
    balance: BalanceKind = BalanceKind.CREDIT
    multicast: bool = False  # template broadcasts to an audience (/multicast)
    find_lost: bool = False  # finds a send whose answer was lost (``SendFinder``)
    # Channel → its documented price (to estimate a large send's cost before it goes out).
    costs: Mapping[str, Cost] = field(default_factory=dict)

    def per_request(self, channel: str) -> int:
        """How many recipients one request takes on ``channel``."""
        return self.recipients_per_channel.get(channel, self.recipients_per_request)

    def cost(self, channel: str) -> Cost | None:
        """The documented price of one message on ``channel``; None when it is not stated."""
        return self.costs.get(channel)


class Provider(Protocol):
    """What every provider adapter offers the services.

    One instance per connected account (see :class:`providers.registry.AdapterPool`): it may
    keep per-account state (tokens, sender ids) and is closed at shutdown.
    """

    capabilities: ClassVar[Capabilities]

    async def verify(self) -> AccountInfo:
        """Check the credentials against the provider; raise ``AuthError`` when refused."""
        ...

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Hand one message to the provider."""
        ...

    async def status(self, ref: str, *, channel: str) -> StatusReport:
        """Ask the provider where a message is."""
        ...

    async def balances(self) -> list[Balance]:
        """The account's balances and credits."""
        ...

    async def aclose(self) -> None:
        """Let go of per-account state (the shared HTTP client is not this adapter's)."""
        ...


@dataclass(frozen=True, slots=True)
class SenderIdentity:
    """One identity a chat can send from (a sender ID, a number).

    ``stores`` is what picking it saves among the chat's credentials for this provider (for
    example ``{"sender_id": "ACME"}``), so the choice travels with the account's credentials.
    """

    value: str  # what the chat sees and what :meth:`SenderDirectory.sender_id` returns
    stores: Mapping[str, str]
    status: str = ""  # the provider's word (approved, pending …)
    usable: bool = True


@runtime_checkable
class SenderDirectory(Provider, Protocol):
    """An adapter whose account has several sender identities (``capabilities.senders``)."""

    async def senders(self) -> list[SenderIdentity]:
        """The account's sender identities."""
        ...

    async def sender_id(self) -> str:
        """The identity a send uses now (the chosen one, else the provider's default).

        Empty when none is chosen and the provider has no single default (the chat must pick
        one with /senders before sending).
        """
        ...


@runtime_checkable
class PhoneChecker(Protocol):
    """An adapter whose ``capabilities.number_check`` is on: results come later by callback.

    Its batch size, number rules and callback reader are in :mod:`providers.number_checks`.
    """

    async def phone_check(self, numbers: Sequence[str], *, callback_url: str | None) -> None:
        """Submit one batch of numbers."""
        ...


@runtime_checkable
class BulkProvider(Provider, Protocol):
    """An adapter whose API takes many recipients in one request."""

    async def send_many(
        self, message: OutgoingMessage, recipients: Sequence[str]
    ) -> list[SendResult]:
        """Send ``message`` to at most ``capabilities.recipients_per_request`` recipients.

        One request; one result per recipient, in order (a provider message covering them all
        gives each the same ``ref``). ``message.to`` is ignored.
        """
        ...


@dataclass(frozen=True, slots=True)
class Contact:
    """An address-book contact at the provider (``number`` as the provider keeps it)."""

    id: int
    name: str
    number: str


@dataclass(frozen=True, slots=True)
class ContactGroup:
    """A contact group at the provider; ``size`` when the provider says it."""

    id: int
    name: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class ContactsPage:
    """One page of an address book; ``total`` when the provider says it."""

    items: tuple[Contact, ...]
    page: int
    has_more: bool
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One entry of an account's activity log, as the provider words it."""

    at: datetime | None
    action: str
    description: str


@runtime_checkable
class AddressBook(Provider, Protocol):
    """An adapter with contacts and groups at the provider (``capabilities.address_book``)."""

    async def contacts(self, page: int) -> ContactsPage:
        """One page of contacts (pages start at 1)."""
        ...

    async def add_contact(self, name: str, number: str) -> Contact | None:
        """Add a contact (``number`` in E.164); the new contact when the provider returns it."""
        ...

    async def delete_contacts(self, ids: Sequence[int]) -> None:
        """Delete contacts by id; an unknown id is the provider's error."""
        ...

    async def groups(self) -> list[ContactGroup]:
        """The contact groups."""
        ...


@runtime_checkable
class ActivityLog(Provider, Protocol):
    """An adapter that reports the account's recent activity (``capabilities.activity``)."""

    async def activity(self) -> list[ActivityEntry]:
        """Recent activity, in the provider's order."""
        ...


@runtime_checkable
class ReschedulingProvider(Provider, Protocol):
    """An adapter with ``capabilities.reschedule``: it moves a message it holds for later."""

    async def reschedule(self, ref: str, when: datetime) -> None:
        """Move the message ``ref`` (handed over with ``SCHEDULED_AT``) to ``when``."""
        ...


@dataclass(frozen=True, slots=True)
class MulticastRequest:
    """A template broadcast to an audience the provider resolves (``capabilities.multicast``).

    ``audience`` is the provider's filter type (e.g. ``all-participants``) and ``audience_value``
    its optional argument; ``data`` fills the template's placeholders.
    """

    template_id: str
    audience: str
    audience_value: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Multicaster(Provider, Protocol):
    """An adapter with ``capabilities.multicast``: one request reaches a whole audience.

    The result's ``ref`` is polled with :meth:`Provider.status` on the channel named by the
    registry's ``ChannelSpec.command == "multicast"``.
    """

    async def multicast(self, request: MulticastRequest) -> SendResult:
        """Start one multicast."""
        ...


@dataclass(frozen=True, slots=True)
class LostSend:
    """A send whose answer was lost (``unknown``): what the bot can look it up by.

    ``recipients`` are as the adapter took them; ``stored_at`` is when the bot stored the
    message, just before its request, so the provider's copy is not older.
    """

    channel: str
    recipients: tuple[str, ...]
    text: str
    stored_at: datetime


class Lookup(StrEnum):
    """What a provider's records say about a lost send."""

    FOUND = "found"  # exactly one provider message matches: ``report`` is its state
    ABSENT = "absent"  # the provider has no such message: it was not sent
    AMBIGUOUS = "ambiguous"  # several could be it: nothing can be concluded
    CANNOT_ASK = "cannot_ask"  # the provider has no look-up for this channel


@dataclass(frozen=True, slots=True)
class LostSendAnswer:
    """The answer of :meth:`SendFinder.find_sent`."""

    lookup: Lookup
    report: StatusReport | None = None
    detail: str = ""


@runtime_checkable
class SendFinder(Provider, Protocol):
    """An adapter with ``capabilities.find_lost``: it can look up a send whose answer was lost.

    Used only to settle ``unknown`` messages (never to resend): found → its state, absent →
    failed, ambiguous → left as it is, saying so.
    """

    async def find_sent(self, lost: LostSend) -> LostSendAnswer:
        """Look for the provider's message matching ``lost``."""
        ...
