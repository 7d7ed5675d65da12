"""Recipient lists through the real Application: /list add from a file, Replace / Keep, del.

Files are served by the fake Telegram (getFile + download), so a refusal "before the
download" is checked by the absence of a getFile call.
"""

from __future__ import annotations

import re
import time

import pytest

from bot.services import list_files
from tests.conftest import GROUP, USER, Bot
from tests.fakes.telegram import callback_query, feed, photo_message
from tests.lists_support import entries, list_rows, upload

NUMBERS_TXT = b"6281234567890\n+62 812-3456-7891\n\n0812 3456 7892\n"


async def _press(bot: Bot, data: str, *, chat_id: int = USER, user_id: int = USER) -> str:
    """Press a button; the text its message was edited to (and anything posted)."""
    mark = bot.tg.mark()
    await feed(
        bot.app, callback_query(data, message_chat_id=chat_id, message_id=1, user_id=user_id)
    )
    edits = [
        re.sub(r"<[^>]+>", "", str(c.params["text"]))
        for c in bot.tg.calls[mark:]
        if c.method == "editMessageText"
    ]
    return "\n".join([*edits, *bot.replies_since(mark, chat_id)])


def _buttons(bot: Bot) -> dict[str, str]:
    markup = bot.tg.calls_to("sendMessage")[-1].params.get("reply_markup")
    assert markup, "the reply has no buttons"
    return {b["text"]: b["callback_data"] for b in markup["inline_keyboard"][0]}


async def test_a_txt_file_becomes_a_list(bot: Bot) -> None:
    await bot.private("/country ID")
    reply = await upload(bot, "Customers", NUMBERS_TXT, file_name="numbers.txt", mime_type="")
    assert "List customers stored" in reply, reply
    assert "3 numbers from 3 lines" in reply, reply
    assert [e.number for e in await entries(bot, "customers")] == [
        "+6281234567890",
        "+6281234567891",
        "+6281234567892",
    ]
    listing = await bot.private("/lists")
    assert "list:customers — 3 numbers · columns: none · updated" in listing, listing


async def test_a_csv_with_semicolons_and_a_bom_keeps_its_columns(bot: Bot) -> None:
    await bot.private("/country ID")
    content = (
        "\ufeffName;PHONE;City\r\n"
        "Budi;0812-3456-7890;Jakarta\r\n"
        '"Siti; Jr";+6281234567891;\r\n'
        "Ana;6281234567892;Bandung\r\n"
    ).encode()
    reply = await upload(bot, "customers", content)
    assert "3 numbers from 3 lines; columns kept: Name, City" in reply, reply
    stored = await entries(bot, "customers")
    assert [(e.number, e.cells) for e in stored] == [
        ("+6281234567890", {"Name": "Budi", "City": "Jakarta"}),
        ("+6281234567891", {"Name": "Siti; Jr"}),  # an empty cell is not kept
        ("+6281234567892", {"Name": "Ana", "City": "Bandung"}),
    ]
    assert "columns: Name, City" in await bot.private("/lists")


async def test_a_comma_csv_with_a_number_column(bot: Bot) -> None:
    reply = await upload(bot, "team", b"number,first name\n6281234567890,Budi\n")
    assert "1 number from 1 line; columns kept: first name" in reply, reply


async def test_invalid_and_duplicate_lines_are_reported_first_few_then_counted(bot: Bot) -> None:
    lines = ["6281234567890", "not a number", "6281234567891"]
    lines += [f"bad{i}" for i in range(7)]  # 8 invalid lines in all
    lines += ["+62 812 3456 7890", "6281234567891", "0812345", "6281234567891"]
    reply = await upload(bot, "mixed", "\n".join(lines).encode(), file_name="m.txt")
    assert "2 numbers from 14 lines" in reply, reply
    assert "Invalid lines, not stored (9):" in reply, reply
    assert "line 2: “not a number” is not a phone number." in reply, reply
    assert "…and 4 more." in reply, reply
    assert "Duplicate lines, stored once (3):" in reply, reply
    assert "line 11: +6281234567890 (as line 1)" in reply, reply
    assert "line 14: +6281234567891 (as line 3)" in reply, reply
    # 0812345 is a national number and the chat has no country: the reply says how to fix it
    assert "set it with /country" in reply, reply
    assert len(await entries(bot, "mixed")) == 2


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "The file is empty"),
        (b"\n \n\n", "The file is empty"),
        (b"phone\n\n", "only a header"),
        (b"name;city\nBudi;Jakarta\n", "one of them must be number or phone"),
        (b"hello\nworld\n", "None of the file's 2 lines holds a valid number"),
        (b"6281234567890\n628123456789\xe9\n", "not UTF-8 text (line 2"),
        ("\ufeffphone\n6281234567890\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04rest of a workbook", "workbook"),
        (b"phone;phone\n6281234567890;1\n", "Two columns are called"),
    ],
)
async def test_files_that_hold_no_list_store_nothing(bot: Bot, content: bytes, says: str) -> None:
    reply = await upload(bot, "x", content)
    assert says in reply, reply
    assert "Nothing was stored" in reply or "nothing was stored" in reply, reply
    assert await list_rows(bot) == []
    assert "no recipient lists" in await bot.private("/lists")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"file_name": "numbers.xlsx", "mime_type": "application/vnd.ms-excel"}, "not a .csv"),
        ({"file_name": "numbers.pdf", "mime_type": "application/pdf"}, "not a .csv"),
        ({"size": 25 * 1024 * 1024}, "The file is 25 MB"),
    ],
)
async def test_wrong_files_are_refused_before_the_download(
    bot: Bot, kwargs: dict[str, object], says: str
) -> None:
    reply = await upload(bot, "x", b"6281234567890\n", **kwargs)  # type: ignore[arg-type]
    assert says in reply, reply
    assert not bot.tg.calls_to("getFile")
    assert await list_rows(bot) == []


