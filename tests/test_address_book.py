"""/contacts, /groups and /activity through the real Application and the Parrotica fake.

Also the provider layer underneath: the Parrotica adapter answers with the generic
:mod:`providers.base` types and is found by capability (``AddressBook``, ``ActivityLog``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from sqlmodel import col, select

from bot.services.address_book import ADDRESS_BOOK as BOOK_FEATURE
from bot.services.address_book import MAX_DELETE, offered_by, parse_ids, parse_new_contact
from bot.services.errors import BadInput
from providers.base import (
    ActivityEntry,
    ActivityLog,
    AddressBook,
    Contact,
    ContactGroup,
    ContactsPage,
)
from providers.parrotica.adapter import Parrotica, ParroticaSettings, build_parrotica
from providers.registry import REGISTRY
from storage.models import AuditEntry
from tests.conftest import GROUP, USER, Bot
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER, FakeParrotica

CONNECT = f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"
CREDS = {"api_key": DEFAULT_KEY, "user_id": DEFAULT_USER}
MEMBER = 7  # a group member without a role: an operator


async def _connected(bot: Bot) -> None:
    reply = await bot.private(CONNECT)
    assert "connected" in reply, reply


async def _audit(bot: Bot, chat_id: int = USER) -> list[AuditEntry]:
    async with bot.services.repo.db.read() as s:
        rows = await s.exec(
            select(AuditEntry)
            .where(col(AuditEntry.chat_id) == chat_id)
            .order_by(col(AuditEntry.id))
        )
        return [r for r in rows if r.action.startswith("contacts")]


# -- the provider layer ------------------------------------------------------------------------


@pytest.fixture
async def adapter() -> AsyncIterator[tuple[Parrotica, FakeParrotica]]:
    fake = FakeParrotica()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield build_parrotica(http, CREDS, settings=ParroticaSettings()), fake


async def test_the_adapter_answers_with_generic_types(
    adapter: tuple[Parrotica, FakeParrotica],
) -> None:
    parrotica, fake = adapter
    assert isinstance(parrotica, AddressBook)
    assert isinstance(parrotica, ActivityLog)
    page = await parrotica.contacts(1)
    assert page == ContactsPage(
        items=(
            Contact(1, "Ada Lovelace", "+15550000001"),
            Contact(2, "Grace Hopper", "+15550000002"),
        ),
        page=1,
        has_more=False,
        total=2,
    )
    added = await parrotica.add_contact("Alan Turing", "+15550000003")
    assert added == Contact(3, "Alan Turing", "+15550000003")
    assert await parrotica.groups() == [ContactGroup(4004, "Customers", 2)]
    await parrotica.delete_contacts([1, 2])
    assert sorted(fake.contacts) == [3]
    entries = await parrotica.activity()
    assert [(e.action, e.description) for e in entries] == [
        ("contact.create", "Contact 3 added"),
        ("contact.delete", "2 contact(s) deleted"),
    ]
    assert all(isinstance(e, ActivityEntry) and isinstance(e.at, datetime) for e in entries)


def test_capabilities_come_from_the_registry() -> None:
    assert [s.name for s in offered_by(BOOK_FEATURE)] == [
        s.name for s in REGISTRY.values() if s.capabilities.address_book
    ]
    assert "parrotica" in [s.name for s in offered_by(BOOK_FEATURE)]


# -- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ada Lovelace +15550000001", ("Ada Lovelace", "+15550000001")),
        ('"Ada  Lovelace" +1 555 000 0001', ("Ada Lovelace", "+1 555 000 0001")),
        ("“Grace Hopper” 08123456789", ("Grace Hopper", "08123456789")),
        ("Alan 0812", ("Alan", "0812")),
    ],
)
def test_a_new_contact_is_a_name_then_a_number(text: str, expected: tuple[str, str]) -> None:
    assert parse_new_contact(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Name the contact"),
        ("+15550000001", "needs a name"),
        ('"" +15550000001', "needs a name"),
        ("Ada Lovelace", "needs a number"),
        ('"Ada Lovelace"', "needs a number"),
        ("x" * 101 + " +15550000001", "at most 100 characters"),
    ],
)
def test_a_new_contact_without_a_part_is_refused(text: str, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        parse_new_contact(text)


def test_ids_are_distinct_positive_integers_at_most_a_hundred() -> None:
    assert parse_ids("3, 1 #2,3") == (3, 1, 2)
    assert len(parse_ids(",".join(str(i % MAX_DELETE + 1) for i in range(500)))) == MAX_DELETE
    for bad in ("abc", "0", "-1", "1.5", "1e3", "²"):
        with pytest.raises(BadInput, match="is not a contact id"):
            parse_ids(f"1,{bad}")
    with pytest.raises(BadInput, match="At most 100"):
        parse_ids(",".join(str(i) for i in range(1, 102)))
    with pytest.raises(BadInput, match="Name the contacts"):
        parse_ids(" , ")


# -- from the chat -----------------------------------------------------------------------------


async def test_contacts_are_listed_a_page_at_a_time(bot: Bot) -> None:
    await _connected(bot)
    for i in range(25):  # the fake pages by 20
        bot.parrotica.add_contact(f"Person <{i}>", f"+1555100{i:04d}")
    first = await bot.private("/contacts")
    assert "Parrotica contacts · page 1 · 27 contacts" in first, first
    assert "1 Ada Lovelace · +15550000001" in first
    assert "Person <0>" in first  # escaped on the way out, shown as typed
    assert "Next page: /contacts 2" in first
    second = await bot.private("/contacts 2")
    assert "page 2" in second, second
    assert "Person <24>" in second
    assert "Next page" not in second
    empty = await bot.private("/contacts 3")
    assert "Page 3 of the Parrotica address book is empty (27 contacts in all)" in empty, empty
    assert "/contacts 1 shows the first page" in empty
    assert "page 2" in await bot.private("/contacts parrotica 2")  # the provider may be named


async def test_a_second_page_of_two_contacts_is_empty(bot: Bot) -> None:
    await _connected(bot)
    first = await bot.private("/contacts 1")
    assert "Grace Hopper" in first, first
    assert "Next page" not in first
    assert "Page 2 of the Parrotica address book is empty" in await bot.private("/contacts 2")


async def test_an_empty_address_book_says_so(bot: Bot) -> None:
    await _connected(bot)
    bot.parrotica.contacts.clear()
    reply = await bot.private("/contacts")
    assert "There are no contacts in the Parrotica address book yet" in reply, reply


@pytest.mark.parametrize("page", ["0", "-1", "two", "1.5", "99999999"])
async def test_a_bad_page_is_refused_before_any_request(bot: Bot, page: str) -> None:
    await _connected(bot)
    reply = await bot.private(f"/contacts {page}")
    assert "is not a page number" in reply, reply
    assert not bot.parrotica.requests_to("contacts", "GET")


async def test_add_normalises_the_number_and_is_audited(bot: Bot) -> None:
    await _connected(bot)
    await bot.private("/country ID")
    reply = await bot.private("/contacts add Budi <Santoso> 0812-3456-7890")
    assert "Added Budi <Santoso> (+6281234567890)" in reply, reply
    assert "as contact 3" in reply
    assert "contact:3" in reply
    assert bot.parrotica.json_body(
        bot.parrotica.requests.index(bot.parrotica.requests_to("contacts", "POST")[0])
    ) == {"fullName": "Budi <Santoso>", "number": "+6281234567890"}
    (row,) = await _audit(bot)
    assert (row.action, row.user_id) == ("contacts add", USER)
    assert row.detail == "parrotica: Budi <Santoso> +6281234567890 (id 3)"


async def test_add_with_a_bad_number_or_no_name_sends_nothing(bot: Bot) -> None:
    await _connected(bot)
    assert "not a valid phone number" in await bot.private("/contacts add Ada +1555")
    assert "national number" in await bot.private("/contacts add Ada 0812345678")
    assert "needs a name" in await bot.private("/contacts add +15550000009")
    assert "needs a number" in await bot.private("/contacts add Ada Lovelace")
    assert "Usage: /contacts add" in await bot.private("/contacts add")
    assert not bot.parrotica.requests_to("contacts", "POST")
    assert await _audit(bot) == []


async def test_a_duplicate_number_gets_parroticas_message(bot: Bot) -> None:
    await _connected(bot)
    bot.parrotica.add_contact("Budi", "+6281234567890")
    reply = await bot.private("/contacts add Budi Again +62 812 3456 7890")
    assert "Write the number without spaces, or quote the name" in reply, reply
    reply = await bot.private('/contacts add "Budi Again" +62 812 3456 7890')
    assert "already exists" in reply, reply
    assert await _audit(bot) == []


async def test_delete_one_and_several(bot: Bot) -> None:
    await _connected(bot)
    alan = bot.parrotica.add_contact("Alan Turing", "+15550000003")
    reply = await bot.private(f"/contacts del {alan.id}")
    assert "Deleted 1 contact from the Parrotica address book: 3." in reply, reply
    reply = await bot.private("/contacts del 1,2,1")
    assert "Deleted 2 contacts from the Parrotica address book: 1, 2." in reply, reply
    assert bot.parrotica.json_body() == {"ids": [1, 2]}  # one request, de-duplicated
    assert bot.parrotica.contacts == {}
    assert [r.detail for r in await _audit(bot)] == ["parrotica: 3", "parrotica: 1, 2"]


async def test_delete_of_an_unknown_id_gets_parroticas_message(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/contacts del 1,777")
    assert "contact not found: 777" in reply, reply
    assert sorted(bot.parrotica.contacts) == [1, 2]  # nothing deleted
    assert await _audit(bot) == []


async def test_delete_of_a_non_numeric_id_gets_a_specific_reply(bot: Bot) -> None:
    await _connected(bot)
    reply = await bot.private("/contacts del 1,ada")
    assert "“ada” is not a contact id" in reply, reply
    assert "Nothing was deleted" in reply
    assert "Name the contacts to delete" in await bot.private("/contacts del")
    assert not bot.parrotica.requests_to("contacts", "DELETE")


async def test_groups(bot: Bot) -> None:
    await _connected(bot)
    bot.parrotica.add_group("VIP & friends", [1])
    reply = await bot.private("/groups")
    assert "Parrotica contact groups" in reply, reply
    assert "4004 Customers · 2 contacts" in reply
    assert "VIP & friends · 1 contact" in reply
    assert "group:<id>" in reply
    bot.parrotica.groups.clear()
    assert "no contact groups" in await bot.private("/groups parrotica")


async def test_activity_in_the_chats_time_zone(bot: Bot) -> None:
    await _connected(bot)
    assert "No recent activity on the Parrotica account" in await bot.private("/activity")
    bot.parrotica.activity.append(
        {
            "id": 90,
            "action": "contact.create",
            "description": "Contact <b>9</b> added",
            "createdAt": "2026-01-02T03:04:05.000+00:00",
        }
    )
    await bot.private("/timezone Asia/Jakarta")
    reply = await bot.private("/activity parrotica")
    assert "Parrotica activity" in reply, reply
    assert "2026-01-02 10:04:05 contact.create Contact <b>9</b> added" in reply, reply


async def test_a_chat_without_an_address_book_is_told_who_offers_one(bot: Bot) -> None:
    reply = await bot.private("/contacts")
    assert "No provider connected in this chat offers an address book" in reply, reply
    assert "Parrotica offers an address book" in reply
    assert "/connect parrotica" in reply
    await bot.connect()  # NusaSMS has none
    assert "offers an address book" in await bot.private("/groups")
    assert "offers an activity log" in await bot.private("/activity")
    reply = await bot.private("/groups nusasms")
    assert "NusaSMS has no address book" in reply, reply
    assert "not connected" in await bot.private("/activity parrotica")
    assert "Unknown provider" in await bot.private("/activity acme")
    assert not bot.parrotica.requests


async def test_refused_credentials_midway_reach_the_chat(bot: Bot) -> None:
    await _connected(bot)
    assert "Ada Lovelace" in await bot.private("/contacts")
    bot.parrotica.api_key = "rotated"  # the key was revoked at Parrotica
    reply = await bot.private("/contacts add Alan +6281234567891")
    assert "Parrotica refused the credentials" in reply, reply
    assert "refused the credentials" in await bot.private("/contacts 2")
    bot.parrotica.fail_next(401, path_contains="/group/")
    bot.parrotica.api_key = DEFAULT_KEY
    assert "refused the credentials" in await bot.private("/groups")
    assert "Customers" in await bot.private("/groups")
    assert await _audit(bot) == []


async def _group_with_parrotica(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {USER}
    await bot.group("/role")  # registers the group
    await bot.services.accounts.connect(GROUP, "parrotica", CREDS, actor=USER)


async def test_in_a_group_operators_list_and_admins_change(bot: Bot) -> None:
    await _group_with_parrotica(bot)
    assert "Ada Lovelace" in await bot.group("/contacts", user_id=MEMBER)
    assert "Customers" in await bot.group("/groups", user_id=MEMBER)
    reply = await bot.group("/contacts add Alan +6281234567891", user_id=MEMBER)
    assert "/contacts add needs the admin role in this chat; you are operator" in reply, reply
    reply = await bot.group("/contacts del 1", user_id=MEMBER)
    assert "/contacts del needs the admin role" in reply, reply
    assert "/contacts del needs the admin role" in await bot.group(
        "/contacts del abc", user_id=MEMBER
    )  # the role is checked before the arguments
    assert not bot.parrotica.requests_to("contacts", "POST")
    assert not bot.parrotica.requests_to("contacts", "DELETE")
    assert "Added Alan" in await bot.group("/contacts add Alan +6281234567891")
    assert "Deleted 1 contact" in await bot.group("/contacts del 3")
    assert [(r.user_id, r.action) for r in await _audit(bot, GROUP)] == [
        (USER, "contacts add"),
        (USER, "contacts del"),
    ]


async def test_viewers_list_but_do_not_change(bot: Bot) -> None:
    await _group_with_parrotica(bot)
    await bot.group(f"/role {MEMBER} viewer")
    assert "Grace Hopper" in await bot.group("/contacts 1", user_id=MEMBER)
    assert "activity" in await bot.group("/activity", user_id=MEMBER)
    reply = await bot.group("/contacts add Alan +6281234567891", user_id=MEMBER)
    assert "needs the admin role in this chat; you are viewer" in reply, reply


async def test_help_lists_the_commands_by_role(bot: Bot) -> None:
    await _group_with_parrotica(bot)
    await bot.group(f"/role {MEMBER} viewer")
    viewer_help = await bot.group("/help", user_id=MEMBER)
    assert "/contacts" in viewer_help
    assert "/groups" in viewer_help
    assert "/activity" in viewer_help
