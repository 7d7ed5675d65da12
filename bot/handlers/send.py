"""/send [<route>] [--otp] <to>[,<to>...] <text>: send now and post a status card.

Recipients may name a recipient list (``list:<name>``) and the text may be a template
(``template:<name> [key=value …]``): :mod:`bot.services.addressing` expands and fills them,
so each recipient may get a text of their own.

As a reply to a photo or document, the file goes out as WhatsApp media with the text as its
caption. ``--otp`` (after the route) sends on the channel's OTP route, where the channel lists
it among its options. An address-book group whose name has spaces is quoted:
``/send <provider>:<group channel> "Sales Team" Hello``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from html import escape

from telegram import Update

from bot.cards import post_card
from bot.commands import Command, chat_of
from bot.context import BotContext
from bot.handlers.approvals import requester_role, show_card
from bot.handlers.attachment import Attachment, attachment_of, download
from bot.handlers.common import message_of, reply, sender_name
from bot.handlers.confirm import ask, tell_held
from bot.parsing import command_body, take_recipients, take_token
from bot.services.addressing import is_list, is_template
from bot.services.approvals import Waiting
from bot.services.channels import channel_options, require_channel_credentials
from bot.services.chats import route_from
from bot.services.errors import BadInput, echo
from bot.services.gate import Held, Plan
from bot.services.gate_payload import MediaRef
from bot.services.media import accept_media
from bot.services.phones import normalise
from bot.services.segments import preview, preview_personal, sms_segments
from bot.services.sending import SendRequest, recipients_for, validate_text
from i18n import N_, _
from providers.registry import Route, looks_like_route, media_route
from storage.models import Chat, Role

USAGE = N_(
    "/send [now] [&lt;route&gt;] [--otp] &lt;to&gt;[,&lt;to&gt;…] &lt;text&gt; "
    "(or template:&lt;name&gt; [key=value …] for the text)"
)
QUOTES = {'"': '"', "“": "”"}
NOW = "now"


def number_complete(country: str | None) -> Callable[[str], bool]:
    """A predicate telling whether typed digits already form a valid number."""

    def complete(text: str) -> bool:
        try:
            normalise(text, country=country)
        except BadInput:
            return False
        return True

    return complete


@dataclass(frozen=True, slots=True)
class SendArgs:
    """``[<route>] [--flag ...] <to>[,<to>...] <text>`` taken apart."""

    route_text: str
    flags: tuple[str, ...]
    recipients: list[str]
    text: str


def take_quoted(body: str) -> tuple[str, str] | None:
    """A leading ``"quoted name"`` (an address-book group with spaces) and the rest."""
    if not body or body[0] not in QUOTES:
        return None
    end = body.find(QUOTES[body[0]], 1)
    if end < 0:
        raise BadInput(_("A quoted recipient has no closing quote."))
    return body[1:end].strip(), body[end + 1 :].lstrip()


def parse_send_args(chat: Chat, body: str) -> SendArgs:
    """Split a /send body; flags such as ``--otp`` follow the route."""
    first, rest = take_token(body)
    if not first:
        raise BadInput(_("Usage: {usage}").format(usage=_(USAGE)))
    route_text = ""
    if looks_like_route(first) and not is_list(first) and not is_template(first):
        route_text, body = first, rest
    flags: list[str] = []
    token, rest = take_token(body)
    while token.startswith("--"):
        flags.append(token)
        body = rest
        token, rest = take_token(body)
    if is_template(body):
        raise BadInput(
            _("Who gets it? The recipients go before template:…. Usage: {usage}").format(
                usage=_(USAGE)
            )
        )
    quoted = take_quoted(body)
    if quoted is not None:
        recipients, text = ([quoted[0]] if quoted[0] else []), quoted[1]
    else:
        recipients, text = take_recipients(body, number_complete(chat.country))
    if not recipients:
        raise BadInput(_("No recipient given. Usage: {usage}").format(usage=_(USAGE)))
    return SendArgs(route_text, tuple(flags), recipients, text)


def take_now(body: str) -> tuple[bool, str]:
    """``now`` at the front of a /send body (send inside quiet hours), and the rest."""
    first, rest = take_token(body)
    if first.lower() == NOW:
        return True, rest
    return False, body


def media_ref(attachment: Attachment) -> MediaRef:
    """What a confirmation keeps of a file, to download it when Send is pressed."""
    plan = attachment.plan
    return MediaRef(
        attachment.file_id,
        plan.file_name,
        plan.extension,
        plan.limit,
        plan.mime_type,
        attachment.what,
        attachment.note,
    )


def parse_send(chat: Chat, body: str) -> tuple[str, list[str], str]:
    """Split ``[<route>] <to>[,<to>...] <text>`` into route text, recipients and message.

    For callers that keep no send options (/schedule): a ``--flag`` is refused, not dropped.
    """
    args = parse_send_args(chat, body)
    if args.flags:
        raise BadInput(
            _("Options such as {option} work with /send only.").format(option=echo(args.flags[0]))
        )
    return args.route_text, args.recipients, args.text


async def send(update: Update, context: BotContext) -> None:
    """/send: store, send, and answer with the status card.

    Replying to a photo or document sends it as WhatsApp media (the text is its caption).
    On SMS routes the segment count is shown before the provider is called.
    """
    message = message_of(update)
    chat = await chat_of(update, context)
    now, body = take_now(command_body(message.text or ""))
    args = parse_send_args(chat, body)
    fallbacks: tuple[Route, ...] = ()
    if args.route_text:
        route = route_from(args.route_text)
    else:  # the chat's default, with its failover routes
        route, *rest = await context.services.chats.default_chain(chat)
        fallbacks = tuple(rest)
    options = channel_options(route, args.flags)
    # A file on a route without media is judged by the route that could carry it, which
    # the refusal then names.
    file_route = route if route.channel.media else (media_route() or route)
    attachment = attachment_of(message.reply_to_message, file_route)
    if attachment is not None and not route.channel.media:
        raise BadInput(
            _(
                "{route} cannot carry files. Reply with /send {file_route} &lt;number&gt; to "
                "send this {what} on WhatsApp."
            ).format(route=route, file_route=file_route, what=_(attachment.what))
        )
    if attachment is None and not args.text.strip():
        raise BadInput(_("The message text is empty. Usage: {usage}").format(usage=_(USAGE)))
    services = context.services
    # list:<name> recipients expanded, template:<name> filled (a plain send passes through).
    sending = await services.addressing.prepare(chat, route, args.recipients, args.text)
    recipients: list[str] = []
    if route.channel.sms or attachment is not None:
        # Refuse what can be refused before the preview and the download; a plain send
        # leaves these checks to Sender.send, which makes them anyway.
        recipients = recipients_for(route, sending.recipients, chat.country)
        if sending.texts is None and sending.text.strip():
            validate_text(route, sending.text, None)
        await require_channel_credentials(services.accounts, chat.id, route)
    if route.channel.sms and sending.texts is not None:
        await reply(update, escape(preview_personal(sending.recipients, sending.texts)))
    elif route.channel.sms:
        info = sms_segments(sending.text.strip())
        group = not route.channel.phone_recipients
        await reply(
            update,
            escape(preview(info, sending.text.strip(), recipients=len(recipients), group=group)),
        )
    user = update.effective_user
    assert user is not None
    request = SendRequest(
        chat_id=chat.id,
        actor_id=user.id,
        actor_name=sender_name(update),
        route=route,
        recipients=sending.recipients,
        text=sending.text,
        texts=sending.texts,
        origin=f"tg:{chat.id}:{message.message_id}",
        country=chat.country,
        options=options or None,
        fallbacks=fallbacks,
        card_note=attachment.note if attachment is not None else "",
    )
    # Large sends wait for a Send press; quiet hours hold a send (or /send now confirms it).
    verdict = await services.gate.check_send(
        chat,
        request,
        role=await requester_role(update, context, chat),
        now=now,
        media=media_ref(attachment) if attachment else None,
    )
    if isinstance(verdict, Waiting):
        await show_card(context.bot, services, verdict)
        return
    if isinstance(verdict, Plan):
        await ask(update, verdict)
        return
    if isinstance(verdict, Held):
        await tell_held(update, services, verdict)
        return
    if attachment is not None:
        media = accept_media(attachment.plan, await download(context.bot, attachment))
        request = replace(request, media=media)
    outcome = await services.sender.send(request)
    # The card was owed since the batch was stored; it is posted now unless it is out already
    # (a replay), and later by the delivery loop if Telegram cannot take it now. A replay (the
    # inbox after a crash, or Telegram sending the message again) says nothing more: the chat
    # sees the one card, never a second message that reads like another send. The note above
    # a fresh card (a file's, the stoplist's skipped recipients) is the one stored with it.
    await post_card(services, outcome, note="" if outcome.replayed else outcome.card_note)


COMMANDS = (
    Command(
        "send",
        "[now] [<route>] [--otp] <to>[,<to>…] <text>|template:<name> [key=value …]",
        N_(
            "send now (to numbers or list:<name>; --otp: SMS OTP route); reply to a "
            "photo/document to send it on WhatsApp; more than CONFIRM_ABOVE recipients ask "
            "for a Send press; now: send inside quiet hours (confirmed); above /approval an "
            "operator's send waits for an admin"
        ),
        Role.OPERATOR,
        send,
    ),
)
