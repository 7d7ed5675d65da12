"""What the send path tells the tracker (kept free of telegram so services may name it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from storage.models import Message

if TYPE_CHECKING:
    from bot.services.sending import SendOutcome


class CardEvents(Protocol):
    """Told about new sends: their messages enter the poll schedule, their cards get posted."""

    def messages_sent(self, messages: Sequence[Message]) -> None:
        """A send stored these messages (before its card is posted); no database round."""
        ...

    def card_posted(self, chat_id: int, batch_id: int) -> None:
        """A card for ``batch_id`` was just posted in ``chat_id``."""
        ...

    async def post_card(
        self, outcome: SendOutcome, *, note: str = "", reply_to: int | None = None
    ) -> int | None:
        """Post the card of a send now unless it has one; its message id (None: later)."""
        ...

    async def post_text(self, entry_id: int, chat_id: int) -> None:
        """Post an outbox text now (the loop tries again if Telegram cannot take it)."""
        ...
