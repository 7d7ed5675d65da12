"""Who gets what: ``list:<name>`` recipients expanded, ``template:<name>`` texts filled.

The one step between what a /send or /schedule typed and the :class:`SendRequest` it makes.
A send that names no list and no template passes through untouched, without a database read.

- ``list:<name>`` (on a phone route) becomes the list's numbers, in file order, mixed with the
  other recipients in the order typed; a number already there is not added again.
- ``template:<name> [key=value …]`` in place of the text fills the template's placeholders
  from the pairs first, then, per recipient, from the CSV columns kept with that recipient's
  number. A placeholder that some recipient has no value for (absent or empty) is refused
  before anything is stored or sent, naming it and who lacks it. The filled texts are checked
  against the route's length like any text.

When every placeholder is filled by pairs, all recipients get one text; otherwise each gets
their own (:attr:`Addressed.texts`), and the template's text is what the batch shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from bot.services.errors import BadInput, echo
from bot.services.lists import RecipientLists
from bot.services.phones import normalise
from bot.services.sending import MAX_RECIPIENTS, validate_text
from bot.services.templates import Templates, field_key, fill, placeholders
from i18n import _
from providers.registry import Route, all_route_specs
from storage.models import Chat

LIST_PREFIX = "list:"
TEMPLATE_PREFIX = "template:"
SHOWN = 5
_TEMPLATE = re.compile(r"^\s*template:(\S*)(.*)$", re.IGNORECASE | re.DOTALL)
_PAIR = re.compile(r'\s*([^\s=]+)=(?:"([^"]*)"|“([^”]*)”|([^\s"“][^\s]*|))(?=\s|$)')


@dataclass(frozen=True, slots=True)
class ListUse:
    """A list a send took its numbers from, as it was at that moment."""

    name: str
    size: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Addressed:
    """Recipients with lists expanded, the text to show, and each recipient's own text.

    ``texts`` (in the order of ``recipients``) only when a template was filled per recipient.
    """

    recipients: list[str]
    text: str
    texts: list[str] | None = None
    lists: tuple[ListUse, ...] = ()
    template: str | None = None


def is_list(recipient: str) -> bool:
    """Whether a typed recipient names a recipient list (``list:<name>``)."""
    return recipient.strip().lower().startswith(LIST_PREFIX)


def is_template(text: str) -> bool:
    """Whether a send's text names a template (``template:<name> …``)."""
    return _TEMPLATE.match(text) is not None


def read_pairs(text: str) -> dict[str, str]:
    """``key=value`` pairs (a value with spaces in quotes), keys as :func:`field_key` reads them.

    Raises:
        BadInput: a word that is not ``key=value``, or an unclosed quote.

    """
    pairs: dict[str, str] = {}
    position, end = 0, len(text.rstrip())
    while position < end:
        match = _PAIR.match(text, position)
        if match is None:
            token = text[position:].split()[0]
            raise BadInput(
                _(
                    "“{token}” is not key=value: after template:&lt;name&gt; come only "
                    'key=value pairs (a value with spaces goes in quotes: city="Jakarta Selatan").'
                ).format(token=echo(token))
            )
        key, *values = match.groups()
        pairs[field_key(key)] = next(v for v in values if v is not None)
        position = match.end()
    return pairs


def phone_routes() -> str:
    """The routes a list works on, for a refusal."""
    return ", ".join(str(r) for r in all_route_specs() if r.channel.phone_recipients)


