"""Message templates: ``{placeholder}`` texts stored per chat and filled at send time.

A placeholder is a name in braces (``Hi {name}``); ``{{`` and ``}}`` are literal braces. The
fields are found with :meth:`string.Formatter.parse` (the syntax Python users know), but a
text is never filled with :meth:`str.format`: only plain names are accepted (no ``{0}``, no
``{a.b}``, ``{a[0]}``, ``!r`` or ``:>10``), and filling puts each value in as it is. Names
match case-insensitively, with spaces and hyphens read as ``_`` (``{First Name}`` is filled
by a ``first_name=`` pair or a ``first name`` CSV column).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from html import escape

from bot.services.errors import BadInput, echo
from bot.services.names import read_name
from i18n import N_, _
from storage.models import Template
from storage.repo import Repository
from storage.templates import TemplateStore

MAX_TEMPLATES = 100  # per chat
_FIELD = re.compile(r"^\w[\w \-]{0,39}$")
_SEPARATORS = re.compile(r"[\s\-]+")
_NAME_AND_TEXT = re.compile(r"^(\S+)(.*)$", re.DOTALL)
# Never formatted: its braces are shown as they are.
SYNTAX = N_("a placeholder is a name in braces, {name}; write {{ and }} for a literal brace")


def field_key(name: str) -> str:
    """How placeholders, ``key=`` pairs and CSV columns match: ``First Name`` → ``first_name``."""
    return _SEPARATORS.sub("_", name.strip().lower())


def placeholders(text: str) -> list[str]:
    """The placeholder names of ``text`` as written, each once, in order of appearance.

    Raises:
        BadInput: unmatched braces or a placeholder that is not a plain name.

    """
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise BadInput(
            _("The template's braces do not match ({reason}): {syntax}.").format(
                reason=escape(str(exc)), syntax=_(SYNTAX)
            )
        ) from exc
    found: dict[str, str] = {}
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        shown = "{" + field + suffix + "}"
        if conversion or spec:
            raise BadInput(
                _("“{field}”: placeholders take no conversion or format; {syntax}.").format(
                    field=echo(shown), syntax=_(SYNTAX)
                )
            )
        if not field.strip() or field.strip().isdigit():
            raise BadInput(
                _("“{field}”: give the placeholder a name, e.g. {{name}}.").format(
                    field=echo(shown)
                )
            )
        if not _FIELD.match(field.strip()):
            raise BadInput(
                _(
                    "“{field}” is not a placeholder name (letters, digits, _, - and spaces, "
                    "at most 40); {syntax}."
                ).format(field=echo(shown), syntax=_(SYNTAX))
            )
        found.setdefault(field_key(field), field.strip())
    return list(found.values())


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by ``values[field_key(name)]`` (checked before)."""
    out: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if field is not None:
            out.append(values[field_key(field)])
    return "".join(out)


class Templates:
    """The template use-cases of a chat."""

    def __init__(self, store: TemplateStore, repo: Repository) -> None:
        self.store = store
        self._repo = repo

    async def add(self, chat_id: int, body: str, *, actor: int) -> tuple[Template, str | None]:
        """``<name> <text>``: store (or replace) a template; returns it and the text replaced.

        Raises:
            BadInput: a bad name, no text, or bad placeholder syntax.

        """
        match = _NAME_AND_TEXT.match(body.strip())
        if match is None:
            raise BadInput(
                # Not formatted: the braces are shown as they are.
                _(
                    "Usage: /template add &lt;name&gt; &lt;text with {placeholders}&gt;, "
                    "e.g. /template add promo Hi {name}, 20% off today."
                )
            )
        name = read_name(match.group(1), what="template")
        text = match.group(2).strip()
        if not text:
            raise BadInput(
                _("The template “{name}” has no text: /template add {name} Hi {{name}}.").format(
                    name=name
                )
            )
        placeholders(text)
        new = await self.store.named(chat_id, name) is None
        if new and await self.store.count(chat_id) >= MAX_TEMPLATES:
            raise BadInput(
                _(
                    "This chat has {limit} templates, the most it may keep; delete "
                    "one with /template del &lt;name&gt; first."
                ).format(limit=MAX_TEMPLATES)
            )
        old = await self.store.save(chat_id, name, text, actor=actor)
        await self._repo.audit(chat_id, actor, "template add", name)  # i18n: not shown
        saved = await self.store.named(chat_id, name)
        assert saved is not None
        return saved, old

    async def delete(self, chat_id: int, raw_name: str, *, actor: int) -> str:
        """Delete a template; its name. ``BadInput`` naming the templates when unknown."""
        name = read_name(raw_name, what="template")
        if not await self.store.delete(chat_id, name):
            raise BadInput(await self._unknown(chat_id, name))
        await self._repo.audit(chat_id, actor, "template del", name)  # i18n: not shown
        return name

    async def all(self, chat_id: int) -> list[Template]:
        """The chat's templates by name."""
        return await self.store.all(chat_id)

    async def get(self, chat_id: int, raw_name: str) -> Template:
        """One template by name, or ``BadInput`` naming the ones that exist."""
        name = read_name(raw_name, what="template")
        found = await self.store.named(chat_id, name)
        if found is None:
            raise BadInput(await self._unknown(chat_id, name))
        return found

    async def _unknown(self, chat_id: int, name: str) -> str:
        names = [t.name for t in await self.store.all(chat_id)]
        if not names:
            return _(
                "There is no template “{name}”: this chat has none yet. Add one with "
                "/template add &lt;name&gt; &lt;text&gt;."
            ).format(name=echo(name))
        shown = ", ".join(names[:20])
        if len(names) > 20:
            shown = _("{shown} and {count} more").format(shown=shown, count=len(names) - 20)
        return _("There is no template “{name}” in this chat. Templates here: {names}.").format(
            name=echo(name), names=escape(shown)
        )
