"""Handlers, cards and renderers speak the chat's language (issue 17), through the real bot.

A chat that chose ``/lang id`` reads its replies, refusals, buttons, the help, the status card
the delivery loop edits later and a schedule's firing note in Indonesian; a chat that did not
keeps reading exactly the English it always did, even while the other chat is answered in
Indonesian by the same loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.errors import describe
from bot.services.stats import MAX_DAYS
from i18n import use_language
from providers.base import DeliveryState, StatusReport
from storage.models import Schedule, StopEntry
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.schedule_support import T0, at, manual_bot, runner_of
from tests.tracking_support import FakeClock, batch_of, card_buttons, card_text, tracker_of

NUMBER = "6281234567890"
OTHER_USER = 7  # a second private chat, left in English


def button_labels(bot: Bot, chat_id: int, message_id: int | None) -> list[str]:
    """The labels of the inline buttons under one of the bot's messages."""
    assert message_id is not None
    markup = bot.tg.messages[(chat_id, message_id)].get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def indonesian(bot: Bot, user_id: int = USER) -> None:
    """Switch a private chat to Indonesian (after connecting: the helper reads English)."""
    reply = await bot.private("/lang id", user_id=user_id)
    assert reply == "Saya akan menjawab dalam Bahasa Indonesia di obrolan ini."


# -- the status card, posted by /send and edited later by the delivery loop -----------------


async def test_the_card_loop_edits_a_card_in_its_chats_language(
    tbot: Bot, clock: FakeClock
) -> None:
    await tbot.connect()
    await indonesian(tbot)
    posted = await tbot.private(f"/send nusasms:wa {NUMBER} Halo")
    assert posted.startswith("Kiriman 1 lewat nusasms:wa"), posted
    assert "diterima penyedia" in posted  # accepted
    batch = await batch_of(tbot)
    assert button_labels(tbot, USER, batch.card_message_id) == ["🔄 Perbarui", "🕘 Riwayat"]

    # The receipt arrives outside any update: only the card loop can choose the language.
    ref = tbot.nusa.sent[-1].ref_no
    await tracker_of(tbot).receive(
        "nusasms", [StatusReport(ref, DeliveryState.DELIVERED, "D", "")]
    )
    clock.advance(5)  # past the pacing of a fresh card's first edit
    await tracker_of(tbot).tick()
    card = card_text(tbot, USER, batch.card_message_id)
    assert card.startswith("Kiriman 1 lewat nusasms:wa"), card
    assert f"✅ diterima → {NUMBER}" in card
    assert "delivered" not in card


async def test_two_chats_read_the_same_loop_in_their_own_languages(
    tbot: Bot, clock: FakeClock
) -> None:
    await tbot.connect()
    await tbot.private(f"/connect nusasms api_key={NUSA_KEY}", user_id=OTHER_USER)
    await indonesian(tbot)
    await tbot.private(f"/send nusasms:wa {NUMBER} Halo")
    await tbot.private(f"/send nusasms:wa {NUMBER} Hello", user_id=OTHER_USER)
    first, second = tbot.nusa.sent[-2:]
    await tracker_of(tbot).receive(
        "nusasms",
        [
            StatusReport(first.ref_no, DeliveryState.FAILED, "F", "not on WhatsApp"),
            StatusReport(second.ref_no, DeliveryState.FAILED, "F", "not on WhatsApp"),
        ],
    )
    for _tick in range(3):  # the loop paces its edits; both cards are edited within these
        clock.advance(5)
        await tracker_of(tbot).tick()

    ours, theirs = await batch_of(tbot, 1), await batch_of(tbot, 2)
    assert "❌ gagal →" in card_text(tbot, USER, ours.card_message_id)
    assert "❌ failed →" in card_text(tbot, OTHER_USER, theirs.card_message_id)
    assert card_text(tbot, OTHER_USER, theirs.card_message_id).startswith("Send 2 via")
    # The notice the loop pushes about a final failure, too.
    assert any(
        "1 pesan dari kiriman 1 lewat nusasms:wa berakhir tanpa diterima." in t
        for t in tbot.tg.sent_texts(USER)
    )
    assert any(
        "a message of send 2 via nusasms:wa ended without delivery." in t
        for t in tbot.tg.sent_texts(OTHER_USER)
    )


# -- help, refusals and errors ------------------------------------------------------------------


async def test_help_and_the_command_summaries_are_in_indonesian(bot: Bot) -> None:
    await indonesian(bot)
    text = await bot.private("/help")
    assert text.startswith("chatops-bridge mengirim pesan SMS dan WhatsApp melalui")
    assert "Perintah Anda (peran: admin):" in text
    assert "/start — apa yang dilakukan bot ini" in text
    assert "/lang <en|id> — bahasa obrolan (Inggris, Indonesia)" in text
    assert "Mode inline: ketik @" in text
    assert "Your commands" not in text


