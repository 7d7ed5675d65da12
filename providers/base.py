"""The provider interface: typed requests and results, and the project-wide delivery state.

Every adapter implements :class:`Provider`. Its fixed facts (channels, text limits, the
credential fields it needs) live in a :class:`ProviderSpec` in :mod:`providers.registry`, not in
literals scattered through the bot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


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
class CredentialField:
    """One ``k=v`` credential key a provider takes."""

    key: str
    prompt: str
    required: bool = True
    secret: bool = True


class Provider(Protocol):
    """What every provider adapter offers the services."""

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
