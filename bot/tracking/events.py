"""What the send path tells the tracker (kept free of telegram so services may name it)."""

from __future__ import annotations

from typing import Protocol


class CardEvents(Protocol):
    """Told when a status card is posted: the chat's pacing and the card's edit window count it."""

    def card_posted(self, chat_id: int, batch_id: int) -> None:
        """A card for ``batch_id`` was just posted in ``chat_id``."""
        ...
