"""Address books and activity logs at the providers: /contacts, /groups, /activity.

The provider is picked by capability, never by name: the one the user named, else the first
of the chat's connected providers whose :class:`~providers.base.Capabilities` declare
``address_book`` (or ``activity``). Arguments are checked here, before any request: a page is a
whole number from 1, ``add`` takes a name and a number (normalised with the chat's
``/country``, sent in E.164), ``del`` takes up to :data:`MAX_DELETE` distinct positive ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.services.accounts import Accounts, provider_spec
from bot.services.errors import BadInput, NotConnected, echo
from bot.services.integers import read_id, read_whole
from bot.services.phones import normalise
from i18n import N_, _, ngettext
from providers.base import (
    ActivityEntry,
    ActivityLog,
    AddressBook,
    Capabilities,
    Contact,
    ContactGroup,
    ContactsPage,
    Provider,
)
from providers.registry import REGISTRY, ProviderSpec
from storage.repo import Repository

MAX_DELETE = 100  # ids per /contacts del (one request)
MAX_PAGE = 100_000
MAX_NAME = 100
ADD_USAGE = N_(
    "Usage: /contacts add &lt;name&gt; &lt;number&gt; (a name with spaces may be quoted)"
)
DEL_USAGE = N_("Usage: /contacts del &lt;id&gt;[,&lt;id&gt;…]")
_QUOTED = re.compile(r"""^(["'“‘])(?P<name>.*?)["'”’](?:\s+(?P<rest>.*))?$""", re.DOTALL)
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True, slots=True)
class Feature:
    """A capability the use-cases need, and how to word it in a reply."""

    declared: Callable[[Capabilities], bool]
    noun: str  # "address book", marked with N_ and translated where a reply names it

    @property
    def what(self) -> str:
        """The noun in the current language, for a sentence."""
        return _(self.noun)


ADDRESS_BOOK = Feature(lambda c: c.address_book, N_("address book"))
ACTIVITY = Feature(lambda c: c.activity, N_("activity log"))


@dataclass(frozen=True, slots=True)
class ContactListing:
    """One page of a provider's contacts."""

    provider: ProviderSpec
    page: ContactsPage


@dataclass(frozen=True, slots=True)
class ContactAdded:
    """A contact was added; ``contact`` when the provider returned it."""

    provider: ProviderSpec
    name: str
    number: str  # E.164, as sent
    contact: Contact | None


@dataclass(frozen=True, slots=True)
class ContactsDeleted:
    """Contacts were deleted at the provider."""

    provider: ProviderSpec
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupListing:
    """A provider's contact groups."""

    provider: ProviderSpec
    groups: list[ContactGroup]


@dataclass(frozen=True, slots=True)
class ActivityListing:
    """A provider account's recent activity."""

    provider: ProviderSpec
    entries: list[ActivityEntry]


def offered_by(feature: Feature) -> list[ProviderSpec]:
    """The providers whose adapters declare ``feature``, in registry order."""
    return [s for s in REGISTRY.values() if feature.declared(s.capabilities)]


def _offer(feature: Feature) -> str:
    specs = offered_by(feature)
    if not specs:
        return _("No provider this bot knows offers an {feature}.").format(feature=feature.what)
    names = ", ".join(s.display for s in specs)
    return ngettext(
        "{names} offers an {feature}: an admin can connect it with /connect {name}.",
        "{names} offer an {feature}: an admin can connect it with /connect {name}.",
        len(specs),
    ).format(names=names, feature=feature.what, name=specs[0].name)


def split_provider(body: str) -> tuple[str | None, str]:
    """A leading provider name (``<provider> 2``) and the rest of the arguments."""
    head, _sep, rest = body.strip().partition(" ")
    if head.lower() in REGISTRY:
        return head.lower(), rest.strip()
    return None, body.strip()


def parse_page(text: str) -> int:
    """A page number, 1 when none is given.

    Raises:
        BadInput: when it is not a whole number from 1.

    """
    raw = text.strip()
    if not raw:
        return 1
    page = read_whole(raw)
    if page is None or not 1 <= page <= MAX_PAGE:
        raise BadInput(
            _(
                "“{page}” is not a page number: pages are whole numbers from 1, e.g. /contacts 2."
            ).format(page=echo(raw))
        )
    return page


def parse_new_contact(text: str) -> tuple[str, str]:
    """``<name> <number>`` (or ``"<name>" <number>``) into the name and the number as typed.

    Without quotes the last word is the number and every word before it the name; with quotes
    the number is everything after the closing quote (so it may contain spaces).

    Raises:
        BadInput: when the name or the number is missing, or the name is too long.

    """
    body = text.strip()
    if not body:
        raise BadInput(_("Name the contact and its number.") + " " + _(ADD_USAGE))
    quoted = _QUOTED.match(body)
    if quoted:
        name, number = quoted.group("name").strip(), (quoted.group("rest") or "").strip()
    else:
        name, _sep, number = body.rpartition(" ")
        if not any(ch.isdigit() for ch in number):  # words only: a name without a number
            name, number = body, ""
    name = " ".join(name.split())
    if not number:
        raise BadInput(_("“{name}” needs a number.").format(name=echo(name)) + " " + _(ADD_USAGE))
    if not name:
        raise BadInput(
            _("The number {number} needs a name.").format(number=echo(number)) + " " + _(ADD_USAGE)
        )
    if len(name) > MAX_NAME:
        raise BadInput(
            _("A contact name has at most {limit} characters ({given} given).").format(
                limit=MAX_NAME, given=len(name)
            )
        )
    return name, number


def parse_ids(text: str) -> tuple[int, ...]:
    """Distinct positive contact ids, in the order given (commas or spaces between them).

    Raises:
        BadInput: for an empty list, an id that is not a positive whole number, or more than
            :data:`MAX_DELETE` distinct ids.

    """
    tokens = [t for t in _SEPARATORS.split(text.strip()) if t]
    if not tokens:
        raise BadInput(_("Name the contacts to delete.") + " " + _(DEL_USAGE))
    ids: list[int] = []
    for token in tokens:
        contact_id = read_id(token)
        if contact_id is None:
            raise BadInput(
                _(
                    "“{token}” is not a contact id: ids are positive whole numbers, as "
                    "/contacts lists them. Nothing was deleted."
                ).format(token=echo(token))
                + " "
                + _(DEL_USAGE)
            )
        ids.append(contact_id)
    distinct = tuple(dict.fromkeys(ids))
    if len(distinct) > MAX_DELETE:
        raise BadInput(
            _(
                "At most {limit} contacts per /contacts del ({given} given). Nothing was deleted."
            ).format(limit=MAX_DELETE, given=len(distinct))
        )
    return distinct


class AddressBooks:
    """Use-cases for the address books and activity logs providers keep."""

    def __init__(self, repo: Repository, accounts: Accounts) -> None:
        self._repo = repo
        self._accounts = accounts

    async def contacts(
        self, chat_id: int, page: str = "", *, provider: str | None = None
    ) -> ContactListing:
        """One page of contacts (``page`` as typed; empty means 1)."""
        number = parse_page(page)
        spec, book = await self._address_book(chat_id, provider)
        return ContactListing(spec, await book.contacts(number))

    async def add_contact(
        self,
        chat_id: int,
        text: str,
        *,
        country: str | None,
        actor: int,
        provider: str | None = None,
    ) -> ContactAdded:
        """Add ``<name> <number>`` (as typed) to the address book; audited."""
        name, typed = parse_new_contact(text)
        try:
            number = normalise(typed, country=country).e164
        except BadInput as exc:
            if any(ch.isdigit() for ch in name.rsplit(" ", 1)[-1]):  # "+62 812 3456 7890"
                raise BadInput(
                    exc.message
                    + " "
                    + _(
                        "Write the number without spaces, or quote the name: "
                        '/contacts add "Budi Santoso" +62 812 3456 7890.'
                    )
                ) from exc
            raise
        spec, book = await self._address_book(chat_id, provider)
        contact = await book.add_contact(name, number)
        detail = f"{spec.name}: {name} {number}"
        if contact is not None:
            detail += f" (id {contact.id})"
        await self._repo.audit(chat_id, actor, "contacts add", detail)  # i18n: not shown
        return ContactAdded(spec, name, number, contact)

    async def delete_contacts(
        self, chat_id: int, text: str, *, actor: int, provider: str | None = None
    ) -> ContactsDeleted:
        """Delete ``<id>[,<id>…]`` (as typed) in one request; audited."""
        ids = parse_ids(text)
        spec, book = await self._address_book(chat_id, provider)
        await book.delete_contacts(ids)
        await self._repo.audit(
            chat_id,
            actor,
            "contacts del",  # i18n: not shown
            f"{spec.name}: {', '.join(map(str, ids))}",
        )
        return ContactsDeleted(spec, ids)

    async def groups(self, chat_id: int, *, provider: str | None = None) -> GroupListing:
        """The contact groups."""
        spec, book = await self._address_book(chat_id, provider)
        return GroupListing(spec, await book.groups())

    async def activity(self, chat_id: int, *, provider: str | None = None) -> ActivityListing:
        """The account's recent activity."""
        spec, adapter = await self._adapter(chat_id, provider, ACTIVITY)
        if not isinstance(adapter, ActivityLog):
            raise _undeclared(spec, ACTIVITY)
        return ActivityListing(spec, await adapter.activity())

    async def _address_book(
        self, chat_id: int, provider: str | None
    ) -> tuple[ProviderSpec, AddressBook]:
        spec, adapter = await self._adapter(chat_id, provider, ADDRESS_BOOK)
        if not isinstance(adapter, AddressBook):
            raise _undeclared(spec, ADDRESS_BOOK)
        return spec, adapter

    async def _adapter(
        self, chat_id: int, provider: str | None, feature: Feature
    ) -> tuple[ProviderSpec, Provider]:
        """The named provider's adapter, else the first connected one offering ``feature``.

        Raises:
            BadInput: when the named provider does not offer it.
            NotConnected: when it is not connected, or no connected provider offers it; the
                reply names the providers that do.

        """
        if provider:
            spec = provider_spec(provider)
            if not feature.declared(spec.capabilities):
                raise BadInput(
                    _("{provider} has no {feature}.").format(
                        provider=spec.display, feature=feature.what
                    )
                    + " "
                    + _offer(feature)
                )
        else:
            connected = [REGISTRY.get(c.provider) for c in await self._accounts.connected(chat_id)]
            usable = [s for s in connected if s is not None and feature.declared(s.capabilities)]
            if not usable:
                raise NotConnected(
                    _("No provider connected in this chat offers an {feature}.").format(
                        feature=feature.what
                    )
                    + " "
                    + _offer(feature)
                )
            spec = usable[0]
        return spec, await self._accounts.adapter(chat_id, spec)


def _undeclared(spec: ProviderSpec, feature: Feature) -> BadInput:
    # The capability is declared but the adapter lacks the methods: a bug, said plainly.
    return BadInput(
        _("{provider} declares an {feature} but its adapter does not offer it.").format(
            provider=spec.display, feature=feature.what
        )
    )
