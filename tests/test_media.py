"""WhatsApp media from chat attachments.

What is allowed, refusals before any download or provider call, and the files NusaSMS receives.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from bot.services.errors import BadInput
from bot.services.media import accept_media, allowed_summary, plan_media, size_text
from providers.registry import parse_route
from tests.conftest import USER, Bot
from tests.fakes.telegram import document_message, feed, photo_message, private_message
from tests.nusasms_support import connect_sms, stored_messages

KB = 1024
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
PDF = b"%PDF-1.7\n" + b"x" * 60
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 60
WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 60
WA = parse_route("nusasms:wa").channel.media_limits


# -- the rules, unit by unit -------------------------------------------------------------------


def test_allowed_types_and_sizes_are_the_documented_ones() -> None:
    assert allowed_summary(WA) == "jpg, jpeg, png, pdf up to 512 KB; mp4, webm up to 1 MB"
    assert (
        plan_media(file_name="a.JPG", mime_type=None, size=512 * KB, limits=WA).limit == 512 * KB
    )
    assert (
        plan_media(file_name="a.webm", mime_type=None, size=1024 * KB, limits=WA).extension
        == "webm"
    )
    assert (
        plan_media(file_name=None, mime_type="video/mp4", size=None, limits=WA).file_name
        == "file.mp4"
    )
    assert size_text(700 * KB) == "700 KB"
    assert size_text(1536 * KB) == "1.5 MB"


@pytest.mark.parametrize(
    ("name", "mime", "size", "reason"),
    [
        ("list.csv", "text/csv", 10, "is a .csv file"),
        ("archive.zip", "application/zip", 10, "is a .zip file"),
        ("clip.gif", "image/gif", 10, "is a .gif file"),
        (None, "audio/ogg", 10, "of type audio/ogg"),
        ("big.png", "image/png", 512 * KB + 1, "at most 512 KB"),
        ("big.pdf", "application/pdf", 600 * KB, "is 600 KB"),
        ("big.mp4", "video/mp4", 1024 * KB + 1, "at most 1 MB"),
        ("<b>x</b>.exe", None, 10, "“&lt;b&gt;x&lt;/b&gt;.exe”"),  # names are escaped
    ],
)
def test_refusals_name_the_rule(name: str | None, mime: str, size: int, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        plan_media(file_name=name, mime_type=mime, size=size, limits=WA)
    assert reason in caught.value.message
    assert "Nothing was sent" in caught.value.message


@pytest.mark.parametrize(
    ("name", "content"),
    [("a.jpg", JPEG), ("a.jpeg", JPEG), ("a.png", PNG), ("a.pdf", PDF), ("a.mp4", MP4)],
)
def test_matching_content_is_accepted(name: str, content: bytes) -> None:
    media = accept_media(plan_media(file_name=name, mime_type=None, size=None, limits=WA), content)
    assert (media.file_name, media.content) == (name, content)


def test_content_is_checked_after_download() -> None:
    plan = plan_media(file_name="a.png", mime_type=None, size=None, limits=WA)
    with pytest.raises(BadInput, match="at most 512 KB"):
        accept_media(plan, PNG + b"\x00" * 512 * KB)
    with pytest.raises(BadInput, match="not a PNG file"):
        accept_media(plan, JPEG)
    with pytest.raises(BadInput, match="is empty"):
        accept_media(plan, b"")


# -- through the chat --------------------------------------------------------------------------


async def reply_with(bot: Bot, original: dict[str, Any], command: str) -> list[str]:
    """Post ``original``, answer it with ``command``; the bot's replies."""
    await feed(bot.app, original)
    mark = bot.tg.mark()
    await feed(bot.app, private_message(command, reply_to=original))
    return bot.replies_since(mark, USER)


async def test_a_photo_goes_out_as_media_with_its_caption(bot: Bot) -> None:
    await bot.connect()
    bot.tg.add_file(JPEG, file_id="PHOTO", file_path="photos/file_1.jpg")
    photo = photo_message(file_id="PHOTO", file_size=len(JPEG))
    [card] = await reply_with(bot, photo, "/send nusasms:wa 6281234567890 Lihat ini")
    assert "accepted" in card, card
    [sent] = bot.nusa.sent
    assert sent.kind == "media"
    assert sent.media == JPEG
    assert sent.file_name == "photo_AQADphoto.jpg"
    assert sent.caption == "Lihat ini"
    body = bot.nusa.json_body()
    assert base64.b64decode(body["media_base64"]) == JPEG
    assert bot.tg.calls_to("getFile")[0].params["file_id"] == "PHOTO"  # the largest size
    [message] = await stored_messages(bot)
    assert message.media_name == "photo_AQADphoto.jpg"
    assert bot.nusa.credit.wa_balance == 998  # media costs 2 WA credits


async def test_caption_is_optional_and_every_recipient_gets_the_file(bot: Bot) -> None:
    await bot.connect()
    bot.tg.add_file(PDF, file_id="DOC", file_name="invoice.pdf", mime_type="application/pdf")
    doc = document_message(
        file_id="DOC", file_name="invoice.pdf", mime_type="application/pdf", file_size=len(PDF)
    )
    [card] = await reply_with(bot, doc, "/send nusasms:wa 6281234567890,6281234567891")
    assert "accepted 2" in card, card
    assert [(m.file_name, m.caption, m.media) for m in bot.nusa.sent] == [
        ("invoice.pdf", None, PDF),
        ("invoice.pdf", None, PDF),
    ]
    assert len(bot.tg.calls_to("getFile")) == 1  # downloaded once


