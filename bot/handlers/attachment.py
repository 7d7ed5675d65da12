"""The file a /send replies to: which Telegram object to take, and downloading it.

Photos come in several sizes (all JPEG): the largest one the provider accepts is taken, so a
photo whose original is over the route's JPEG limit still goes out in the best size that fits,
and the card says so. Documents and videos are taken as they are. What the file is allowed to
be is the route's channel's ``media_limits``, judged by :mod:`bot.services.media` before the
download when Telegram reported the size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from telegram import Bot, Message, PhotoSize
from telegram.error import TelegramError

from bot.services.errors import BadInput
from bot.services.gate_payload import MediaRef
from bot.services.media import MediaPlan, accept_media, allowed_summary, plan_media, size_text
from i18n import N_, _
from providers.base import Media
from providers.registry import Route

_UNSENDABLE = {
    "voice": N_("a voice message"),
    "audio": N_("an audio file"),
    "sticker": N_("a sticker"),
    "video_note": N_("a video message"),
}
# What a file is called in a reply; ``what`` travels as one of these words and is shown
# translated with ``_(what)``.
KINDS = (N_("photo"), N_("document"), N_("video"), N_("file"))


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file in a replied-to message, judged sendable by its description."""

    file_id: str
    plan: MediaPlan
    what: str
    note: str = ""


def pick_photo(sizes: Sequence[PhotoSize], route: Route) -> tuple[PhotoSize, str]:
    """The largest size within the route's JPEG limit (else the largest), and a note if smaller."""
    limit = route.channel.media_limits.get("jpg", 0)
    ordered = sorted(sizes, key=lambda p: (p.width * p.height, p.file_size or 0))
    largest = ordered[-1]
    fitting = [p for p in ordered if p.file_size is None or p.file_size <= limit]
    if not fitting or fitting[-1] is largest:
        return largest, ""
    chosen = fitting[-1]
    note = _(
        "📷 Sent the {width}×{height} version of the photo: the original "
        "{full_width}×{full_height} is {size}, over {provider}'s {limit}."
    ).format(
        width=chosen.width,
        height=chosen.height,
        full_width=largest.width,
        full_height=largest.height,
        size=size_text(largest.file_size or 0),
        provider=route.provider.display,
        limit=size_text(limit),
    )
    return chosen, note


def attachment_of(message: Message | None, route: Route) -> Attachment | None:
    """The sendable file of a replied-to message; None when it holds no file at all.

    Args:
        message: the replied-to message, if any.
        route: whose channel's ``media_limits`` (and provider name) judge the file.

    Raises:
        BadInput: when it holds a file the route's provider cannot take (type or known size).

    """
    if message is None:
        return None
    limits = route.channel.media_limits
    if message.photo:
        photo, note = pick_photo(message.photo, route)
        plan = plan_media(
            file_name=f"photo_{photo.file_unique_id}.jpg",
            mime_type="image/jpeg",
            size=photo.file_size,
            limits=limits,
            what="photo",
        )
        return Attachment(photo.file_id, plan, "photo", note)
    if message.document is not None:
        doc = message.document
        plan = plan_media(
            file_name=doc.file_name,
            mime_type=doc.mime_type,
            size=doc.file_size,
            limits=limits,
            what="document",
        )
        return Attachment(doc.file_id, plan, "document")
    if message.video is not None:
        video = message.video
        plan = plan_media(
            file_name=video.file_name,
            mime_type=video.mime_type,
            size=video.file_size,
            limits=limits,
            what="video",
        )
        return Attachment(video.file_id, plan, "video")
    for attr, label in _UNSENDABLE.items():
        if getattr(message, attr, None) is not None:
            raise BadInput(
                _(
                    "That message is {what}, which cannot go out as WhatsApp media. Reply to a "
                    "photo or document instead ({allowed}). Nothing was sent."
                ).format(what=_(label), allowed=allowed_summary(limits))
            )
    return None


async def download(bot: Bot, attachment: Attachment) -> bytes:
    """The file's bytes from Telegram.

    Raises:
        BadInput: when Telegram will not hand the file out.

    """
    return await download_file(bot, attachment.file_id, attachment.what)


async def download_file(bot: Bot, file_id: str, what: str, *, outcome: str = "sent") -> bytes:
    """A file's bytes from Telegram; ``BadInput`` naming ``what`` when it will not hand it out."""
    try:
        file = await bot.get_file(file_id)
        data = await file.download_as_bytearray()
    except TelegramError as exc:
        text = (
            _("I could not download the {what} from Telegram ({error}). Nothing was stored.")
            if outcome == "stored"
            else _("I could not download the {what} from Telegram ({error}). Nothing was sent.")
        )
        raise BadInput(text.format(what=_(what), error=escape(exc.message))) from exc
    return bytes(data)


async def download_ref(bot: Bot, ref: MediaRef) -> Media:
    """The file a held send kept the id of (a confirmation or an approval), checked again."""
    plan = MediaPlan(ref.file_name, ref.extension, ref.limit, ref.mime_type)
    return accept_media(plan, await download_file(bot, ref.file_id, ref.what))
