"""Whole numbers typed in chat (ids, counts, amounts of time), read in one place.

``str.isdigit()`` accepts characters ``int()`` refuses (superscripts such as ``²``), ``int()``
reads other scripts' digits (``١٢``) and numbers the database cannot store, and it refuses
more than 4,300 digits with an error of its own. Every command reads its numbers here instead:
the ASCII digits 0-9 only, no sign, at most :data:`MAX_ID`.
"""

from __future__ import annotations

import re

from bot.services.errors import BadInput, echo
from i18n import N_, _

MAX_ID = 2**63 - 1  # the largest BIGINT: a larger id can be neither stored nor looked up
_DIGITS = re.compile(r"[0-9]{1,19}")  # 19 digits hold MAX_ID; more never reach int()
# The refusal per kind of id, a whole sentence each (word order differs between languages).
_NOT_AN_ID = {
    "message": N_(
        "“{text}” is not a message id: ids are whole numbers from 1, written with the digits "
        "0-9, like 12 or #12."
    ),
    "scheduled send": N_(  # i18n: not shown (the key)
        "“{text}” is not a scheduled send id: ids are whole numbers from 1, written with the "
        "digits 0-9, like 12 or #12."
    ),
    "user": N_(
        "“{text}” is not a user id: ids are whole numbers from 1, written with the digits 0-9, "
        "like 12 or #12."
    ),
}


def read_whole(text: str) -> int | None:
    """``text`` as a whole number from 0 to :data:`MAX_ID`; None for anything else."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def read_id(text: str) -> int | None:
    """An id typed as ``12`` or ``#12`` (from 1 to :data:`MAX_ID`); None for anything else."""
    value = read_whole(text.removeprefix("#"))
    return value if value else None


def parse_id(text: str, *, what: str = "message") -> int:
    """An id the user typed, e.g. ``what="scheduled send"`` for ``/cancel <id>``.

    Raises:
        BadInput: naming what was expected, with the input escaped and clipped.

    """
    value = read_id(text.strip())
    if value is None:
        refusal = _NOT_AN_ID.get(what)
        if refusal is None:
            raise BadInput(
                _(
                    "“{text}” is not a {what} id: ids are whole numbers from 1, written with "
                    "the digits 0-9, like 12 or #12."
                ).format(text=echo(text), what=what)
            )
        raise BadInput(_(refusal).format(text=echo(text)))
    return value
