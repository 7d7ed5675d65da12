"""The filters of /history and /export: ``route=``, ``state=``, ``to=``, ``since=YYYY-MM-DD``.

Read once here into a :class:`storage.history.MessageFilter`; every wrong piece is refused
with a reply naming it and saying what works (an unknown key, a state the bot does not
have, a route it does not know, a date that does not exist or lies ahead).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bot.services.chats import route_from
from bot.services.errors import BadInput, echo
from bot.services.phones import normalise
from i18n import N_, _
from providers.base import DeliveryState
from providers.registry import REGISTRY
from storage.history import MessageFilter

KEYS = ("route", "state", "to", "since")
HOW = N_("route=&lt;route&gt;, state=&lt;state&gt;, to=&lt;recipient&gt;, since=YYYY-MM-DD")
_NUMBER_PIECE = re.compile(r"^[0-9().\-]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True, slots=True)
class Filters:
    """A filter as read, and how the chat wrote it (for captions and "nothing matches")."""

    where: MessageFilter
    described: str = ""


def read_filters(tokens: Sequence[str], *, zone: str, country: str | None, today: date) -> Filters:
    """``key=value`` tokens into a filter; ``today`` is the chat's date (no ``since`` after it).

    Raises:
        BadInput: a token that is not key=value, an unknown or repeated key, a bad value.

    """
    where = MessageFilter()
    seen: dict[str, str] = {}
    for key, value in _pairs(tokens):
        if key not in KEYS:
            raise BadInput(
                _("Unknown filter “{key}=”. Filters are {how}.").format(key=echo(key), how=_(HOW))
            )
        if key in seen:
            raise BadInput(_("{key}= is given twice; give each filter once.").format(key=key))
        if not value:
            raise BadInput(
                _("{key}= needs a value. Filters are {how}.").format(key=key, how=_(HOW))
            )
        seen[key] = value
        if key == "route":
            where = _route(where, value)
        elif key == "state":
            where = replace(where, state=_state(value))
        elif key == "to":
            where = replace(where, recipient=_recipient(value, country))
        else:
            where = replace(where, since=_since(value, zone, today))
    described = " ".join(f"{k}={echo(v)}" for k, v in seen.items())
    return Filters(where, described)


def _pairs(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """``key=value`` tokens as pairs (``to=+62 812 3456``, written with spaces, is one)."""
    pairs: list[tuple[str, str]] = []
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep and pairs and pairs[-1][0] == "to" and _NUMBER_PIECE.match(token):
            pairs[-1] = ("to", f"{pairs[-1][1]} {token}")
            continue
        if not sep or not key:
            raise BadInput(
                _("“{token}” is not a filter. Filters are {how}.").format(
                    token=echo(token), how=_(HOW)
                )
            )
        pairs.append((key.lower(), value))
    return pairs


def _route(where: MessageFilter, value: str) -> MessageFilter:
    """``provider`` (all its channels) or ``provider:channel``."""
    if ":" not in value and value.lower() in REGISTRY:
        return replace(where, provider=value.lower())
    route = route_from(value)  # BadInput listing the routes there are
    return replace(where, provider=route.provider.name, channel=route.channel.name)


def _state(value: str) -> str:
    try:
        return DeliveryState(value.lower()).value
    except ValueError:
        states = ", ".join(s.value for s in DeliveryState)
        raise BadInput(
            _("Unknown state “{state}”: use one of {states}.").format(
                state=echo(value), states=states
            )
        ) from None


def _recipient(value: str, country: str | None) -> str:
    """A number as messages store it (E.164 digits); anything else as typed."""
    try:
        return normalise(value, country=country).digits
    except BadInput:
        return value.strip()


def _since(value: str, zone: str, today: date) -> datetime:
    """Midnight of the date in the chat's time zone, as an aware time."""
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise BadInput(
            _("“{value}” is not a date: since= takes YYYY-MM-DD, e.g. since={today}.").format(
                value=echo(value), today=today
            )
        ) from None
    if day > today:
        raise BadInput(
            _("since={day} is in the future: no message can match it yet.").format(day=day)
        )
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone))
