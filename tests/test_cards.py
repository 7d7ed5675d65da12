"""Status cards: buttons, coalesced edits, deleted cards, blocked chats, Telegram's answers."""

from __future__ import annotations

from bot.tracking.scheduler import JobKind
from providers.base import DeliveryState, StatusReport
from tests.conftest import USER, Bot
from tests.tracking_support import (
    FakeClock,
    batch_of,
    card_buttons,
    card_text,
    edits_since,
    message_row,
    press,
    tracker_of,
)

NUMBERS = ["6281234567890", "6281234567891", "6281234567892"]


async def send(bot: Bot, numbers: list[str]) -> list[str]:
    """Connect (once) and send to ``numbers``; returns the new refs."""
    if not await bot.services.repo.get_credential(USER, "nusasms"):
        await bot.connect()
    before = len(bot.nusa.sent)
    reply = await bot.private(f"/send nusasms:wa {','.join(numbers)} Hello")
    assert "Send" in reply, reply
    return [m.ref_no for m in bot.nusa.sent[before:]]


async def receive(bot: Bot, ref: str, state: DeliveryState, detail: str = "") -> None:
    await tracker_of(bot).receive("nusasms", [StatusReport(ref, state, state.value, detail)])


# -- buttons ---------------------------------------------------------------------------------


async def test_refresh_polls_now_and_the_card_follows(tbot: Bot, clock: FakeClock) -> None:
    (ref,) = await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    assert card_buttons(tbot, USER, batch.card_message_id) == ["card:refresh:1", "card:history:1"]
    tbot.nusa.set_status(ref, "D")
    clock.advance(4)  # well before the first scheduled poll

    answer = await press(tbot, "card:refresh:1", message_id=batch.card_message_id or 0)
    assert answer.params["text"] == "Asked about 1 message: 1 changed."
    assert (await message_row(tbot, 1)).state == "delivered"
    await tracker_of(tbot).tick()
    assert "delivered" in card_text(tbot, USER, batch.card_message_id)

    again = await press(tbot, "card:refresh:1", message_id=batch.card_message_id or 0)
    assert again.params["text"] == "Refreshed a moment ago; try again in a few seconds."

    tbot.nusa.set_status(ref, "R")
    clock.advance(6)
    answer = await press(tbot, "card:refresh:1", message_id=batch.card_message_id or 0)
    assert answer.params["text"] == "Asked about 1 message: 1 changed."
    await tracker_of(tbot).tick()
    assert "read" in card_text(tbot, USER, batch.card_message_id)
    assert card_buttons(tbot, USER, batch.card_message_id) == ["card:history:1"], "no Refresh"
    clock.advance(6)
    answer = await press(tbot, "card:refresh:1", message_id=batch.card_message_id or 0)
    assert "Nothing left to ask" in answer.params["text"]


async def test_refresh_reports_a_provider_failure(tbot: Bot, clock: FakeClock) -> None:
    await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    tbot.nusa.fail_next(503, {"error": True, "message": "maintenance"}, path_contains="/status/")
    answer = await press(tbot, "card:refresh:1", message_id=batch.card_message_id or 0)
    assert answer.params["text"].startswith("Could not ask the provider just now: NusaSMS")
    assert (await message_row(tbot, 1)).state == "accepted"


async def test_refused_button_presses_get_a_specific_alert(tbot: Bot) -> None:
    await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    card = batch.card_message_id or 0

    answer = await press(tbot, "card:zap:1", message_id=card)
    assert answer.params["show_alert"] is True
    assert "older version of the bot" in answer.params["text"]

    answer = await press(tbot, "card:refresh:99", message_id=card)
    assert answer.params["text"] == "Send 99 does not belong to this chat."

    other_chat = 4242
    answer = await press(tbot, "card:refresh:1", chat_id=other_chat, message_id=card)
    assert answer.params["show_alert"] is True
    assert answer.params["text"] == "Send 1 does not belong to this chat."
    assert not [c for c in tbot.tg.calls_to("sendMessage") if c.params["chat_id"] == other_chat]


async def test_details_lists_every_recipient_under_the_card(tbot: Bot, clock: FakeClock) -> None:
    refs = await send(tbot, NUMBERS)
    batch = await batch_of(tbot)
    assert card_buttons(tbot, USER, batch.card_message_id) == [
        "card:refresh:1",
        "card:details:1",
    ]
    card = card_text(tbot, USER, batch.card_message_id)
    assert "📥 accepted 3" in card
    await receive(tbot, refs[1], DeliveryState.FAILED, "not on WhatsApp")

    answer = await press(tbot, "card:details:1", message_id=batch.card_message_id or 0)
    assert answer.params["text"] == "The details follow below the card."
    clock.advance(1)
    await tracker_of(tbot).tick()
    clock.advance(1)
    await tracker_of(tbot).tick()
    details = [
        c for c in tbot.tg.calls_to("sendMessage") if "3 recipients" in c.result.get("text", "")
    ]
    assert len(details) == 1
    text = details[0].result["text"]
    assert all(n in text for n in NUMBERS)
    assert "not on WhatsApp" in text
    assert details[0].result["reply_to_message"]["message_id"] == batch.card_message_id

    again = await press(tbot, "card:details:1", message_id=batch.card_message_id or 0)
    assert again.params["text"] == "The details were just posted below the card."


# -- coalescing and Telegram's answers --------------------------------------------------------


