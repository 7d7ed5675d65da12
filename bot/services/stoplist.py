"""The stoplist: numbers a chat never sends to, and the filter every send goes through.

Numbers are compared in E.164: what ``/stop`` is given is read like any recipient (with the
chat's ``/country``), and a send's phone recipients are stored as E.164 digits. The filter
(:func:`drop_stopped`) runs where a send is made from what the chat typed (the send path, so
``/send``, failover and every fired schedule) and when a schedule is made (so its stored
recipients already leave stopped numbers out); a number stopped after scheduling is skipped
when the run fires. Skipped recipients are never silent: the card or the reply counts them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.services.errors import BadInput, echo
from bot.services.phones import normalise
from i18n import _, ngettext
from providers.registry import Route
from storage.models import StopEntry
from storage.repo import Repository
from storage.stoplist import StopList

MAX_PER_COMMAND = 1000
SHOWN = 5
LISTED = 50
_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StopChange:
    """What a /stop or /unstop did: the numbers changed and those already as asked."""

    changed: list[str]
    unchanged: list[str]


@dataclass(frozen=True, slots=True)
class StopListing:
    """A chat's stoplist: how many numbers, and the first ones."""

    total: int
    entries: list[StopEntry]


def e164_of(recipient: str) -> str | None:
    """A stored phone recipient (E.164 digits, with or without ``+``) as E.164; else None."""
    text = recipient.strip()
    return "+" + text.lstrip("+") if _NUMBER.match(text) else None


def skipped_note(stopped: Sequence[str]) -> str:
    """Plain text saying which recipients the stoplist removed (cards, replies, run notes)."""
    count = len(stopped)
    shown = ", ".join(stopped[:SHOWN])
    if count > SHOWN:
        return ngettext(
            "{count} recipient skipped, on this chat's stoplist: {shown} and {more} more",
            "{count} recipients skipped, on this chat's stoplist: {shown} and {more} more",
            count,
        ).format(count=count, shown=shown, more=count - SHOWN)
    return ngettext(
        "{count} recipient skipped, on this chat's stoplist: {shown}",
        "{count} recipients skipped, on this chat's stoplist: {shown}",
        count,
    ).format(count=count, shown=shown)


def all_stopped(count: int, *, doing: str = "sent") -> str:
    """The refusal when every recipient of a send is stopped (HTML-safe)."""
    if doing == "scheduled":
        refusal = ngettext(
            "Nothing was scheduled: The recipient is on this chat's stoplist "
            "(/stoplist; /unstop removes).",
            "Nothing was scheduled: All {count} recipients are on this chat's stoplist "
            "(/stoplist; /unstop removes).",
            count,
        )
    else:
        refusal = ngettext(
            "Nothing was sent: The recipient is on this chat's stoplist "
            "(/stoplist; /unstop removes).",
            "Nothing was sent: All {count} recipients are on this chat's stoplist "
            "(/stoplist; /unstop removes).",
            count,
        )
    return refusal.format(count=count)


async def drop_stopped(
    store: StopList,
    chat_id: int,
    route: Route,
    recipients: Sequence[tuple[str, T]],
    *,
    doing: str = "sent",
) -> tuple[list[tuple[str, T]], list[str]]:
    """The recipients (with what goes with each) not on the stoplist, and the E.164 dropped.

    Only phone routes are filtered; provider ids, groups and e-mail addresses pass.

    Raises:
        BadInput: when every recipient is stopped (nothing to do).

    """
    if not route.channel.phone_recipients or not recipients:
        return list(recipients), []
    numbers = {to: e164_of(to) for to, _extra in recipients}
    stopped = await store.stopped(chat_id, [n for n in numbers.values() if n is not None])
    if not stopped:
        return list(recipients), []
    kept = [(to, extra) for to, extra in recipients if numbers[to] not in stopped]
    dropped = [n for to, _extra in recipients if (n := numbers[to]) is not None and n in stopped]
    if not kept:
        raise BadInput(all_stopped(len(dropped), doing=doing))
    return kept, dropped


def read_numbers(body: str, country: str | None) -> list[str]:
    """``<number>[,<number>…]`` as typed into E.164 numbers, in order, each once.

    Numbers are separated by commas or new lines; a piece without commas that is not one
    number is read as numbers separated by spaces.

    Raises:
        BadInput: nothing given, too many, or a piece that is not a number (named).

    """
    pieces = [p.strip() for p in re.split(r"[,\n;]", body) if p.strip()]
    if not pieces:
        raise BadInput(_("Give one or more numbers, separated by commas."))
    numbers: list[str] = []
    for piece in pieces:
        try:
            numbers.append(normalise(piece, country=country).e164)
        except BadInput as whole:
            parts = piece.split()
            if len(parts) < 2:
                raise
            try:  # "628… 628…": numbers separated by spaces
                numbers.extend(normalise(p, country=country).e164 for p in parts)
            except BadInput:
                raise whole from None  # about the piece as typed, not a fragment of it
    unique = list(dict.fromkeys(numbers))
    if len(unique) > MAX_PER_COMMAND:
        raise BadInput(
            _("At most {limit:,} numbers at once ({given:,} given).").format(
                limit=MAX_PER_COMMAND, given=len(unique)
            )
        )
    return unique


class Stoplists:
    """The /stop, /unstop and /stoplist use-cases."""

    def __init__(self, repo: Repository) -> None:
        self._store = repo.stoplist

    async def stop(
        self, chat_id: int, country: str | None, body: str, *, actor: int
    ) -> StopChange:
        """Put the typed numbers on the chat's stoplist (audited)."""
        numbers = read_numbers(body, country)
        added = await self._store.add(chat_id, numbers, actor=actor)
        return StopChange(added, [n for n in numbers if n not in added])

    async def unstop(
        self, chat_id: int, country: str | None, body: str, *, actor: int
    ) -> StopChange:
        """Take the typed numbers off the chat's stoplist (audited)."""
        numbers = read_numbers(body, country)
        removed = await self._store.remove(chat_id, numbers, actor=actor)
        return StopChange(removed, [n for n in numbers if n not in removed])

    async def listing(self, chat_id: int) -> StopListing:
        """The chat's stoplist (the first :data:`LISTED` numbers)."""
        total, entries = await self._store.numbers(chat_id, LISTED)
        return StopListing(total, entries)


def numbers_text(numbers: Sequence[str]) -> str:
    """Up to :data:`SHOWN` numbers for a reply, escaped."""
    shown = ", ".join(echo(n) for n in numbers[:SHOWN])
    if len(numbers) > SHOWN:
        return _("{shown} and {count} more").format(shown=shown, count=len(numbers) - SHOWN)
    return shown
