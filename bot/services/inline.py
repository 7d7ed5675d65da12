"""Inline mode: ``@bot <message id or number>`` finds the caller's messages in any chat.

Only messages of chats the caller belongs to are ever offered: their private chat with the
bot, and the groups they are known in (:meth:`storage.lookup.MessageLookup.chats_of_user`)
that Telegram confirms they are still a member of. That confirmation is asked through a
callable the handler passes in (this module never imports telegram); a group Telegram cannot
answer for counts as not belonging. Answers are kept for :data:`MEMBERSHIP_TTL`, because a
client sends an inline query on every keystroke.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from bot.services.errors import BadInput
from bot.services.integers import read_id, read_whole
from bot.services.phones import normalise
from bot.services.status import StatusReader
from i18n import _
from storage.lookup import PRIVATE, MessageLookup
from storage.models import Chat, Message, StatusEvent, may_be_row_id, utcnow

PAGE = 20  # results per answer (Telegram takes at most 50); more come by offset paging
MAX_OFFSET = 1000  # deeper than this nobody scrolls an inline list
MAX_QUERY = 64  # a message id or a phone number is far shorter
MEMBERSHIP_TTL = timedelta(seconds=60)
MEMBERSHIP_CACHE = 4096  # users whose chats are remembered
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]{6,}$")

# (chat id, user id) → whether Telegram says the user is a member of that chat now.
IsMember = Callable[[int, int], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Found:
    """One message offered as a result, with what its card shows."""

    message: Message
    history: list[StatusEvent]
    chat: Chat


@dataclass(frozen=True, slots=True)
class InlinePage:
    """One answer: the results, the offset of the next page ("" when none) and a hint.

    ``hint`` says why nothing was found (shown above the empty list); empty otherwise.
    """

    found: list[Found]
    next_offset: str = ""
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Query:
    """What an inline query asks for: a message id and/or a number, or nothing (latest)."""

    message_id: int | None = None
    number: str = ""

    @property
    def empty(self) -> bool:
        """Nothing typed: the latest messages."""
        return self.message_id is None and not self.number


def read_query(text: str) -> Query:
    """What the user typed after ``@bot``: an id (``12``, ``#12``), a number, or nothing.

    Digits alone may be either (``6281234567890`` is a number, ``12`` an id): both are
    tried. Anything else is refused with a hint.

    Raises:
        BadInput: neither a message id nor a phone number.

    """
    typed = " ".join(text.split())
    if not typed:
        return Query()
    if len(typed) > MAX_QUERY:
        raise BadInput(_("Type a message id (like 12) or a phone number."))
    ident = read_id(typed)
    number = typed if _PHONE_LIKE.match(typed) else ""
    if ident is not None and may_be_row_id(ident):
        return Query(message_id=ident, number=number)
    if number:
        return Query(number=number)
    if read_whole(typed.removeprefix("#")) is not None or typed.lstrip("#").isdigit():
        raise BadInput(_("No message has the id {id}.").format(id=escape(typed[:20])))
    raise BadInput(_("Type a message id (like 12) or a phone number."))


def recipient_forms(number: str, chats: list[Chat]) -> dict[str, list[int]]:
    """The stored forms of ``number`` → the chats where it reads so (each chat's /country).

    A number the chat cannot read (national without a /country, invalid) matches nothing
    there. Recipients are stored as bare digits; ``+`` forms are matched too.
    """
    forms: dict[str, list[int]] = {}
    for chat in chats:
        try:
            recipient = normalise(number, country=chat.country)
        except BadInput:
            continue
        for form in (recipient.digits, recipient.e164):
            forms.setdefault(form, []).append(chat.id)
    return forms


class InlineSearch:
    """The inline-mode use-cases; ``clock`` is injected so tests move time."""

    def __init__(
        self,
        lookup: MessageLookup,
        status: StatusReader,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._lookup = lookup
        self._status = status
        self.clock = clock
        self._chats: dict[int, tuple[datetime, list[Chat]]] = {}

    async def chats_of(self, user_id: int, is_member: IsMember) -> list[Chat]:
        """The chats whose messages ``user_id`` may see (cached for :data:`MEMBERSHIP_TTL`)."""
        now = self.clock()
        cached = self._chats.get(user_id)
        if cached is not None and now - cached[0] < MEMBERSHIP_TTL:
            return cached[1]
        known = await self._lookup.chats_of_user(user_id)
        # Asked together: the client waits for the answer, and each is a Telegram round trip.
        answers = await asyncio.gather(*(self._member(chat, user_id, is_member) for chat in known))
        chats = [chat for chat, member in zip(known, answers, strict=True) if member]
        if len(self._chats) >= MEMBERSHIP_CACHE:
            self._chats.clear()  # rare; the next queries ask Telegram again
        self._chats[user_id] = (now, chats)
        return chats

    @staticmethod
    async def _member(chat: Chat, user_id: int, is_member: IsMember) -> bool:
        return chat.kind == PRIVATE or await is_member(chat.id, user_id)

    async def search(
        self, user_id: int, text: str, offset: str, is_member: IsMember
    ) -> InlinePage:
        """One page of the caller's messages matching ``text``, newest first."""
        try:
            query = read_query(text)
        except BadInput as exc:
            return InlinePage([], hint=exc.message)
        start = read_whole(offset) if offset else 0
        if start is None or start > MAX_OFFSET:
            return InlinePage([])  # a made-up offset: the list simply ends
        chats = await self.chats_of(user_id, is_member)
        if not chats:
            return InlinePage([], hint=_("You have no messages yet: send one with /send."))
        by_id = {c.id: c for c in chats}
        messages = await self._lookup.find(
            list(by_id),
            message_id=query.message_id,
            recipients=recipient_forms(query.number, chats) if query.number else None,
            offset=start,
            limit=PAGE + 1,
        )
        more = len(messages) > PAGE
        messages = messages[:PAGE]
        histories = await self._lookup.histories([m.id for m in messages if m.id is not None])
        found = [Found(m, histories.get(m.id or 0, []), by_id[m.chat_id]) for m in messages]
        hint = (
            ""
            if found or start
            else _("No message of yours matches “{query}”.").format(query=escape(text.strip()))
        )
        return InlinePage(found, str(start + PAGE) if more else "", hint)

    async def visible(self, user_id: int, message_id: int, is_member: IsMember) -> Found:
        """One message the user may see (a press on an inline card), with its history.

        Raises:
            BadInput: no such message, or one of a chat the user does not belong to (the
                same answer for both, so ids of other chats cannot be probed).

        """
        chats = {c.id: c for c in await self.chats_of(user_id, is_member)}
        found = await self._lookup.find(list(chats), message_id=message_id, limit=1)
        if not found:
            raise BadInput(
                _(
                    "Message #{id} is not one you can see: it belongs to a chat you are not a "
                    "member of, or it no longer exists."
                ).format(id=message_id)
            )
        message = found[0]
        status = await self._status.message_status(message.chat_id, message_id, poll=False)
        return Found(status.message, status.history, chats[message.chat_id])