async def test_edits_of_one_card_are_coalesced_and_the_last_state_wins(
    tbot: Bot, clock: FakeClock
) -> None:
    refs = await send(tbot, NUMBERS)
    batch = await batch_of(tbot)
    tracker = tracker_of(tbot)
    clock.advance(5)
    mark = tbot.tg.mark()
    await receive(tbot, refs[0], DeliveryState.SENT)
    await tracker.tick()
    assert len(edits_since(tbot, mark)) == 1
    for step, (ref, state) in enumerate(
        [
            (refs[1], DeliveryState.SENT),
            (refs[0], DeliveryState.DELIVERED),
            (refs[2], DeliveryState.DELIVERED),
            (refs[1], DeliveryState.READ),
        ]
    ):
        clock.advance(0.5)
        await receive(tbot, ref, state)
        await tracker.tick()
        assert len(edits_since(tbot, mark)) == 1, f"edited again at step {step}"
    clock.advance(1.0)  # 3 s after the first edit
    await tracker.tick()
    assert len(edits_since(tbot, mark)) == 2
    text = card_text(tbot, USER, batch.card_message_id)
    assert "✅ delivered 2" in text
    assert "👀 read 1" in text


async def test_not_modified_is_not_an_error(tbot: Bot, clock: FakeClock) -> None:
    await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    tracker = tracker_of(tbot)
    await tracker.store.card_synced(1, 0)  # the tracker believes the card is behind
    tracker.updater.scheduler.want(JobKind.EDIT, 1, USER, clock().timestamp() + 5)
    clock.advance(5)
    mark = tbot.tg.mark()
    await tracker.tick()
    (edit,) = edits_since(tbot, mark)
    assert edit.status == 400
    assert "not modified" in edit.response["description"]
    after = await batch_of(tbot)
    assert not after.card_dead
    assert (after.card_event_id or 0) > 0
    assert after.card_message_id == batch.card_message_id


async def test_retry_after_pauses_the_chat_and_the_edit_follows(
    tbot: Bot, clock: FakeClock
) -> None:
    (ref,) = await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    tracker = tracker_of(tbot)
    clock.advance(5)
    tbot.tg.fail_next("editMessageText", retry_after=7)
    await receive(tbot, ref, DeliveryState.SENT)
    mark = tbot.tg.mark()
    await tracker.tick()
    assert [c.status for c in edits_since(tbot, mark)] == [429]
    clock.advance(5)
    await tracker.tick()
    assert len(edits_since(tbot, mark)) == 1, "the chat is paused for retry_after"
    clock.advance(2.5)
    await tracker.tick()
    assert [c.status for c in edits_since(tbot, mark)] == [429, 200]
    assert "sent" in card_text(tbot, USER, batch.card_message_id)


async def test_a_deleted_card_stops_being_edited(tbot: Bot, clock: FakeClock) -> None:
    (ref,) = await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    tracker = tracker_of(tbot)
    tbot.tg.delete_message_by_user(USER, batch.card_message_id or 0)
    clock.advance(5)
    mark = tbot.tg.mark()
    await receive(tbot, ref, DeliveryState.SENT)
    await tracker.tick()
    (edit,) = edits_since(tbot, mark)
    assert "message to edit not found" in edit.response["description"]
    assert (await batch_of(tbot)).card_dead

    for state in (DeliveryState.DELIVERED, DeliveryState.READ):
        clock.advance(5)
        await receive(tbot, ref, state)
        await tracker.tick()
    assert len(edits_since(tbot, mark)) == 1, "no more edits of a deleted card"
    assert not tbot.tg.calls_to("sendMessage")[2:], "no error piles up in the chat"
    assert (await message_row(tbot, 1)).state == "read", "tracking itself goes on"


async def test_failure_notice_still_comes_when_the_card_was_deleted(
    tbot: Bot, clock: FakeClock
) -> None:
    (ref,) = await send(tbot, NUMBERS[:1])
    batch = await batch_of(tbot)
    tbot.tg.delete_message_by_user(USER, batch.card_message_id or 0)
    clock.advance(5)
    await receive(tbot, ref, DeliveryState.FAILED, "number blocked")
    await tracker_of(tbot).tick()
    clock.advance(1)
    await tracker_of(tbot).tick()
    notice = tbot.tg.calls_to("sendMessage")[-1]
    assert "ended without delivery" in notice.result["text"]
    assert "number blocked" in notice.result["text"]
    assert "reply_to_message" not in notice.result


async def test_a_blocked_chat_stops_all_its_cards(tbot: Bot, clock: FakeClock) -> None:
    first = await send(tbot, NUMBERS[:1])
    second = await send(tbot, NUMBERS[1:2])
    tracker = tracker_of(tbot)
    tbot.tg.blocked_chats.add(USER)
    clock.advance(5)
    mark = tbot.tg.mark()
    await receive(tbot, first[0], DeliveryState.SENT)
    await receive(tbot, second[0], DeliveryState.FAILED, "gone")
    for _ in range(5):
        await tracker.tick()
        clock.advance(1)
    refused = [c for c in tbot.tg.calls[mark:] if c.status == 403]
    assert len(refused) == 1, "one refusal, then the chat is left alone"
    assert (await batch_of(tbot, 1)).card_dead
    assert (await batch_of(tbot, 2)).card_dead
    for state in (DeliveryState.DELIVERED, DeliveryState.READ):
        await receive(tbot, first[0], state)
        clock.advance(5)
        await tracker.tick()
    assert len(tbot.tg.calls) == mark + 1
    assert tracker.updater.scheduler.pending == 0

    tbot.tg.blocked_chats.clear()  # unblocked: a new send brings its card back to life
    (third,) = await send(tbot, NUMBERS[2:])
    clock.advance(5)
    await receive(tbot, third, DeliveryState.DELIVERED)
    await tracker.tick()
    assert "delivered" in card_text(tbot, USER, (await batch_of(tbot, 3)).card_message_id)
