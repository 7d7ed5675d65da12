"""NusaSMS SMS v3 status codes and delivery-report words, mapped to the project's errors/states.

Every code of the "Response Status" table in ``shared/api-docs/nusasms.txt`` is here, plus
``-55`` from the ``sendsms/group`` failure example (group missing or empty). ``0`` means
accepted; every other code becomes the :mod:`providers.errors` class that says what to do:

- credentials or account set-up refused → ``AuthError`` (stops a bulk send);
- no or expired balance → ``InsufficientCredit`` (stops a bulk send);
- this message or recipient refused → ``MessageRejected``;
- the request itself is malformed → ``ValidationError``;
- a failure on NusaSMS's side that says it did not process the request →
  ``ProviderUnavailable`` with ``maybe_sent=False`` (the message is ``failed``, not unknown).

An undocumented code is ``UnexpectedResponse``: the request was processed to an unknown
degree, so a send becomes ``unknown`` rather than ``failed``.

Delivery-report (``cmd=DR``) values are not documented; :data:`DR_STATES` accepts the usual
SMSC words and the numeric codes seen in public NusaSMS clients (22 delivered, 20 pending,
50 failed) — *inferred*, and unknown values never move a message's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from i18n import N_, _
from providers.base import DeliveryState
from providers.errors import (
    AuthError,
    InsufficientCredit,
    MessageRejected,
    ProviderError,
    ProviderUnavailable,
    UnexpectedResponse,
    ValidationError,
)

NAME = "NusaSMS SMS"  # i18n: not shown (a product name)


@dataclass(frozen=True, slots=True)
class SmsStatus:
    """One documented status code: its name, its meaning for a chat, its error class."""

    code: str
    name: str
    meaning: str
    error: type[ProviderError] | None


_TABLE = (
    SmsStatus("0", "ALL_RECIPIENTS_PROCESSED", N_("accepted for all recipients"), None),
    SmsStatus("-1", "SEND_ERROR", N_("error in processing the request"), ProviderUnavailable),
    SmsStatus("-2", "NOT_ENOUGH_CREDITS", N_("not enough credits"), InsufficientCredit),
    SmsStatus(
        "-3",
        "NETWORK_NOTCOVERED",
        N_("the recipient's network is not covered by this account"),
        MessageRejected,
    ),
    SmsStatus(
        "-5",
        "INVALID_USER_OR_PASS",
        N_("the SMS user name or password is invalid (sms_user / sms_password)"),
        AuthError,
    ),
    SmsStatus(
        "-6",
        "MISSING_DESTINATION_ADDRESS",
        N_("the destination number is missing"),
        ValidationError,
    ),
    SmsStatus("-7", "BALANCE_EXPIRED", N_("the SMS balance has expired"), InsufficientCredit),
    SmsStatus(
        "-10",
        "REJECTED",
        N_("rejected: OTP messages must be sent on the OTP route (use --otp)"),
        MessageRejected,
    ),
    SmsStatus(
        "-11",
        "INVALID_DESTINATION_ADDRESS",
        N_("the number is not recognised by NusaSMS"),
        MessageRejected,
    ),
    SmsStatus("-12", "MISSING_MESSAGE", N_("the message text is missing"), ValidationError),
    SmsStatus(
        "-13",
        "INVALID_DESTINATION_ADDRESS",
        N_("the number is not recognised by NusaSMS"),
        MessageRejected,
    ),
    SmsStatus("-22", "SYNTAX_ERROR", N_("the request had a syntax error"), ValidationError),
    SmsStatus(
        "-23", "ERROR_PROCESSING", N_("general error on NusaSMS's side"), ProviderUnavailable
    ),
    SmsStatus("-26", "COMMUNICATION_ERROR", N_("general API error"), ProviderUnavailable),
    SmsStatus("-27", "INVALID_SENDDATETIME", N_("invalid scheduling parameter"), ValidationError),
    SmsStatus(
        "-28",
        "INVALID_DELIVERY_REPORT_PUSH_URL",
        N_("invalid delivery-report push URL"),
        ValidationError,
    ),
    SmsStatus("-30", "INVALID_CLIENT_APPID", N_("invalid APPID in the request"), ValidationError),
    SmsStatus("-33", "DUPLICATE_MESSAGEID", N_("duplicated message id"), ValidationError),
    SmsStatus("-34", "SENDER_NOT_ALLOWED", N_("the sender name is not allowed"), MessageRejected),
    SmsStatus(
        "-40",
        "IP_ADDRESS_FORBIDDEN",
        N_("this server's IP address is not on the account's whitelist"),
        AuthError,
    ),
    SmsStatus(  # not in the table; the sendsms/group example names no constant
        "-55",
        "",
        N_("the group does not exist or has no contacts; see the address book on app.nusasms.com"),
        ValidationError,
    ),
    SmsStatus(
        "-77",
        "SPAM_PATTERN",
        N_("spam pattern: more than 10 identical messages to this recipient today"),
        MessageRejected,
    ),
    SmsStatus(
        "-78",
        "LIMIT REACHED FOR DESTINATION NUMBER",  # i18n: not shown (the vendor's constant)
        N_("daily limit for this number reached (24 hours)"),
        MessageRejected,
    ),
    SmsStatus(
        "-88",
        "REJECTED ROUTE",  # i18n: not shown (the vendor's constant)
        N_("the operator rejected the request"),
        MessageRejected,
    ),
    SmsStatus(
        "-99",
        "GENERAL_ERROR",
        N_("error in processing the request on NusaSMS's side"),
        ProviderUnavailable,
    ),
)
SMS_STATUSES: Mapping[str, SmsStatus] = {s.code: s for s in _TABLE}


def normalise_code(raw: object) -> str:
    """``-2``, ``"-2"``, ``" -2 "`` and ``-2.0`` all become ``"-2"``."""
    text = str(raw).strip()
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def sms_error(raw_code: object) -> ProviderError | None:
    """The error a ``status`` the API returned stands for, or ``None`` for ``0`` (accepted)."""
    code = normalise_code(raw_code)
    status = SMS_STATUSES.get(code)
    if status is None:
        return UnexpectedResponse(
            _("{provider} answered the undocumented status {code!r}.").format(
                provider=NAME, code=code
            ),
            provider=NAME,
            code=code,
        )
    if status.error is None:
        return None
    label = f"{code} {status.name}" if status.name else code
    message = _("{provider}: {meaning} (status {label}).").format(
        provider=NAME, meaning=_(status.meaning), label=label
    )
    return status.error(message, provider=NAME, code=code)


# The meanings are stored in English and translated where a chat shows them (bot/render.py).
DR_STATES: Mapping[str, tuple[DeliveryState, str]] = {
    "DELIVERED": (DeliveryState.DELIVERED, N_("delivered to the handset")),
    "DELIVRD": (DeliveryState.DELIVERED, N_("delivered to the handset")),
    "22": (DeliveryState.DELIVERED, N_("delivered to the handset")),
    "SENT": (DeliveryState.SENT, N_("sent to the operator")),
    "SUBMITTED": (DeliveryState.SENT, N_("sent to the operator")),
    "ENROUTE": (DeliveryState.SENT, N_("on its way")),
    "PENDING": (DeliveryState.SENT, N_("pending at the operator")),
    "BUFFERED": (DeliveryState.SENT, N_("buffered at the operator")),
    "20": (DeliveryState.SENT, N_("pending at the operator")),
    "ACCEPTED": (DeliveryState.ACCEPTED, N_("accepted by NusaSMS")),
    "QUEUED": (DeliveryState.ACCEPTED, N_("queued at NusaSMS")),
    "SCHEDULED": (DeliveryState.ACCEPTED, N_("scheduled at NusaSMS")),
    "UNDELIVERED": (DeliveryState.UNDELIVERED, N_("not delivered to the handset")),
    "UNDELIV": (DeliveryState.UNDELIVERED, N_("not delivered to the handset")),
    "NOT_DELIVERED": (DeliveryState.UNDELIVERED, N_("not delivered to the handset")),
    "FAILED": (DeliveryState.FAILED, N_("failed")),
    "50": (DeliveryState.FAILED, N_("failed")),
    "REJECTED": (DeliveryState.FAILED, N_("rejected by the operator")),
    "REJECTD": (DeliveryState.FAILED, N_("rejected by the operator")),
    "EXPIRED": (DeliveryState.EXPIRED, N_("expired before it could be delivered")),
}


def dr_state_of(raw: str) -> tuple[DeliveryState, str] | None:
    """The state and meaning of a delivery-report value, None when it is not in the table."""
    return DR_STATES.get(raw.strip().upper().replace(" ", "_").replace("-", "_"))


def map_dr_status(raw: str) -> tuple[DeliveryState, str]:
    """Map a delivery-report value to the project state; unknown values stay ``accepted``."""
    found = dr_state_of(raw)
    if found is not None:
        return found
    return DeliveryState.ACCEPTED, _("unrecognised delivery report {report!r}").format(report=raw)
