"""Templates and personalised sends through the real Application.

/templates, /template add|del, ``list:<name>`` recipients on /send and /schedule, and
``template:<name> key=value`` texts filled per recipient from a list's CSV columns, down to
what each fake provider received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import Schedule, ScheduleState
from tests.conftest import GROUP, USER, Bot, stop_bot
from tests.fakes.courier import ACCOUNT_A, NUMBER_A1, ORG, PASSWORD, USERNAME
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import FakeTelegram, callback_query, feed, photo_message
from tests.lists_support import messages, upload
from tests.schedule_support import T0, at, manual_bot, runner_of, schedules

CUSTOMERS = (
    b"phone;Name;City\n"
    b"6281234567890;Budi;Jakarta\n"
    b"6281234567891;Siti;Bandung\n"
    b"6281234567892;Ana;Jakarta\n"
)
PARROTICA = f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"
COURIER = (
    f"/connect courier username={USERNAME} password={PASSWORD} organization_id={ORG} "
    f"account_id={ACCOUNT_A} number_id={NUMBER_A1}"
)


def _sent(bot: Bot) -> dict[str, str]:
    """NusaSMS WhatsApp messages received: number → text."""
    return {m.destination: m.message for m in bot.nusa.sent}


# -- /template ------------------------------------------------------------------------------


async def test_templates_are_added_listed_replaced_and_deleted(bot: Bot) -> None:
    assert "no templates" in await bot.private("/templates")
    reply = await bot.private("/template add Promo Hi {name}, {{today}} only: {Discount}% off")
    assert "Template promo saved" in reply, reply
    assert "Placeholders: {name} {Discount}." in reply, reply
    assert "As SMS: 1 segment (GSM-7" in reply, reply
    listing = await bot.private("/templates")
    assert "promo: Hi {name}, {{today}} only: {Discount}% off · fills {name} {Discount}" in (
        listing
    ), listing
    reply = await bot.private("/template add promo Hello {name}\nsee you")
    assert "Template promo replaced" in reply, reply
    assert "Hello {name} see you" in await bot.private("/template")
    assert "There is no template “nope” in this chat. Templates here: promo" in (
        await bot.private("/template del nope")
    )
    assert "Template promo deleted" in await bot.private("/template del PROMO")
    assert "no templates" in await bot.private("/templates")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/template add x Hi {name", "braces do not match"),
        ("/template add x Hi } there", "braces do not match"),
        ("/template add x Hi {}", "give the placeholder a name"),
        ("/template add x Hi {0}", "give the placeholder a name"),
        ("/template add x Hi {name!r}", "no conversion or format"),
        ("/template add x Hi {name:>10}", "no conversion or format"),
        ("/template add x Hi {user.name}", "is not a placeholder name"),
        ("/template add x Hi {a[0]}", "is not a placeholder name"),
        ("/template add x", "has no text"),
        ("/template add", "Usage"),
        ("/template add bad.name Hi", "is not a template name"),
        ("/template rename x", "Usage"),
    ],
)
async def test_bad_templates_are_refused(bot: Bot, text: str, says: str) -> None:
    reply = await bot.private(text)
    assert says in reply, reply
    assert "no templates" in await bot.private("/templates")


async def test_a_viewer_reads_templates_but_cannot_add_them(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role 7 viewer")
    await bot.group("/template add promo Hi {name}")
    reply = await bot.group("/template add mine Hi", user_id=7)
    assert "/template add needs the admin role in this chat; you are viewer" in reply, reply
    assert "promo" in await bot.group("/templates", user_id=7)
    assert "mine" not in await bot.group("/templates", user_id=7)


# -- /send with lists and templates -----------------------------------------------------------


async def test_a_list_mixes_with_numbers_and_each_number_goes_once(bot: Bot) -> None:
    await bot.connect()
    await upload(bot, "customers", CUSTOMERS)
    reply = await bot.private(
        "/send nusasms:wa +62 812 3456 7899, list:customers,6281234567890 Hi"
    )
    assert "accepted 4" in reply, reply
    assert [m.destination for m in bot.nusa.sent] == [
        "6281234567899",
        "6281234567890",
        "6281234567891",
        "6281234567892",
    ]
    assert set(_sent(bot).values()) == {"Hi"}


async def test_a_list_works_on_the_default_route_and_parrotica(bot: Bot) -> None:
    assert "connected" in await bot.private(PARROTICA)
    await upload(bot, "customers", CUSTOMERS)
    reply = await bot.private("/send list:customers Promo")
    assert "parrotica:sms" in reply, reply
    (message,) = bot.parrotica.messages.values()  # one request: one text, a list-taking API
    assert message.numbers == ["+6281234567890", "+6281234567891", "+6281234567892"]


async def test_unknown_lists_and_lists_on_other_routes_are_refused(bot: Bot) -> None:
    await bot.connect()
    reply = await bot.private("/send nusasms:wa list:customers Hi")
    assert "There is no list “customers”: this chat has no lists yet" in reply, reply
    await upload(bot, "customers", CUSTOMERS)
    await upload(bot, "staff", b"6281234567899\n")
    reply = await bot.private("/send nusasms:wa list:custmers Hi")
    assert "There is no list “custmers” in this chat. Lists here: customers, staff" in reply
    reply = await bot.private("/send nusasms:smsgroup list:customers Hi")
    assert "nusasms:smsgroup takes group names, not list:customers" in reply, reply
    assert bot.nusa.sent == []
    assert await messages(bot) == []


async def test_a_template_with_key_values_is_one_text_for_everyone(bot: Bot) -> None:
    await bot.connect()
    await bot.private("/template add promo Hi {name}, {Discount}% off {{today}}")
    reply = await bot.private(
        '/send nusasms:wa 6281234567890,6281234567891 template:promo name="Pak Budi" discount=20'
    )
    assert "accepted 2" in reply, reply
    assert set(_sent(bot).values()) == {"Hi Pak Budi, 20% off {today}"}
    assert {m.text for m in await messages(bot)} == {"Hi Pak Budi, 20% off {today}"}


async def test_each_recipient_gets_their_own_text_from_the_list_columns(bot: Bot) -> None:
    await bot.connect()
    await upload(bot, "customers", CUSTOMERS)
    await bot.private("/template add promo Hi {name} in {city}! Code {code}")
    reply = await bot.private("/send nusasms:wa list:customers template:promo code=JUNE")
    assert "accepted 3" in reply, reply
    assert _sent(bot) == {
        "6281234567890": "Hi Budi in Jakarta! Code JUNE",
        "6281234567891": "Hi Siti in Bandung! Code JUNE",
        "6281234567892": "Hi Ana in Jakarta! Code JUNE",
    }
    stored = {m.recipient: m.text for m in await messages(bot)}
    assert stored == _sent(bot)
    # key=value pairs come first, the columns after them
    await bot.private("/send nusasms:wa list:customers template:promo code=X city=Bali")
    assert {m.message for m in bot.nusa.sent[3:]} == {
        "Hi Budi in Bali! Code X",
        "Hi Siti in Bali! Code X",
        "Hi Ana in Bali! Code X",
    }


async def test_personalised_texts_share_a_request_only_when_equal(bot: Bot) -> None:
    assert "connected" in await bot.private(PARROTICA)
    await upload(bot, "customers", CUSTOMERS)
    await bot.private("/template add city Hello {city} friends")
    mark = bot.tg.mark()
    reply = await bot.private("/send parrotica list:customers template:city")
    assert "accepted 3" in reply, reply
    preview = bot.replies_since(mark, USER)[0]
    assert "Personalised: 1 segment per recipient" in preview, preview
    assert "× 3 recipients = 3 SMS parts" in preview, preview
    assert "Personalised: each recipient's text has its own segment count" in reply, reply
    sent = {m.content: m.numbers for m in bot.parrotica.messages.values()}
    assert sent == {
        "Hello Jakarta friends": ["+6281234567890", "+6281234567892"],
        "Hello Bandung friends": ["+6281234567891"],
    }


async def test_a_missing_placeholder_value_is_refused_before_anything_is_stored(
    bot: Bot,
) -> None:
    await bot.connect()
    content = CUSTOMERS + b"6281234567893;;Medan\n6281234567894\n"
    await upload(bot, "customers", content)
    await bot.private("/template add promo Hi {name} from {city}")
    reply = await bot.private("/send nusasms:wa list:customers,6281234567899 template:promo")
    assert "Nothing was sent: the template “promo” lacks values." in reply, reply
    assert "{name}: no value for 3 of 6 recipients" in reply, reply
    assert "+6281234567893, +6281234567894, +6281234567899" in reply, reply
    assert "{city}: no value for 2 of 6 recipients" in reply, reply
    assert "name=…" in reply, reply
    assert bot.nusa.sent == []
    assert await messages(bot) == []
    reply = await bot.private("/send nusasms:wa list:customers template:promo nme=Budi")
    assert "has no placeholder {nme}; it has {name}, {city}" in reply, reply
    reply = await bot.private("/send nusasms:wa list:customers template:promo Hello there")
    assert "“Hello” is not key=value" in reply, reply
    reply = await bot.private("/send nusasms:wa list:customers template:nope")
    assert "There is no template “nope” in this chat. Templates here: promo" in reply, reply
    assert bot.nusa.sent == []
    assert await messages(bot) == []


async def test_a_filled_text_too_long_for_the_route_is_refused(bot: Bot) -> None:
    await bot.connect()
    await bot.private("/template add long {body}")
    reply = await bot.private(f"/send nusasms:wa 6281234567890 template:long body={'x' * 4100}")
    assert "filled template for +6281234567890" in reply, reply
    assert "at most 4096" in reply, reply
    assert bot.nusa.sent == []


async def test_an_email_template_fills_subject_and_body(bot: Bot) -> None:
    assert "connected" in await bot.private(COURIER)
    await bot.private("/template add visit Visit on {day} | Dear {name},\nsee you on {day}.")
    reply = await bot.private(
        "/send courier:email ana@example.com template:visit name=Ana day=Mon"
    )
    assert "courier:email" in reply, reply
    (email,) = bot.courier.emails.values()
    assert email.attributes["subject"] == "Visit on Mon"
    assert email.attributes["message"] == "Dear Ana,\nsee you on Mon."


# -- /schedule keeps the list as it was ------------------------------------------------------


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


async def _replace(bot: Bot, name: str, content: bytes) -> None:
    reply = await upload(bot, name, content)
    assert "exists already" in reply, reply
    markup = bot.tg.calls_to("sendMessage")[-1].params["reply_markup"]
    replace = markup["inline_keyboard"][0][0]
    assert replace["text"] == "Replace"
    await feed(
        bot.app, callback_query(replace["callback_data"], message_chat_id=USER, message_id=1)
    )


async def test_a_schedule_keeps_the_numbers_and_texts_it_was_made_with(sbot: Bot) -> None:
    await upload(sbot, "customers", CUSTOMERS)
    await sbot.private("/template add promo Hi {name}")
    reply = await sbot.private("/schedule in 2h nusasms:wa list:customers template:promo")
    assert "Scheduled send #1" in reply, reply
    assert "3 numbers of list customers as they are now" in reply, reply
    assert "replacing or deleting the list later does not change this send" in reply, reply
    assert "Template promo, filled for each recipient now" in reply, reply
    (row,) = await schedules(sbot)
    assert row.text == "Hi {name}"
    await _replace(sbot, "customers", b"phone,name\n6281234567899,Zed\n")
    await sbot.private("/template add promo Bye {name}")
    await runner_of(sbot).run_due(T0 + timedelta(hours=2))
    assert _sent(sbot) == {
        "6281234567890": "Hi Budi",
        "6281234567891": "Hi Siti",
        "6281234567892": "Hi Ana",
    }
    (row,) = await schedules(sbot)
    assert row.state == ScheduleState.DONE


async def test_a_plain_schedule_to_a_list_and_a_deleted_list(sbot: Bot) -> None:
    await upload(sbot, "customers", CUSTOMERS)
    reply = await sbot.private("/schedule in 1h list:customers,6281234567899 Hello")
    assert "3 numbers of list customers as they are now" in reply, reply
    assert "Template" not in reply
    await sbot.private("/list del customers")
    await runner_of(sbot).run_due(T0 + timedelta(hours=1))
    assert sorted(_sent(sbot)) == [
        "6281234567890",
        "6281234567891",
        "6281234567892",
        "6281234567899",
    ]
    assert set(_sent(sbot).values()) == {"Hello"}
    reply = await sbot.private("/schedule in 1h list:customers Hello")
    assert "There is no list “customers”" in reply, reply


async def test_a_personalised_schedule_handed_to_its_provider(bot: Bot) -> None:
    assert "connected" in await bot.private(PARROTICA)
    await upload(bot, "customers", CUSTOMERS)
    await bot.private("/template add city Hello {city} friends")
    reply = await bot.private("/schedule in 2h parrotica list:customers template:city")
    assert "3 numbers of list customers as they are now" in reply, reply
    sent = {m.content: m.numbers for m in bot.parrotica.messages.values()}
    assert sent == {
        "Hello Jakarta friends": ["+6281234567890", "+6281234567892"],
        "Hello Bandung friends": ["+6281234567891"],
    }
    async with bot.services.repo.db.read() as s:
        (row,) = list(await s.exec(select(Schedule)))
    assert row.provider_ref is not None
    assert len(row.provider_ref.split(",")) == 2  # two provider messages, one per text


async def test_a_template_without_recipients_asks_for_them(bot: Bot) -> None:
    await bot.connect()
    await bot.private("/template add promo Hi")
    for text in ("/send template:promo", "/send nusasms:wa template:promo x=1"):
        reply = await bot.private(text)
        assert "Who gets it? The recipients go before template:" in reply, reply
    assert "Who gets it" in await bot.private("/schedule in 1h template:promo")
    assert bot.nusa.sent == []


async def test_a_photo_goes_to_a_list_with_each_recipients_caption(bot: Bot) -> None:
    await bot.connect()
    await upload(bot, "customers", CUSTOMERS)
    await bot.private("/template add promo Hi {name}, our new menu")
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 60
    bot.tg.add_file(jpeg, file_id="PHOTO", file_path="photos/file_1.jpg")
    photo = photo_message(file_id="PHOTO", file_size=len(jpeg))
    reply = await bot.private("/send nusasms:wa list:customers template:promo", reply_to=photo)
    assert "accepted 3" in reply, reply
    assert {(m.destination, m.caption, m.media) for m in bot.nusa.sent} == {
        ("6281234567890", "Hi Budi, our new menu", jpeg),
        ("6281234567891", "Hi Siti, our new menu", jpeg),
        ("6281234567892", "Hi Ana, our new menu", jpeg),
    }
    assert len(bot.tg.calls_to("getFile")) == 2  # the list's file, then the photo once
