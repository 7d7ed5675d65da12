"""Translations of what users read: gettext catalogs and the language being answered in.

Every user-visible string is written in English and wrapped where it is used:
``_("Sent to {count} numbers.").format(count=n)`` (named ``{placeholders}`` only, never an
f-string, so one catalog entry covers every value), ``ngettext(singular, plural, n)`` where
the number changes the words, and ``N_("...")`` to mark a module-level constant that is
translated later with ``_(constant)``. Babel extracts these calls into
``i18n/locale/messages.pot``; each language's translations are in
``i18n/locale/<code>/LC_MESSAGES/messages.po``.

The language is per task: :func:`use_language` sets it around the handling of one update or
the rendering of one chat's notice, so concurrent updates for chats in different languages
never see each other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ENGLISH = "en"
_current: ContextVar[str] = ContextVar("language", default=ENGLISH)


def _(message: str) -> str:
    """``message`` in the current language (English when it has no translation)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current language."""
    return singular if n == 1 else plural


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it yet (module-level constants)."""
    return message


@contextmanager
def use_language(code: str) -> Iterator[None]:
    """Answer in ``code`` inside the ``with`` block."""
    token = _current.set(code)
    try:
        yield
    finally:
        _current.reset(token)


def current_language() -> str:
    """The language code answers are being written in."""
    return _current.get()
