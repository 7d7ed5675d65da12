"""Large sends through the real Application: progress card, Stop, Retry failed.

A send to more than ``CONFIRM_ABOVE`` recipients gets one aggregate card that the tracker
edits as the send goes (on the injected clock, at most once every 3 s), Stop while it runs
and Retry failed once it ended. The provider's sends are held at a gate mid-send, so a Stop
lands while some chunks are handed over and others are not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from bot.app import build_application, start_resources
from bot.config import Settings
from providers.base import DeliveryState
from storage.models import AuditEntry, Batch, Message, Progress
from tests.confirm_support import confirm, last_buttons
from tests.confirm_support import press as press_button
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, make_settings, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram, OfflineRequest, feed
from tests.lists_support import upload
from tests.tracking_support import FakeClock, card_buttons, card_text, press, tracker_of

SEND_PATH = "/whatsapp/message"


class Gate:
    """The fake NusaSMS behind a gate: sends after the first ``after`` wait to be released."""

    def __init__(self, nusa: FakeNusaSms, after: int) -> None:
        self.nusa = nusa
        self.after = after
        self.sends = 0
        self.waiting = 0
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if SEND_PATH in request.url.path:
            self.sends += 1
            if self.sends > self.after and not self.opened.is_set():
                self.waiting += 1
                self.reached.set()
                await self.opened.wait()
        return self.nusa(request)


async def gated_bot(
    tmp_path: Path,
    tg: FakeTelegram,
    gate: Gate,
    clock: FakeClock,
    settings: Settings | None = None,
    **overrides: object,
) -> Bot:
    """The real Application on the offline Telegram, NusaSMS behind ``gate``, loops off."""
    settings = settings or make_settings(tmp_path, **{"send_concurrency": 2, **overrides})
    app = build_application(
        settings,
        request=OfflineRequest(tg),
        provider_transport=httpx.MockTransport(gate),
        rate_limit=False,
    )
    await app.initialize()
    await start_resources(app, clock=clock, background=False)
    return Bot(app, tg, gate.nusa)


@pytest.fixture
async def held(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> AsyncIterator[tuple[Bot, Gate]]:
    """A bot whose NusaSMS holds every send after the 10th until the test opens the gate."""
    gate = Gate(nusa, after=10)
    bot = await gated_bot(tmp_path, tg, gate, clock)
    try:
        yield bot, gate
    finally:
        gate.opened.set()
        await stop_bot(bot)


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid Indonesian mobile numbers."""
    return [f"62812{start + i:08d}" for i in range(count)]


async def rows(bot: Bot, batch_id: int = 1) -> list[Message]:
    async with bot.services.repo.db.read() as s:
        found = await s.exec(
            select(Message).where(Message.batch_id == batch_id).order_by(col(Message.id))
        )
        return list(found)


async def batch_row(bot: Bot, batch_id: int = 1) -> Batch:
    async with bot.services.repo.db.read() as s:
        found = await s.get(Batch, batch_id)
    assert found is not None
    return found


def card_id(bot: Bot, batch_id: int = 1, chat_id: int = USER) -> int:
    """The Telegram message id of a send's card."""
    for (chat, message_id), message in bot.tg.messages.items():
        if chat == chat_id and str(message.get("text", "")).startswith(f"Send {batch_id} "):
            return message_id
    raise AssertionError(f"send {batch_id} has no card in chat {chat_id}")


async def tick(bot: Bot, clock: FakeClock, seconds: float = 3.5) -> None:
    clock.advance(seconds)
    await tracker_of(bot).tick(clock())


def toast(answer: Any) -> str:
    return str(answer.params.get("text", ""))


