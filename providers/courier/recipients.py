"""Reading courier recipients typed in the chat, for the registry's ``read_recipient`` hooks.

- ``courier:bulk`` takes ``individual:<id>`` and ``group:<id>`` (individual groups); a bare id
  is an individual (COMMANDS.md). Ids are UUIDs.
- ``courier:email`` takes one e-mail address, checked for syntax only with ``email-validator``
  (no DNS look-up: a send must not wait on, or fail for, the recipient's mail servers).

Each reader returns the recipient as the adapter takes it, or raises ``ValueError`` whose text
tells the person in the chat what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

from i18n import _
from providers.courier.facts import is_uuid

INDIVIDUAL = "individual"
GROUP = "group"
RECIPIENT_KINDS = (INDIVIDUAL, GROUP)


def read_bulk_recipient(raw: str) -> str:
    """``individual:<uuid>``, ``group:<uuid>`` or a bare uuid, as ``<kind>:<uuid>``.

    Raises:
        ValueError: anything else; the text shows the accepted forms.

    """
    text = raw.strip()
    kind, sep, value = text.partition(":")
    if not sep:
        kind, value = INDIVIDUAL, text
    kind = kind.strip().lower()
    value = value.strip()
    if kind not in RECIPIENT_KINDS:
        raise ValueError(
            _(
                "“{value}” is not a courier recipient: write individual:<id> or group:<id> "
                "(a bare id is an individual)."
            ).format(value=raw)
        )
    if not is_uuid(value):
        raise ValueError(
            _(
                "“{value}” is not a courier {kind} id: ids are UUIDs like "
                "11111111-2222-3333-4444-555555555555."
            ).format(value=raw, kind=kind)
        )
    return f"{kind}:{value.lower()}"


def split_bulk(recipients: Sequence[str]) -> tuple[list[str], list[str]]:
    """Recipients read by :func:`read_bulk_recipient` as (individual ids, group ids).

    Raises:
        ValueError: one of them is not a bulk recipient.

    """
    individuals: list[str] = []
    groups: list[str] = []
    for recipient in recipients:
        kind, _sep, value = read_bulk_recipient(recipient).partition(":")
        (groups if kind == GROUP else individuals).append(value)
    return individuals, groups


def read_email_recipient(raw: str) -> str:
    """One e-mail address, normalised (``Ada@Example.ORG`` → ``Ada@example.org``).

    Raises:
        ValueError: it is not a valid address; the text gives the validator's reason.

    """
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(
            _("“{value}” is not an e-mail address: {reason}").format(value=raw, reason=exc)
        ) from exc
    return checked.normalized
