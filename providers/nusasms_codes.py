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

NAME = "NusaSMS SMS"


@dataclass(frozen=True, slots=True)
class SmsStatus:
    """One documented status code: its name, its meaning for a chat, its error class."""

    code: str
    name: str
    meaning: str
    error: type[ProviderError] | None


_TABLE = (
    SmsStatus("0", "ALL_RECIPIENTS_PROCESSED", "accepted for all recipients", None),
    SmsStatus("-1", "SEND_ERROR", "error in processing the request", ProviderUnavailable),
    SmsStatus("-2", "NOT_ENOUGH_CREDITS", "not enough credits", InsufficientCredit),
    SmsStatus(
        "-3",
        "NETWORK_NOTCOVERED",
        "the recipient's network is not covered by this account",
        MessageRejected,
    ),
    SmsStatus(
        "-5",
        "INVALID_USER_OR_PASS",
        "the SMS user name or password is invalid (sms_user / sms_password)",
        AuthError,
    ),
    SmsStatus(
        "-6", "MISSING_DESTINATION_ADDRESS", "the destination number is missing", ValidationError
    ),
    SmsStatus("-7", "BALANCE_EXPIRED", "the SMS balance has expired", InsufficientCredit),
    SmsStatus(
        "-10",
        "REJECTED",
        "rejected: OTP messages must be sent on the OTP route (use --otp)",
        MessageRejected,
    ),
    SmsStatus(
        "-11",
        "INVALID_DESTINATION_ADDRESS",
        "the number is not recognised by NusaSMS",
        MessageRejected,
    ),
    SmsStatus("-12", "MISSING_MESSAGE", "the message text is missing", ValidationError),
    SmsStatus(
        "-13",
        "INVALID_DESTINATION_ADDRESS",
        "the number is not recognised by NusaSMS",
        MessageRejected,
    ),
    SmsStatus("-22", "SYNTAX_ERROR", "the request had a syntax error", ValidationError),
    SmsStatus("-23", "ERROR_PROCESSING", "general error on NusaSMS's side", ProviderUnavailable),
    SmsStatus("-26", "COMMUNICATION_ERROR", "general API error", ProviderUnavailable),
    SmsStatus("-27", "INVALID_SENDDATETIME", "invalid scheduling parameter", ValidationError),
    SmsStatus(
        "-28",
        "INVALID_DELIVERY_REPORT_PUSH_URL",
        "invalid delivery-report push URL",
        ValidationError,
    ),
    SmsStatus("-30", "INVALID_CLIENT_APPID", "invalid APPID in the request", ValidationError),
    SmsStatus("-33", "DUPLICATE_MESSAGEID", "duplicated message id", ValidationError),
    SmsStatus("-34", "SENDER_NOT_ALLOWED", "the sender name is not allowed", MessageRejected),
    SmsStatus(
        "-40",
        "IP_ADDRESS_FORBIDDEN",
        "this server's IP address is not on the account's whitelist",
        AuthError,
    ),
    SmsStatus(  # not in the table; the sendsms/group example names no constant
        "-55",
        "",
        "the group does not exist or has no contacts; see the address book on app.nusasms.com",
        ValidationError,
    ),
    SmsStatus(
        "-77",
        "SPAM_PATTERN",
        "spam pattern: more than 10 identical messages to this recipient today",
        MessageRejected,
    ),
    SmsStatus(
        "-78",
        "LIMIT REACHED FOR DESTINATION NUMBER",
        "daily limit for this number reached (24 hours)",
        MessageRejected,
    ),
    SmsStatus("-88", "REJECTED ROUTE", "the operator rejected the request", MessageRejected),
    SmsStatus(
        "-99",
        "GENERAL_ERROR",
        "error in processing the request on NusaSMS's side",
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
            f"{NAME} answered the undocumented status {code!r}.", provider=NAME, code=code
        )
    if status.error is None:
        return None
    label = f"{code} {status.name}" if status.name else code
    message = f"{NAME}: {status.meaning} (status {label})."
    return status.error(message, provider=NAME, code=code)


DR_STATES: Mapping[str, tuple[DeliveryState, str]] = {
    "DELIVERED": (DeliveryState.DELIVERED, "delivered to the handset"),
    "DELIVRD": (DeliveryState.DELIVERED, "delivered to the handset"),
    "22": (DeliveryState.DELIVERED, "delivered to the handset"),
    "SENT": (DeliveryState.SENT, "sent to the operator"),
    "SUBMITTED": (DeliveryState.SENT, "sent to the operator"),
    "ENROUTE": (DeliveryState.SENT, "on its way"),
    "PENDING": (DeliveryState.SENT, "pending at the operator"),
    "BUFFERED": (DeliveryState.SENT, "buffered at the operator"),
    "20": (DeliveryState.SENT, "pending at the operator"),
    "ACCEPTED": (DeliveryState.ACCEPTED, "accepted by NusaSMS"),
    "QUEUED": (DeliveryState.ACCEPTED, "queued at NusaSMS"),
    "SCHEDULED": (DeliveryState.ACCEPTED, "scheduled at NusaSMS"),
    "UNDELIVERED": (DeliveryState.UNDELIVERED, "not delivered to the handset"),
    "UNDELIV": (DeliveryState.UNDELIVERED, "not delivered to the handset"),
    "NOT_DELIVERED": (DeliveryState.UNDELIVERED, "not delivered to the handset"),
    "FAILED": (DeliveryState.FAILED, "failed"),
    "50": (DeliveryState.FAILED, "failed"),
    "REJECTED": (DeliveryState.FAILED, "rejected by the operator"),
    "REJECTD": (DeliveryState.FAILED, "rejected by the operator"),
    "EXPIRED": (DeliveryState.EXPIRED, "expired before it could be delivered"),
}


def dr_state_of(raw: str) -> tuple[DeliveryState, str] | None:
    """The state and meaning of a delivery-report value, None when it is not in the table."""
    return DR_STATES.get(raw.strip().upper().replace(" ", "_").replace("-", "_"))


def map_dr_status(raw: str) -> tuple[DeliveryState, str]:
    """Map a delivery-report value to the project state; unknown values stay ``accepted``."""
    found = dr_state_of(raw)
    if found is not None:
        return found
    return DeliveryState.ACCEPTED, f"unrecognised delivery report {raw!r}"