async def test_a_refused_command_names_the_role_in_indonesian(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    assert "Bahasa Indonesia" in await bot.group("/lang id", user_id=USER)
    await bot.group("/role 11 viewer", user_id=USER)
    refused = await bot.group(f"/send {NUMBER} Halo", user_id=11)
    # Role names are typed by users, so they stay as they are.
    assert refused == (
        "⚠️ /send memerlukan peran operator di obrolan ini; peran Anda viewer. "
        "Admin obrolan dapat mengubahnya dengan /role."
    )


async def test_bad_input_gets_a_specific_indonesian_reply_and_changes_nothing(bot: Bot) -> None:
    await indonesian(bot)
    refused = await bot.private("/stats 0")
    assert refused == f"⚠️ /stats menerima jumlah hari dari 1 sampai {MAX_DAYS}."
    reply = await bot.private("/send")
    assert reply.startswith("⚠️ Penggunaan: /send [now] [<rute>] [--otp] <tujuan>")
    assert await bot.private("/frobnicate") == (
        "Perintah /frobnicate tidak dikenal. /help menampilkan perintah yang dapat Anda gunakan."
    )
    assert await bot.private("/stoplist") == (
        "Daftar blokir obrolan ini kosong. /stop <number>[,<number>…] menambahkan nomor."
    )
    async with bot.services.repo.db.read() as s:
        assert (await s.exec(select(StopEntry))).all() == []


def test_the_generic_error_reply_is_translated() -> None:
    with use_language("id"):
        text = describe(RuntimeError("boom"))
    assert text.startswith("Terjadi kesalahan di sisi saya; sudah dicatat.")
    assert "boom" not in text
    assert describe(RuntimeError("boom")).startswith("Something went wrong on my side")


# -- schedules: the confirmation, its button and the note the scheduler posts later ------------


@pytest.fixture
async def sbot(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Bot]:
    """A connected bot at T0 whose scheduler runs only when the test says so."""
    bot = await manual_bot(tmp_path, tg, nusa)
    await bot.connect()
    at(bot, T0)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def test_a_schedule_is_confirmed_and_fired_in_indonesian(sbot: Bot) -> None:
    await indonesian(sbot)
    mark = sbot.tg.mark()
    reply = await sbot.private(f"/schedule in 2h nusasms:wa {NUMBER} Halo")
    assert reply.startswith("⏰ Kiriman #1 dijadwalkan untuk"), reply
    assert "Batalkan: /cancel 1 · waktu baru: /reschedule 1 <waktu> · /scheduled" in reply
    (confirmation,) = [c for c in sbot.tg.calls[mark:] if c.method == "sendMessage"]
    assert button_labels(sbot, USER, confirmation.result["message_id"]) == ["🚫 Batal"]

    mark = sbot.tg.mark()
    assert await runner_of(sbot).run_due(T0 + timedelta(hours=2)) == 1
    (card,) = sbot.replies_since(mark, USER)
    assert card.startswith("⏰ Kiriman terjadwal #1 dijalankan.\nKiriman 1 lewat nusasms:wa")
    assert "⏰ kiriman terjadwal #1" in card


async def test_a_bad_reschedule_is_refused_in_indonesian_and_keeps_the_row(sbot: Bot) -> None:
    await sbot.private(f"/schedule in 2h nusasms:wa {NUMBER} Halo")
    await indonesian(sbot)
    reply = await sbot.private("/reschedule 1")
    assert reply.startswith("⚠️ Penggunaan: /reschedule <id> <waktu>, misalnya /reschedule 3")
    async with sbot.services.repo.db.read() as s:
        (row,) = (await s.exec(select(Schedule))).all()
    assert row.next_run_at == T0 + timedelta(hours=2)


# -- English is unchanged -----------------------------------------------------------------------


async def test_a_chat_that_never_chose_reads_the_same_english(tbot: Bot, clock: FakeClock) -> None:
    await tbot.connect()
    help_text = await tbot.private("/help")
    assert "Your commands (role: admin):" in help_text
    assert "/start — what this bot does" in help_text
    posted = await tbot.private(f"/send nusasms:wa {NUMBER} Hello")
    assert posted.startswith(f"Send 1 via nusasms:wa by @alice\n#1 📥 accepted → {NUMBER}")
    batch = await batch_of(tbot)
    assert button_labels(tbot, USER, batch.card_message_id) == ["🔄 Refresh", "🕘 History"]
    assert card_buttons(tbot, USER, batch.card_message_id) == ["card:refresh:1", "card:history:1"]
    assert await tbot.private("/stoplist") == (
        "This chat's stoplist is empty. /stop <number>[,<number>…] adds numbers."
    )
