"""Names of a chat's recipient lists and templates: short, ``[a-z0-9_-]``, case-insensitive."""

from __future__ import annotations

import re

from bot.services.errors import BadInput, echo
from i18n import N_, _

MAX_NAME = 32
_NAME = re.compile(rf"^[a-z0-9_-]{{1,{MAX_NAME}}}$")
# The refusal per kind of name, a whole sentence each.
_NOT_A_NAME = {
    "list": N_(
        "“{text}” is not a list name: use 1 to {limit} letters a–z, digits, _ or - "
        "(e.g. customers, promo_june)."
    ),
    "template": N_(
        "“{text}” is not a template name: use 1 to {limit} letters a–z, digits, _ or - "
        "(e.g. customers, promo_june)."
    ),
}


def read_name(text: str, *, what: str) -> str:
    """A list or template name as stored (lower-case), or ``BadInput`` saying what one is."""
    name = text.strip().lower()
    if not _NAME.match(name):
        refusal = _NOT_A_NAME.get(what)
        if refusal is None:
            raise BadInput(
                _(
                    "“{text}” is not a {what} name: use 1 to {limit} letters a–z, digits, _ or - "
                    "(e.g. customers, promo_june)."
                ).format(text=echo(text.strip()), what=what, limit=MAX_NAME)
            )
        raise BadInput(_(refusal).format(text=echo(text.strip()), limit=MAX_NAME))
    return name