class Addressing:
    """Expands lists and fills templates for /send and /schedule."""

    def __init__(self, lists: RecipientLists, templates: Templates) -> None:
        self._lists = lists
        self._templates = templates

    async def prepare(
        self, chat: Chat, route: Route, recipients: Sequence[str], text: str
    ) -> Addressed:
        """The recipients and texts of a send as typed.

        Raises:
            BadInput: an unknown list or template, a list on a route without phone numbers,
                too many recipients, bad pairs, a missing placeholder value, a text too long.

        """
        templated = is_template(text)
        if not templated and not any(is_list(r) for r in recipients):
            return Addressed(list(recipients), text)
        people, uses = await self._expand(chat, route, recipients)
        if not templated:
            return Addressed(list(people), text, lists=uses)
        return await self._fill(chat, route, people, text, uses)

    async def _expand(
        self, chat: Chat, route: Route, typed: Sequence[str]
    ) -> tuple[dict[str, Mapping[str, str] | None], tuple[ListUse, ...]]:
        """Every recipient (lists expanded) with the CSV cells kept with it, in order."""
        names = [r.strip()[len(LIST_PREFIX) :] for r in typed if is_list(r)]
        if names and not route.channel.phone_recipients:
            raise BadInput(
                _(
                    "{route} takes {noun}, not list:{name}: a list holds phone numbers, "
                    "for {routes}."
                ).format(
                    route=route,
                    noun=_(route.channel.recipient_noun),
                    name=echo(names[0]),
                    routes=phone_routes(),
                )
            )
        people: dict[str, Mapping[str, str] | None] = {}
        uses: list[ListUse] = []
        for item in typed:
            if not is_list(item):
                people.setdefault(_key(item, chat.country), None)
                continue
            row = await self._lists.find(chat.id, item.strip()[len(LIST_PREFIX) :])
            if any(use.name == row.name for use in uses):
                continue
            if len(people) + row.size > MAX_RECIPIENTS:
                raise BadInput(
                    _(
                        "At most {limit:,} recipients per send; with the list “{name}” "
                        "({size:,} numbers) this send has more. Split the list into smaller ones."
                    ).format(limit=MAX_RECIPIENTS, name=escape(row.name), size=row.size)
                )
            entries = await self._lists.entries(row)
            uses.append(ListUse(row.name, row.size, row.updated_at))
            for entry in entries:
                if people.get(entry.number) is None:  # new, or typed before without cells
                    people[entry.number] = entry.cells
        return people, tuple(uses)

    async def _fill(
        self,
        chat: Chat,
        route: Route,
        people: Mapping[str, Mapping[str, str] | None],
        text: str,
        uses: tuple[ListUse, ...],
    ) -> Addressed:
        match = _TEMPLATE.match(text)
        assert match is not None
        if not match.group(1):
            raise BadInput(
                _("Name the template: template:&lt;name&gt; [key=value …] (/templates).")
            )
        template = await self._templates.get(chat.id, match.group(1))
        fields = placeholders(template.text)
        given = read_pairs(match.group(2))
        known = {field_key(f) for f in fields}
        unknown = [k for k in given if k not in known]
        if unknown:
            raise BadInput(_no_placeholder(template.name, unknown[0], fields))
        needed = [f for f in fields if field_key(f) not in given]
        recipients = list(people)
        if not needed:
            filled = fill(template.text, given)
            _check(route, filled, recipients[0] if recipients else "")
            return Addressed(recipients, filled, lists=uses, template=template.name)
        missing: dict[str, list[str]] = {f: [] for f in needed}
        texts: list[str] = []
        for recipient, cells in people.items():
            values = dict(given)
            by_key = {field_key(c): v for c, v in (cells or {}).items()}
            for name in needed:
                value = by_key.get(field_key(name), "")
                if value.strip():
                    values[field_key(name)] = value
                else:
                    missing[name].append(recipient)
            if len(values) == len(known):
                texts.append(fill(template.text, values))
        if any(missing.values()):
            raise BadInput(_missing(template.name, missing, len(people)))
        checked: set[str] = set()
        for recipient, own in zip(recipients, texts, strict=True):
            if own not in checked:
                _check(route, own, recipient)
                checked.add(own)
        return Addressed(recipients, template.text, texts, uses, template.name)


def _key(item: str, country: str | None) -> str:
    """A typed recipient as a list holds numbers (E.164) when it is one; else as typed."""
    try:
        return normalise(item, country=country).e164
    except BadInput:
        return item.strip()


def _no_placeholder(name: str, unknown: str, fields: Sequence[str]) -> str:
    """The refusal of a pair naming a placeholder the template lacks, listing those it has."""
    values = {
        "name": escape(name),
        "field": echo(unknown),
        "fields": escape(", ".join("{" + f + "}" for f in fields[:10])),
        "more": len(fields) - 10,
    }
    if not fields:
        text = _("The template “{name}” has no placeholder {{{field}}}; it has no placeholders.")
    elif len(fields) > 10:
        text = _(
            "The template “{name}” has no placeholder {{{field}}}; it has {fields} and {more} "
            "more."
        )
    else:
        text = _("The template “{name}” has no placeholder {{{field}}}; it has {fields}.")
    return text.format(**values)


def _check(route: Route, text: str, recipient: str) -> None:
    try:
        validate_text(route, text, None)
    except BadInput as exc:
        if recipient:
            message = _("Nothing was sent: the filled template for {recipient}: {reason}").format(
                recipient=echo(recipient), reason=exc.message
            )
        else:
            message = _("Nothing was sent: the filled template: {reason}").format(
                reason=exc.message
            )
        raise BadInput(message) from None


def _missing(name: str, missing: Mapping[str, list[str]], total: int) -> str:
    lines = [_("Nothing was sent: the template “{name}” lacks values.").format(name=escape(name))]
    lacking = [(field, people) for field, people in missing.items() if people]
    for field, people in lacking[:SHOWN]:
        values = {
            "field": escape(field),
            "count": len(people),
            "total": total,
            "shown": ", ".join(echo(p) for p in people[:SHOWN]),
            "more": len(people) - SHOWN,
        }
        if len(people) > SHOWN:
            line = _(
                "{{{field}}}: no value for {count:,} of {total:,} recipients "
                "({shown} and {more:,} more)."
            )
        else:
            line = _("{{{field}}}: no value for {count:,} of {total:,} recipients ({shown}).")
        lines.append(line.format(**values))
    if len(lacking) > SHOWN:
        lines.append(_("…and {count} more placeholders.").format(count=len(lacking) - SHOWN))
    first = lacking[0][0]
    lines.append(
        _(
            "Give one value for everyone with {key}=…, or fill the “{column}” column of the "
            "list for them."
        ).format(key=escape(field_key(first)), column=escape(first))
    )
    return "\n".join(lines)
