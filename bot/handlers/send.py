"""/send [<route>] <to>[,<to>...] <text>: send now and post a status card."""

from __future__ import annotations

from collections.abc import Callable

from telegram import Update

from bot.cards import post_card
from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.common import message_of, sender_name
from bot.parsing import command_body, take_recipients, take_token
from bot.services.chats import route_from
from bot.services.errors import BadInput
from bot.services.phones import normalise
from bot.services.sending import SendRequest
from providers.registry import looks_like_route
from storage.models import Chat, Role

USAGE = "/send [&lt;route&gt;] &lt;to&gt;[,&lt;to&gt;…] &lt;text&gt;"


def number_complete(country: str | None) -> Callable[[str], bool]:
    """A predicate telling whether typed digits already form a valid number."""

    def complete(text: str) -> bool:
        try:
            normalise(text, country=country)
        except BadInput:
            return False
        return True

    return complete


def parse_send(chat: Chat, body: str) -> tuple[str, list[str], str]:
    """Split ``[<route>] <to>[,<to>...] <text>`` into route text, recipients and message."""
    first, rest = take_token(body)
    if not first:
        raise BadInput(f"Usage: {USAGE}")
    route_text = ""
    if looks_like_route(first):
        route_text, body = first, rest
    recipients, text = take_recipients(body, number_complete(chat.country))
    if not recipients:
        raise BadInput(f"No recipient given. Usage: {USAGE}")
    return route_text, recipients, text


async def send(update: Update, context: BotContext) -> None:
    """/send: store, send, and answer with the status card."""
    message = message_of(update)
    chat = await chat_of(update, context)
    route_text, recipients, text = parse_send(chat, command_body(message.text or ""))
    if route_text:
        route = route_from(route_text)
    else:
        route = await context.services.chats.default_route(chat)
    if not text.strip():
        raise BadInput(f"The message text is empty. Usage: {USAGE}")
    user = update.effective_user
    assert user is not None
    outcome = await context.services.sender.send(
        SendRequest(
            chat_id=chat.id,
            actor_id=user.id,
            actor_name=sender_name(update),
            route=route,
            recipients=recipients,
            text=text,
            origin=f"tg:{chat.id}:{message.message_id}",
            country=chat.country,
        )
    )
    note = "This send was already processed; nothing was sent again." if outcome.replayed else ""
    await post_card(context.bot, context.services, outcome, note=note)


COMMANDS = (
    Command("send", "[<route>] <to>[,<to>…] <text>", "send a message now", Role.OPERATOR, send),
)
