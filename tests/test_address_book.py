"""Address books at the provider, reached through capabilities.

The Parrotica adapter answers with the generic :mod:`providers.base` types and is found by
capability (``AddressBook``, ``ActivityLog``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from providers.base import (
    ActivityEntry,
    ActivityLog,
    AddressBook,
    Contact,
    ContactGroup,
    ContactsPage,
)
from providers.parrotica.adapter import Parrotica, ParroticaSettings, build_parrotica
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER, FakeParrotica

CREDS = {"api_key": DEFAULT_KEY, "user_id": DEFAULT_USER}


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
