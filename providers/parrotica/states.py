"""Parrotica message ``state``/``status`` words mapped to the project's delivery states.

The docs print only the placeholder ``"state": "state"``, so the words are *inferred* from
what SMS gateways commonly say. One Parrotica message covers all its recipients; their states
follow the message's. ``completed``/``success`` mean Parrotica finished *sending*, not that the
handsets confirmed delivery, so they map to ``sent`` (states only move forward; a later
``delivered`` still counts).

A word that is not in the table is kept verbatim as ``provider_status`` and maps to *no*
state (``StateReading.state is None``): the caller leaves the message where it is and can say
"Parrotica reports 'xyz'" instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from providers.base import DeliveryState

MESSAGE_STATES: Mapping[str, tuple[DeliveryState, str]] = MappingProxyType(
    {
        "created": (DeliveryState.ACCEPTED, "accepted by Parrotica"),
        "accepted": (DeliveryState.ACCEPTED, "accepted by Parrotica"),
        "pending": (DeliveryState.ACCEPTED, "waiting at Parrotica"),
        "queued": (DeliveryState.ACCEPTED, "queued at Parrotica"),
        "scheduled": (DeliveryState.ACCEPTED, "scheduled at Parrotica"),
        "processing": (DeliveryState.ACCEPTED, "being processed by Parrotica"),
        "in_progress": (DeliveryState.ACCEPTED, "being processed by Parrotica"),
        "sending": (DeliveryState.ACCEPTED, "being sent"),
        "sent": (DeliveryState.SENT, "sent to the operator"),
        "submitted": (DeliveryState.SENT, "sent to the operator"),
        "completed": (DeliveryState.SENT, "Parrotica finished sending"),
        "success": (DeliveryState.SENT, "Parrotica finished sending"),
        "successful": (DeliveryState.SENT, "Parrotica finished sending"),
        "delivered": (DeliveryState.DELIVERED, "delivered to the handset"),
        "undelivered": (DeliveryState.UNDELIVERED, "not delivered to the handset"),
        "failed": (DeliveryState.FAILED, "failed"),
        "fail": (DeliveryState.FAILED, "failed"),
        "error": (DeliveryState.FAILED, "failed"),
        "rejected": (DeliveryState.FAILED, "rejected"),
        "expired": (DeliveryState.EXPIRED, "expired before it could be delivered"),
        "cancelled": (DeliveryState.ABORTED, "cancelled, will not be sent"),
        "canceled": (DeliveryState.ABORTED, "cancelled, will not be sent"),
    }
)
"""Normalised word (lower case, ``_`` for spaces and hyphens) → (state, meaning)."""


@dataclass(frozen=True, slots=True)
class StateReading:
    """What a message's ``state``/``status`` words say.

    ``state`` is ``None`` for a word the table does not know: no state change.
    ``provider_status`` is the word as Parrotica wrote it, unchanged.
    """

    state: DeliveryState | None
    provider_status: str
    detail: str

    @property
    def known(self) -> bool:
        """Whether the word is in :data:`MESSAGE_STATES`."""
        return self.state is not None


def normalise(word: str) -> str:
    """``" In-Progress "`` → ``"in_progress"``: the table's key form."""
    return "_".join(word.strip().lower().replace("-", " ").split())


def read_state(state: str, status: str = "") -> StateReading:
    """Map a message's ``state`` and ``status`` words to a :class:`StateReading`.

    ``state`` is asked first; ``status`` only when ``state`` is empty or unknown. When neither
    is known, the first non-empty word is kept verbatim.
    """
    for word in (state, status):
        entry = MESSAGE_STATES.get(normalise(word))
        if entry is not None:
            return StateReading(entry[0], word, entry[1])
    raw = state if state.strip() else status
    detail = f"unrecognised Parrotica state {raw!r}" if raw.strip() else "no state reported"
    return StateReading(None, raw, detail)
