"""Translations of what users read: gettext catalogs and the language being answered in.

Every user-visible string is written in English and wrapped where it is used:
``_("Sent to {count} numbers.").format(count=n)`` (named ``{placeholders}`` only, never an
f-string, so one catalog entry covers every value), ``ngettext(singular, plural, n)`` where
the number changes the words, and ``N_("...")`` to mark a module-level constant that is
translated later with ``_(constant)``. Babel extracts these calls into
``i18n/locale/messages.pot`` (``make i18n``); each language's translations are in
``i18n/locale/<code>/LC_MESSAGES/messages.po``, compiled in memory with Babel the first time
the language is used, so there is no build step and no binary file in the repository.

The language is per task: :func:`use_language` sets it around the handling of one update or
the rendering of one chat's notice, so concurrent updates for chats in different languages
never see each other's.
"""

from __future__ import annotations

import functools
import gettext as stdlib_gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ENGLISH = "en"
# The languages a chat may choose (/lang), by code, with the name users see.
LANGUAGES: dict[str, str] = {"en": "English", "id": "Bahasa Indonesia"}
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

_current: ContextVar[str] = ContextVar("language", default=ENGLISH)


def catalog_path(code: str) -> Path:
    """Where the ``.po`` catalog of language ``code`` lives."""
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(code: str) -> stdlib_gettext.NullTranslations:
    """The compiled catalog of ``code`` (English, the source language, needs none).

    Fuzzy entries are left out: a translation nobody checked is worse than the English.
    """
    if code == ENGLISH:
        return stdlib_gettext.NullTranslations()
    with catalog_path(code).open("rb") as source:
        catalog = read_po(source, locale=code, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return stdlib_gettext.GNUTranslations(compiled)


def _(message: str) -> str:
    """``message`` in the current language (English when it has no translation)."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current language."""
    return translations(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it yet (module-level constants)."""
    return message


def supported(code: str) -> bool:
    """Whether ``code`` is a language the bot speaks."""
    return code in LANGUAGES


@contextmanager
def use_language(code: str) -> Iterator[None]:
    """Answer in ``code`` inside the ``with`` block (English for a code the bot lacks)."""
    token = _current.set(code if supported(code) else ENGLISH)
    try:
        yield
    finally:
        _current.reset(token)


def current_language() -> str:
    """The language code answers are being written in."""
    return _current.get()
