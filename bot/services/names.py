"""Names of a chat's recipient lists and templates: short, ``[a-z0-9_-]``, case-insensitive."""

from __future__ import annotations

import re

from bot.services.errors import BadInput, echo

MAX_NAME = 32
_NAME = re.compile(rf"^[a-z0-9_-]{{1,{MAX_NAME}}}$")


def read_name(text: str, *, what: str) -> str:
    """A list or template name as stored (lower-case), or ``BadInput`` saying what one is."""
    name = text.strip().lower()
    if not _NAME.match(name):
        raise BadInput(
            f"“{echo(text.strip())}” is not a {what} name: use 1 to {MAX_NAME} letters a–z, "
            "digits, _ or - (e.g. customers, promo_june)."
        )
    return name
