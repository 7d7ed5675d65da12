"""What the send path tells the tracker (kept free of telegram so services may name it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from storage.models import Message


class CardEvents(Protocol):
    """Told about new sends: their messages enter the poll schedule, their cards the pacing."""

    def messages_sent(self, messages: Sequence[Message]) -> None:
        """A send stored these messages (before its card is posted); no database round."""
        ...

    def card_posted(self, chat_id: int, batch_id: int) -> None:
        """A card for ``batch_id`` was just posted in ``chat_id``."""
        ...