async def until(condition: Any, what: str) -> None:
    """Wait (on events of the loop, bounded) until ``condition()`` holds."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def start_send(bot: Bot, to: list[str], text: str = "Hello") -> asyncio.Task[str]:
    """A large /send, confirmed: the Send press runs in a task (it sends)."""
    await bot.connect()
    assert "Send to" in await bot.private(f"/send nusasms:wa {','.join(to)} {text}")
    send, _cancel = last_buttons(bot)
    return asyncio.create_task(press_button(bot, send))


async def test_progress_card_then_stop_hands_over_nothing_after_it(
    held: tuple[Bot, Gate], clock: FakeClock
) -> None:
    bot, gate = held
    task = await start_send(bot, numbers(60))
    await asyncio.wait_for(gate.reached.wait(), 10)
    await until(lambda: gate.waiting == 2, "both workers at the gate")

    # The card is posted while the send runs: one aggregate card with progress and Stop.
    await tick(bot, clock)
    card = card_id(bot)
    text = card_text(bot, USER, card)
    assert "60 recipients" in text
    assert "▶️ Sending: 12 of 60 handed to the provider (20 %)" in text
    assert "remaining 60" in text or "remaining 50" in text  # answers committed ≤ 1 s apart
    assert "/status" in text
    assert "6281200000000" not in text  # counts, not recipients
    assert "card:stop:1" in card_buttons(bot, USER, card)

    answer = await press(bot, "card:stop:1", message_id=card)
    assert "Send 1 stopped: 48 recipients will not get it" in toast(answer)
    gate.opened.set()
    await asyncio.wait_for(task, 10)

    stored = await rows(bot)
    handed = [m for m in stored if m.handed_at is not None]
    assert len(handed) == 12  # 10 through the gate, 2 waiting at it when Stop came
    # Nothing after the Stop was handed over; nothing handed over before it was lost.
    assert sorted(m.destination for m in bot.nusa.sent) == sorted(m.recipient for m in handed)
    assert {m.state for m in handed} == {DeliveryState.ACCEPTED.value}
    stopped = [m for m in stored if m.handed_at is None]
    assert {m.state for m in stopped} == {DeliveryState.ABORTED.value}
    assert {m.detail for m in stopped} == {"not sent: the send was stopped by @alice"}
    assert (await batch_row(bot)).progress == Progress.STOPPED.value

    await tick(bot, clock)
    text = card_text(bot, USER, card)
    assert "⏹ Stopped by @alice: 48 recipients were not sent" in text
    assert "done 12" in text
    assert "remaining 0" in text
    # Stopped: no Stop any more; nothing failed (stopped ones are not failures): no Retry.
    assert card_buttons(bot, USER, card) == ["card:refresh:1", "card:details:1"]

    again = await press(bot, "card:stop:1", message_id=card)
    assert "Send 1 was stopped already." in toast(again)
    assert len(bot.nusa.sent) == 12
    # Each recipient still answers to /status; the audit says who stopped what.
    assert "aborted" in await bot.private(f"/status {stopped[0].id}")
    async with bot.services.repo.db.read() as s:
        audit = [(a.user_id, a.action, a.detail) for a in await s.exec(select(AuditEntry))]
    assert (USER, "stop", "stopped send 1: 48 recipient(s) not sent") in audit


async def test_the_card_is_edited_at_most_every_three_seconds(
    held: tuple[Bot, Gate], clock: FakeClock
) -> None:
    bot, gate = held
    task = await start_send(bot, numbers(60))
    await asyncio.wait_for(gate.reached.wait(), 10)
    await tick(bot, clock)
    card = card_id(bot)
    gate.opened.set()
    await asyncio.wait_for(task, 10)
    mark = bot.tg.mark()
    for _ in range(12):  # every 0.5 s of fake time for 6 s
        await tick(bot, clock, 0.5)
    edits = [c for c in bot.tg.calls[mark:] if c.method == "editMessageText"]
    assert 1 <= len(edits) <= 2
    text = card_text(bot, USER, card)
    assert "🏁 Finished in" in text
    assert "done 60 · ❌ failed 0 · ⏳ remaining 0" in text


async def test_small_sends_keep_their_card(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private(f"/send nusasms:wa {','.join(numbers(3))} Hi")
    assert "Sending:" not in reply
    assert "6281200000000" in reply  # a small card lists its recipients
    assert (await batch_row(bot)).progress is None


async def test_retry_failed_resends_only_failed_never_unknown(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    gate = Gate(nusa, after=10_000)
    bot = await gated_bot(tmp_path, tg, gate, clock, send_concurrency=1)
    try:
        await bot.connect()
        # One worker: the 3rd and 4th sends are refused (certainly not sent), the 5th times
        # out (it may have been sent: unknown).
        for _ in range(2):
            nusa.fail_next(
                422,
                {"detail": [{"loc": ["body", "destination"], "msg": "bad"}]},
                path_contains=SEND_PATH,
            )
        nusa.raise_next(
            lambda r: httpx.ReadTimeout("timed out", request=r), path_contains=SEND_PATH
        )
        await bot.private(f"/send nusasms:wa {','.join(numbers(55))} Hello")
        await confirm(bot)
        states = [m.state for m in await rows(bot)]
        assert states.count(DeliveryState.FAILED.value) == 2
        assert states.count(DeliveryState.UNKNOWN.value) == 1
        await tick(bot, clock)
        card = card_id(bot)
        assert "card:retry:1" in card_buttons(bot, USER, card)
        failed = {m.recipient for m in await rows(bot) if m.state == "failed"}
        sent_before = len(nusa.sent)

        answer = await press(bot, "card:retry:1", message_id=card)
        assert "Retrying the 2 failed recipients of send 1." in toast(answer)
        retried = await rows(bot, 2)
        assert {m.recipient for m in retried} == failed  # never the unknown one
        assert {m.state for m in retried} == {DeliveryState.ACCEPTED.value}
        assert len(nusa.sent) == sent_before + 2

        again = await press(bot, "card:retry:1", message_id=card)
        assert "Send 1 was retried already: send 2." in toast(again)
        assert len(nusa.sent) == sent_before + 2
    finally:
        await stop_bot(bot)


async def connect_group(bot: Bot) -> None:
    """Connect NusaSMS for the group through the deep link (USER is its Telegram admin)."""
    bot.tg.chat_admins[GROUP] = {USER}
    mark = bot.tg.mark()
    await bot.group("/connect nusasms")
    call = next(
        c
        for c in bot.tg.calls[mark:]
        if c.method == "sendMessage" and c.params.get("reply_markup")
    )
    url = call.params["reply_markup"]["inline_keyboard"][0][0]["url"]
    await bot.private(f"/start {url.split('start=')[1]}")
    await bot.private(NUSA_KEY)
    await bot.private("-")
    assert "connected for" in await bot.private("-")


async def test_stop_and_retry_need_the_right_role(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    gate = Gate(nusa, after=5)
    bot = await gated_bot(tmp_path, tg, gate, clock)
    try:
        await connect_group(bot)
        await bot.group("/role 3 viewer")
        await bot.group(f"/send nusasms:wa {','.join(numbers(60))} Hi", user_id=USER)
        send, _cancel = last_buttons(bot, GROUP)
        task = asyncio.create_task(press_button(bot, send, chat_id=GROUP, user_id=USER))
        await asyncio.wait_for(gate.reached.wait(), 10)
        await tick(bot, clock)
        card = card_id(bot, chat_id=GROUP)

        other = await press_as(bot, "card:stop:1", card, user_id=2)
        assert "Stopping another user's send needs the admin role" in toast(other)
        viewer = await press_as(bot, "card:stop:1", card, user_id=3)
        assert "needs the admin role" in toast(viewer)
        assert (await batch_row(bot)).progress == Progress.SENDING.value

        gate.opened.set()
        await asyncio.wait_for(task, 10)
        assert len(nusa.sent) == 60  # the refused presses stopped nothing
        assert (await batch_row(bot)).progress == Progress.DONE.value
        retry = await press_as(bot, "card:retry:1", card, user_id=3)
        assert "Retry failed needs the operator role" in toast(retry)
    finally:
        gate.opened.set()
        await stop_bot(bot)


async def press_as(bot: Bot, data: str, card: int, *, user_id: int) -> Any:
    from tests.fakes.telegram import callback_query

    mark = bot.tg.mark()
    message = bot.tg.messages.get((GROUP, card))
    await feed(
        bot.app,
        callback_query(
            data,
            message_chat_id=GROUP,
            message_id=card,
            message=message,
            user_id=user_id,
            username=f"user{user_id}",
        ),
    )
    answer = bot.tg.find_call("answerCallbackQuery", since=mark)
    assert answer is not None
    return answer


async def test_a_send_cut_off_by_a_stop_goes_on_after_the_restart(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    gate = Gate(nusa, after=10)
    settings = make_settings(tmp_path, send_concurrency=2)  # one key for both lives
    bot = await gated_bot(tmp_path, tg, gate, clock, settings)
    task = await start_send(bot, numbers(60))
    await asyncio.wait_for(gate.reached.wait(), 10)
    await until(lambda: gate.waiting == 2, "both workers at the gate")
    await tick(bot, clock)
    card = card_id(bot)
    # A stop cuts the send off (lifecycle.stop_within): the two requests at the gate never
    # reached NusaSMS, and the stop marks what was in flight.
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await bot.services.repo.messages.mark_interrupted_sends() == 2
    await stop_bot(bot)

    bot = await gated_bot(tmp_path, tg, Gate(nusa, 10**6), clock, settings)  # goes on
    try:
        for _ in range(2000):
            if (await batch_row(bot)).progress == Progress.DONE.value:
                break
            await asyncio.sleep(0.005)
        stored = await rows(bot)
        at_provider = [m.destination for m in nusa.sent]
        assert len(at_provider) == len(set(at_provider)) == 58  # 10 before, 48 after
        unknown = [m for m in stored if m.state == DeliveryState.UNKNOWN.value]
        assert len(unknown) == 2  # in flight at the stop: never resent
        assert not {m.recipient for m in unknown} & set(at_provider)
        assert {m.state for m in stored} == {"accepted", "unknown"}
        mark = tg.mark()
        await tick(bot, clock)
        assert [c for c in tg.calls[mark:] if c.method == "sendMessage"] == []  # same card
        text = card_text(bot, USER, card)
        assert "🏁 Finished" in text
        assert "done 60" in text  # unknown ones count as handed over (the provider may have them)
    finally:
        await stop_bot(bot)


async def test_a_2000_number_list_is_sendable_from_the_chat(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    nusa.credit.wa_balance = 5000  # the fake account's default credit is 1,000 messages
    bot = await gated_bot(tmp_path, tg, Gate(nusa, 10**6), clock, send_concurrency=20)
    try:
        await bot.connect()
        content = "\n".join(["number", *numbers(2000, start=500)]).encode()
        assert "2,000" in await upload(bot, "all", content)
        assert "2,000" in await bot.private("/send nusasms:wa list:all Hello")
        await confirm(bot)
        assert len(nusa.sent) == 2000
        await tick(bot, clock)
        text = card_text(bot, USER, card_id(bot))
        assert "2,000 recipients" in text
        assert "🏁 Finished" in text
        assert "done 2,000" in text
    finally:
        await stop_bot(bot)


async def test_a_large_retry_asks_for_its_own_confirmation(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, clock: FakeClock
) -> None:
    bot = await gated_bot(tmp_path, tg, Gate(nusa, after=10_000), clock, send_concurrency=1)
    try:
        await bot.connect()
        for _ in range(55):  # one worker: the first 55 are refused (certainly not sent)
            nusa.fail_next(
                422,
                {"detail": [{"loc": ["body", "destination"], "msg": "bad"}]},
                path_contains=SEND_PATH,
            )
        await bot.private(f"/send nusasms:wa {','.join(numbers(60))} Hello")
        await confirm(bot)
        assert [m.state for m in await rows(bot)].count(DeliveryState.FAILED.value) == 55
        await tick(bot, clock)
        card = card_id(bot)
        sent_before = len(nusa.sent)

        answer = await press(bot, "card:retry:1", message_id=card)
        assert "press Send below" in toast(answer)
        assert "Send to 55 recipients?" in bot.replies_since(0, USER)[-1]
        assert len(nusa.sent) == sent_before  # nothing before Send
        assert await rows(bot, 2) == []

        await confirm(bot)
        retried = await rows(bot, 2)
        assert len(retried) == 55
        assert {m.state for m in retried} == {DeliveryState.ACCEPTED.value}
        assert len(nusa.sent) == sent_before + 55
    finally:
        await stop_bot(bot)
