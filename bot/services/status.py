"""Reading delivery states: /status, /history and an on-demand poll of the provider."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.accounts import Accounts
from bot.services.errors import BadInput
from i18n import _
from providers.base import DeliveryState
from providers.errors import ProviderError
from providers.registry import REGISTRY
from storage.messages import StateChange
from storage.models import Message, StatusEvent
from storage.repo import Repository


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """A message with its history, and a note when the provider could not be asked."""

    message: Message
    history: list[StatusEvent]
    note: str = ""


class StatusReader:
    """Status use-cases."""

    def __init__(self, repo: Repository, accounts: Accounts) -> None:
        self._repo = repo
        self._accounts = accounts

    async def message_status(self, chat_id: int, message_id: int, *, poll: bool) -> MessageStatus:
        """One message of this chat, asking the provider first when ``poll`` and it is open.

        Raises:
            BadInput: when the chat has no message with that id.

        """
        message = await self._repo.messages.get_message(chat_id, message_id)
        if message is None:
            raise BadInput(_("This chat has no message #{id}.").format(id=message_id))
        note = ""
        if poll and message.provider_ref and not DeliveryState(message.state).is_final:
            note = await self._poll(message)
            refreshed = await self._repo.messages.get_message(chat_id, message_id)
            message = refreshed or message
        assert message.id is not None
        return MessageStatus(message, await self._repo.messages.history(message.id), note)

    async def _poll(self, message: Message) -> str:
        spec = REGISTRY.get(message.provider)
        if spec is None or message.provider_ref is None or message.id is None:
            return ""
        try:
            adapter = await self._accounts.adapter(message.chat_id, spec)
            report = await adapter.status(message.provider_ref, channel=message.channel)
        except ProviderError as exc:
            return _("Could not ask {provider} just now: {reason}").format(
                provider=spec.display, reason=exc.message
            )
        await self._repo.messages.apply_changes(
            [
                StateChange(
                    message_id=message.id,
                    state=report.state,
                    source="poll",
                    provider_status=report.provider_status,
                    detail=report.detail,
                )
            ]
        )
        return ""

    async def only_message(self, chat_id: int, batch_id: int) -> MessageStatus:
        """The first (for a one-recipient send: the only) message of a send, with its history.

        Raises:
            BadInput: when the send has no message in this chat.

        """
        messages = await self._repo.messages.of_batch(batch_id, limit=1)
        if not messages or messages[0].id is None or messages[0].chat_id != chat_id:
            raise BadInput(_("Send {id} has no message in this chat.").format(id=batch_id))
        return await self.message_status(chat_id, messages[0].id, poll=False)

    async def check_batch(self, chat_id: int, batch_id: int) -> None:
        """Refuse a send id that is not this chat's (a card button from elsewhere).

        Raises:
            BadInput: when the send does not exist or belongs to another chat.

        """
        batch = await self._repo.messages.batch(batch_id)
        if batch is None or batch.chat_id != chat_id:
            raise BadInput(_("Send {id} does not belong to this chat.").format(id=batch_id))

    async def latest(self, chat_id: int, limit: int) -> list[Message]:
        """The chat's latest messages, newest first."""
        return await self._repo.messages.latest(chat_id, limit)