async def test_a_video_is_sent_as_mp4(bot: Bot) -> None:
    await bot.connect()
    bot.tg.add_file(MP4, file_id="VID", file_path="videos/file_3.mp4")
    video = private_message("x")
    del video["message"]["text"]
    video["message"]["video"] = {
        "file_id": "VID",
        "file_unique_id": "AgADvid",
        "width": 640,
        "height": 360,
        "duration": 3,
        "mime_type": "video/mp4",
        "file_size": len(MP4),
    }
    [card] = await reply_with(bot, video, "/send nusasms:wa 6281234567890 Demo")
    assert "accepted" in card, card
    assert bot.nusa.sent[0].file_name == "video.mp4"


@pytest.mark.parametrize(
    ("name", "mime", "size", "reason"),
    [
        ("recipients.csv", "text/csv", 1024, "“recipients.csv” is a .csv file"),
        ("scan.pdf", "application/pdf", 700 * KB, "“scan.pdf” is 700 KB"),
        ("clip.mp4", "video/mp4", 3 * 1024 * KB, "at most 1 MB"),
    ],
)
async def test_disallowed_files_are_refused_before_downloading(
    bot: Bot, name: str, mime: str, size: int, reason: str
) -> None:
    await bot.connect()
    bot.tg.add_file(b"x" * 10, file_id="F", file_name=name, mime_type=mime)
    doc = document_message(file_id="F", file_name=name, mime_type=mime, file_size=size)
    replies = await reply_with(bot, doc, "/send nusasms:wa 6281234567890 Hi")
    assert any(reason in r for r in replies), replies
    assert bot.tg.calls_to("getFile") == []  # refused on Telegram's description alone
    assert bot.nusa.sent == []
    assert await stored_messages(bot) == []


async def test_a_file_is_checked_again_after_download(bot: Bot) -> None:
    await bot.connect()
    big = PNG + b"\x00" * 600 * KB  # Telegram under-reported its size
    bot.tg.add_file(big, file_id="BIG", file_name="chart.png", mime_type="image/png")
    doc = document_message(file_id="BIG", file_name="chart.png", mime_type="image/png")
    replies = await reply_with(bot, doc, "/send nusasms:wa 6281234567890 Hi")
    assert any("“chart.png” is 600 KB" in r for r in replies), replies
    assert bot.tg.calls_to("getFile")  # only the downloaded bytes showed it
    fake_pdf = b"MZ\x90\x00 not a pdf"
    bot.tg.add_file(fake_pdf, file_id="EXE", file_name="setup.pdf", mime_type="application/pdf")
    doc = document_message(file_id="EXE", file_name="setup.pdf", mime_type="application/pdf")
    replies = await reply_with(bot, doc, "/send nusasms:wa 6281234567890 Hi")
    assert any("content is not a PDF file" in r for r in replies), replies
    assert bot.nusa.sent == []
    assert await stored_messages(bot) == []


async def test_the_largest_photo_size_that_fits_is_taken(bot: Bot) -> None:
    await bot.connect()
    bot.tg.add_file(JPEG, file_id="SMALL", file_path="photos/small.jpg")
    photo = photo_message(file_id="HUGE", file_size=900 * KB)  # the original: too large
    photo = copy.deepcopy(photo)
    photo["message"]["photo"][0].update(file_id="SMALL", width=800, height=600)
    replies = await reply_with(bot, photo, "/send nusasms:wa 6281234567890 Hi")
    assert any("Sent the 800×600 version" in r and "900 KB" in r for r in replies), replies
    assert bot.tg.calls_to("getFile")[0].params["file_id"] == "SMALL"
    assert bot.nusa.sent[0].media == JPEG


async def test_media_on_an_sms_route_is_refused(bot: Bot) -> None:
    await connect_sms(bot)
    bot.tg.add_file(JPEG, file_id="PHOTO", file_path="photos/file_1.jpg")
    photo = photo_message(file_id="PHOTO", file_size=len(JPEG))
    replies = await reply_with(bot, photo, "/send nusasms:sms 6281234567890 Hi")
    assert any("nusasms:sms cannot carry files" in r for r in replies), replies
    assert any("Reply with /send nusasms:wa" in r for r in replies), replies
    assert bot.tg.calls_to("getFile") == []
    assert bot.nusa.sms_sent == []


async def test_a_voice_message_is_refused_with_the_reason(bot: Bot) -> None:
    await bot.connect()
    voice = private_message("x")
    del voice["message"]["text"]
    voice["message"]["voice"] = {
        "file_id": "VOICE",
        "file_unique_id": "AgADvoice",
        "duration": 2,
        "mime_type": "audio/ogg",
        "file_size": 2000,
    }
    replies = await reply_with(bot, voice, "/send nusasms:wa 6281234567890 Hi")
    assert any("a voice message, which cannot go out as WhatsApp media" in r for r in replies)
    assert bot.nusa.sent == []


async def test_a_download_failure_is_reported(bot: Bot) -> None:
    await bot.connect()
    doc = document_message(file_id="GONE", file_name="a.pdf", mime_type="application/pdf")
    replies = await reply_with(bot, doc, "/send nusasms:wa 6281234567890 Hi")
    assert any("could not download the document from Telegram" in r for r in replies), replies
    assert await stored_messages(bot) == []


async def test_a_reply_to_plain_text_sends_text(bot: Bot) -> None:
    await bot.connect()
    original = private_message("some earlier message")
    [card] = await reply_with(bot, original, "/send nusasms:wa 6281234567890 Hi")
    assert "accepted" in card
    assert bot.nusa.sent[0].kind == "text"
    replies = await reply_with(bot, original, "/send nusasms:wa 6281234567890")
    assert any("text is empty" in r for r in replies), replies
