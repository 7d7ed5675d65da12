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

from i18n import N_, _
from providers.base import DeliveryState

# Normalised word (lower case, ``_`` for spaces and hyphens) → (state, meaning). The meanings
# are stored in English and translated where a chat shows them (bot/render.py).
MESSAGE_STATES: Mapping[str, tuple[DeliveryState, str]] = MappingProxyType(
    {
        "created": (DeliveryState.ACCEPTED, N_("accepted by Parrotica")),
        "accepted": (DeliveryState.ACCEPTED, N_("accepted by Parrotica")),
        "pending": (DeliveryState.ACCEPTED, N_("waiting at Parrotica")),
        "queued": (DeliveryState.ACCEPTED, N_("queued at Parrotica")),
        "scheduled": (DeliveryState.ACCEPTED, N_("scheduled at Parrotica")),
        "processing": (DeliveryState.ACCEPTED, N_("being processed by Parrotica")),
        "in_progress": (DeliveryState.ACCEPTED, N_("being processed by Parrotica")),
        "sending": (DeliveryState.ACCEPTED, N_("being sent")),
        "sent": (DeliveryState.SENT, N_("sent to the operator")),
        "submitted": (DeliveryState.SENT, N_("sent to the operator")),
        "completed": (DeliveryState.SENT, N_("Parrotica finished sending")),
        "success": (DeliveryState.SENT, N_("Parrotica finished sending")),
        "successful": (DeliveryState.SENT, N_("Parrotica finished sending")),
        "delivered": (DeliveryState.DELIVERED, N_("delivered to the handset")),
        "undelivered": (DeliveryState.UNDELIVERED, N_("not delivered to the handset")),
        "failed": (DeliveryState.FAILED, N_("failed")),
        "fail": (DeliveryState.FAILED, N_("failed")),
        "error": (DeliveryState.FAILED, N_("failed")),
        "rejected": (DeliveryState.FAILED, N_("rejected")),
        "expired": (DeliveryState.EXPIRED, N_("expired before it could be delivered")),
        "cancelled": (DeliveryState.ABORTED, N_("cancelled, will not be sent")),
        "canceled": (DeliveryState.ABORTED, N_("cancelled, will not be sent")),
    }
)


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
    detail = (
        _("unrecognised Parrotica state {state!r}").format(state=raw)
        if raw.strip()
        else _("no state reported")
    )
    return StateReading(None, raw, detail)