async def test_add_needs_a_reply_to_a_document_and_a_good_name(bot: Bot) -> None:
    assert "as a reply to the .csv or .txt file" in await bot.private("/list add customers")
    photo = photo_message()
    assert "as a reply to the .csv or .txt file" in await bot.private(
        "/list add customers", reply_to=photo
    )
    reply = await upload(bot, "Bad.Name", NUMBERS_TXT)
    assert "“Bad.Name” is not a list name" in reply, reply
    assert "Usage" in await upload(bot, "two words", NUMBERS_TXT)
    assert "Usage" in await bot.private("/list rename x")
    assert not bot.tg.calls_to("getFile")


async def test_more_than_100000_lines_are_refused(bot: Bot) -> None:
    content = "\n".join(f"62812{i:08d}" for i in range(100_002)).encode()
    reply = await upload(bot, "huge", content, file_name="huge.txt")
    assert "more than 100,000 lines" in reply, reply
    assert await list_rows(bot) == []


async def test_a_line_over_the_limit_found_while_storing_drops_what_was_stored(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The count of lines allows for a header; without one, the last line is over the limit.
    monkeypatch.setattr(list_files, "MAX_LINES", 3)
    reply = await upload(
        bot, "huge", b"6281234567890\n6281234567891\n6281234567892\n628123456789\n"
    )
    # The message names the limit in force (read when it is written, in the chat's language).
    assert "more than 3 lines" in reply, reply
    assert await list_rows(bot) == []


async def test_a_100000_line_csv_is_stored_in_seconds(bot: Bot) -> None:
    content = ("phone,name\n" + "".join(f"62812{i:08d},n{i}\n" for i in range(100_000))).encode()
    started = time.perf_counter()
    reply = await upload(bot, "everyone", content)
    took = time.perf_counter() - started
    assert "100,000 numbers from 100,000 lines; columns kept: name" in reply, reply
    (row,) = await list_rows(bot)
    assert (row.ready, row.size, row.columns) == (True, 100_000, ["name"])
    print(f"100,000-line upload: {took:.2f} s")  # seen with -s; the figure goes in the README


async def test_replacing_a_list_asks_first_and_a_second_press_does_nothing(bot: Bot) -> None:
    await upload(bot, "customers", b"6281234567890\n6281234567891\n")
    reply = await upload(bot, "customers", b"6281234567892\n6281234567893\n6281234567894\n")
    assert "A list customers exists already: 2 numbers" in reply, reply
    assert "Replace customers with it?" in reply, reply
    buttons = _buttons(bot)
    assert set(buttons) == {"Replace", "Keep"}
    assert "2 numbers" in await bot.private("/lists")  # nothing changes before the press
    said = await _press(bot, buttons["Replace"])
    assert "List customers replaced by @alice: 3 numbers (it had 2)" in said, said
    said = await _press(bot, buttons["Replace"])
    assert "was replaced already" in said, said
    said = await _press(bot, buttons["Keep"])
    assert "was replaced already" in said, said
    assert [e.number for e in await entries(bot, "customers")] == [
        "+6281234567892",
        "+6281234567893",
        "+6281234567894",
    ]
    assert len(await list_rows(bot)) == 1


async def test_keep_leaves_the_list_and_drops_the_upload(bot: Bot) -> None:
    await upload(bot, "customers", b"6281234567890\n")
    await upload(bot, "customers", b"6281234567892\n6281234567893\n")
    buttons = _buttons(bot)
    said = await _press(bot, buttons["Keep"])
    assert "kept as it was (1 number)" in said, said
    assert "was kept already" in await _press(bot, buttons["Replace"])
    assert [e.number for e in await entries(bot, "customers")] == ["+6281234567890"]
    assert len(await list_rows(bot)) == 1  # the waiting upload is gone with its numbers


async def test_delete_and_unknown_names(bot: Bot) -> None:
    await upload(bot, "customers", NUMBERS_TXT.replace(b"0812 3456 7892\n", b""))
    await upload(bot, "staff", b"6281234567899\n")
    reply = await bot.private("/list del nobody")
    assert "There is no list “nobody” in this chat. Lists here: customers, staff" in reply, reply
    reply = await bot.private("/list del Customers")
    assert "List customers deleted (2 numbers)" in reply, reply
    listing = await bot.private("/lists")
    assert "customers" not in listing
    assert "list:staff — 1 number" in listing
    assert "list:staff" in await bot.private("/list")  # /list alone lists them too


async def test_lists_belong_to_their_chat(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await upload(bot, "customers", b"6281234567890\n")
    assert "no recipient lists" in await bot.group("/lists")
    reply = await bot.group("/list del customers")
    assert "this chat has no lists yet" in reply, reply


async def test_a_viewer_reads_lists_but_cannot_add_them(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role 7 viewer")
    await upload(bot, "customers", b"6281234567890\n", group=True)
    reply = await upload(bot, "mine", b"6281234567891\n", group=True, user_id=7)
    assert "/list add needs the admin role in this chat; you are viewer" in reply, reply
    assert "list:customers — 1 number" in await bot.group("/lists", user_id=7)
    assert "/list del needs the admin role" in await bot.group("/list del customers", user_id=7)
    assert len(await list_rows(bot)) == 1
