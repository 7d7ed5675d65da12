"""Phone numbers in, provider-ready numbers out, with the ``phonenumbers`` library.

Accepted: ``+62 812-3456-7890``, ``62812...`` (international digits) and ``0812...`` (national,
read with the chat's ``/country``). WhatsApp group ids (``628...-123...``) pass through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from bot.services.errors import BadInput, echo
from i18n import _

_GROUP_ID = re.compile(r"^[0-9]{8,15}-[0-9]{6,}$")  # passed on as typed: ASCII only
_ALLOWED = re.compile(r"^\+?[\d\s().\-]+$")


@dataclass(frozen=True, slots=True)
class Recipient:
    """A normalised recipient: E.164 (with +) and the bare digits some providers want."""

    e164: str

    @property
    def digits(self) -> str:
        """The number without ``+`` (the format of providers that take bare digits)."""
        return self.e164.lstrip("+")


def normalise(raw: str, *, country: str | None, allow_wa_group: bool = False) -> Recipient:
    """Turn what a user typed into a valid international number.

    Raises:
        BadInput: naming the number and what is wrong with it.

    """
    text = raw.strip()
    if allow_wa_group and _GROUP_ID.match(text):
        return Recipient(text)
    if not text or not _ALLOWED.match(text):
        raise BadInput(_("“{number}” is not a phone number.").format(number=echo(raw)))
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        candidate, region = "+" + digits, None
    elif digits.startswith("0"):
        if not country:
            # The refusal names /country in every language: list uploads look for it.
            raise BadInput(
                _(
                    "“{number}” is a national number: write it with the country code "
                    "(e.g. +62…) or set the chat's country with /country ID."
                ).format(number=echo(raw))
            )
        candidate, region = digits, country
    else:
        candidate, region = "+" + digits, None
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise BadInput(_("“{number}” is not a phone number.").format(number=echo(raw))) from exc
    if not phonenumbers.is_valid_number(number):
        raise BadInput(
            _("“{number}” is not a valid phone number (wrong length or unknown prefix).").format(
                number=echo(raw)
            )
        )
    return Recipient(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def valid_country(code: str) -> str:
    """An upper-case ISO 3166 region code that phonenumbers knows.

    Raises:
        BadInput: when it is not one.

    """
    region = code.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise BadInput(
            _("“{code}” is not an ISO 3166 country code (for example ID, SG, US).").format(
                code=echo(code)
            )
        )
    return region
