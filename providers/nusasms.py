"""NusaSMS WhatsApp/account API adapter (``APIKey`` header, JSON envelope).

Documented in ``shared/api-docs/nusasms.txt``: ``GET auth/api_key``, ``GET balance``,
``POST whatsapp/message``, ``POST whatsapp/media``, ``GET whatsapp/status/{ref_no}`` and
``POST wa_phone_check``. The key travels in the ``APIKey`` header (:class:`APIKeyAuth`, an
``httpx.Auth``). Every call goes through :func:`providers.ratelimit.paced_request`: it waits its
turn on the account's pacer (one request per 50 ms) and a 429 is retried after its delay (a 429
means the request was not processed, so retrying cannot send twice). The SMS v3 half lives in
:mod:`providers.nusasms_sms`; the adapter the bot uses (:mod:`providers.nusasms_adapter`)
routes between the two by channel.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from i18n import N_, _
from providers.base import (
    AccountInfo,
    Balance,
    DeliveryState,
    OutgoingMessage,
    SendResult,
    StatusReport,
)
from providers.errors import (
    AuthError,
    InsufficientCredit,
    MessageRejected,
    ProviderError,
    UnexpectedResponse,
    ValidationError,
)
from providers.http import json_body, raise_for_common_status
from providers.ratelimit import SlotPacer, paced_request

NAME = "NusaSMS"
JSON_TYPE = "application/json"
ACCEPT_JSON: Mapping[str, str] = {"Accept": JSON_TYPE}

# Letters from the docs; the test server and some receipts spell the names out instead.
# The meanings are stored in English and translated where a chat shows them (bot/render.py).
WA_STATES: Mapping[str, tuple[DeliveryState, str]] = {
    "U": (DeliveryState.ACCEPTED, N_("un-sent: about to be queued")),
    "Q": (DeliveryState.ACCEPTED, N_("on queue")),
    "S": (DeliveryState.SENT, N_("being sent")),
    "D": (DeliveryState.DELIVERED, N_("delivered to the destination")),
    "R": (DeliveryState.READ, N_("read")),
    "A": (DeliveryState.ABORTED, N_("aborted, will not be sent")),
    "F": (DeliveryState.FAILED, N_("failed; the WA credit is refunded")),
}
WA_STATE_WORDS: Mapping[str, str] = {
    "unsent": "U",
    "un-sent": "U",
    "queue": "Q",
    "queued": "Q",
    "sent": "S",
    "delivered": "D",
    "read": "R",
    "abort": "A",
    "aborted": "A",
    "fail": "F",
    "failed": "F",
}
WA_GROUP_ID = re.compile(r"^\d{8,15}-\d{6,}$")
KB = 1024
# Documented: jpg jpeg png pdf up to 512 KB, mp4 webm up to 1 MB (1 KB = 1024 bytes assumed).
WA_MEDIA_LIMITS: Mapping[str, int] = {
    "jpg": 512 * KB,
    "jpeg": 512 * KB,
    "png": 512 * KB,
    "pdf": 512 * KB,
    "mp4": 1024 * KB,
    "webm": 1024 * KB,
}
PHONE_CHECK_MAX = 100
PHONE_CHECK_MIN_DIGITS = 8
PHONE_CHECK_MAX_DIGITS = 14
PHONE_CHECK_NUMBER = re.compile(rf"^\d{{{PHONE_CHECK_MIN_DIGITS},{PHONE_CHECK_MAX_DIGITS}}}$")
# The documented 50 ms is the floor between two requests as NusaSMS sees them. A provider that
# answers within this headroom (2.5 ms at 50 ms) is paced from its answers and needs no margin;
# a further one is paced this much wider than the floor, which covers the network's jitter
# (see providers/ratelimit.py). A 429 that still happens is retried.
PACING_HEADROOM = 0.05
_CREDIT_WORDS = re.compile(r"credit|balance|saldo|insufficient", re.IGNORECASE)

# The name of the WhatsApp credit line among ``balances()`` (``wa_balance``, upper-cased).
WA_BALANCE = "WA"


@dataclass(frozen=True, slots=True)
class NusaSmsSettings:
    """Where NusaSMS's two APIs live (WhatsApp/account, SMS v3 + command) and how to pace them."""

    base_url: str = "https://api.nusasms.com/nusasms_api/1.0"
    sms_base_url: str = "https://api.nusasms.com/api"
    min_interval: float = 0.05
    max_rate_limit_retries: int = 5
    wa_sender: str | None = None


def pacing_interval(min_interval: float) -> float:
    """The pacing schedule's spacing for a far provider: the documented minimum plus headroom."""
    return min_interval * (1 + PACING_HEADROOM) if min_interval > 0 else 0.0


def map_wa_status(raw: str) -> tuple[DeliveryState, str]:
    """Map a WhatsApp status letter (or its spelled-out name) to the project state.

    Unknown values are kept as the provider's own string and do not move the state.
    """
    key = raw.strip()
    letter = key.upper() if len(key) == 1 else WA_STATE_WORDS.get(key.lower(), "")
    if letter in WA_STATES:
        return WA_STATES[letter]
    return DeliveryState.ACCEPTED, _("unrecognised status {status!r}").format(status=raw)


def error_detail(body: Any) -> str:
    """Pull a human-readable reason out of any of NusaSMS's error body shapes."""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc") or []
                where = str(loc[-1]) if isinstance(loc, list) and loc else ""
                msg = str(item.get("msg", ""))
                parts.append(f"{where}: {msg}" if where else msg)
        return "; ".join(p for p in parts if p)
    if isinstance(detail, str):
        return detail
    message = body.get("message")
    description = body.get("description")
    text = str(message) if message else ""
    if description:
        text = f"{text} ({description})" if text else str(description)
    return text


class APIKeyAuth(httpx.Auth):
    """NusaSMS's ``APIKey`` header (spelled so: the docs and the fake use that spelling)."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "APIKeyAuth(<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header; NusaSMS has no challenge to answer."""
        request.headers["APIKey"] = self._api_key
        yield request


class NusaSmsClient:
    """The WhatsApp/account half of NusaSMS for one API key."""

    name: ClassVar[str] = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        limiter: SlotPacer,
        settings: NusaSmsSettings,
    ) -> None:
        self._http = http
        self._auth = APIKeyAuth(api_key)
        self._limiter = limiter
        self._settings = settings
        self._base = settings.base_url.rstrip("/")

    async def verify(self) -> AccountInfo:
        """Check the key with ``GET auth/api_key``."""
        data = await self._call("GET", "auth/api_key")
        if not isinstance(data, dict):
            raise UnexpectedResponse(
                _("{provider} sent no account data.").format(provider=NAME), provider=NAME
            )
        userid = str(data.get("userid", "")) or _("unknown user")
        return AccountInfo(
            account=userid, details=_("client {client}").format(client=data.get("idClient", "?"))
        )

    async def balances(self) -> list[Balance]:
        """Balances from ``GET balance`` (WA, SMS, HLR, SIM, pulsa) with expiry dates."""
        data = await self._call("GET", "balance")
        if not isinstance(data, dict):
            raise UnexpectedResponse(
                _("{provider} sent no balance data.").format(provider=NAME), provider=NAME
            )
        result = []
        for kind in ("wa", "sms", "hlr", "sim", "pulsa"):
            amount = data.get(f"{kind}_balance")
            if amount is None:
                continue
            try:
                value = float(amount)
            except (TypeError, ValueError) as exc:
                raise UnexpectedResponse(
                    _("{provider} sent an unreadable {kind} balance.").format(
                        provider=NAME, kind=kind
                    ),
                    provider=NAME,
                ) from exc
            unit = "IDR" if kind == "pulsa" else _("credits")
            result.append(
                Balance(
                    name=kind.upper(),
                    amount=value,
                    unit=unit,
                    expires=_parse_date(data.get(f"{kind}_expired_date")),
                )
            )
        return result

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send a WhatsApp text (``whatsapp/message``) or file (``whatsapp/media``)."""
        if message.channel != "wa":
            raise ValidationError(
                _("{provider} WhatsApp cannot send on channel {channel!r}.").format(
                    provider=NAME, channel=message.channel
                ),
                provider=NAME,
            )
        body: dict[str, Any] = {
            "destination": message.to,
            "is_group": bool(WA_GROUP_ID.match(message.to)),
        }
        if self._settings.wa_sender:
            body["sender"] = self._settings.wa_sender
        if message.media is not None:
            body["media_base64"] = base64.b64encode(message.media.content).decode("ascii")
            body["file_name"] = message.media.file_name
            if message.text:
                body["caption"] = message.text
            data = await self._call("POST", "whatsapp/media", json=body)
        else:
            body["message"] = message.text
            data = await self._call("POST", "whatsapp/message", json=body)
        ref = data.get("ref_no") if isinstance(data, dict) else None
        if not ref:
            raise UnexpectedResponse(
                _("{provider} accepted the message but returned no ref_no.").format(provider=NAME),
                provider=NAME,
            )
        return SendResult(ref=str(ref), state=DeliveryState.ACCEPTED, provider_status="accepted")

    async def status(self, ref: str, *, channel: str = "wa") -> StatusReport:
        """Ask ``GET whatsapp/status/{ref_no}`` where a WhatsApp message is."""
        data = await self._call("GET", f"whatsapp/status/{quote(ref, safe='')}")
        if not isinstance(data, dict) or "status" not in data:
            raise UnexpectedResponse(
                _("{provider} sent a status without a state.").format(provider=NAME),
                provider=NAME,
            )
        raw = str(data.get("status") or "")
        state, meaning = map_wa_status(raw)
        at = None
        for key in ("read_date", "delivered_date", "sent_date", "create_date"):
            at = _parse_datetime(data.get(key))
            if at is not None:
                break
        return StatusReport(ref=ref, state=state, provider_status=raw, detail=meaning, at=at)

    async def phone_check(self, numbers: Sequence[str], *, callback_url: str | None) -> None:
        """Submit up to 100 numbers (8–14 digits) to ``POST wa_phone_check``.

        The results are not in the answer: NusaSMS posts them to ``callback_url`` later.
        """
        if not 1 <= len(numbers) <= PHONE_CHECK_MAX:
            raise ValidationError(
                _("{provider} checks 1 to {most} numbers per request ({count} given).").format(
                    provider=NAME, most=PHONE_CHECK_MAX, count=len(numbers)
                ),
                provider=NAME,
            )
        bad = [n for n in numbers if not PHONE_CHECK_NUMBER.match(n)]
        if bad:
            raise ValidationError(
                _(
                    "{provider} checks numbers of {fewest} to {most} digits only: {numbers}."
                ).format(
                    provider=NAME,
                    fewest=PHONE_CHECK_MIN_DIGITS,
                    most=PHONE_CHECK_MAX_DIGITS,
                    numbers=", ".join(bad[:5]),
                ),
                provider=NAME,
            )
        body: dict[str, Any] = {"phone_numbers": list(numbers)}
        if callback_url:
            body["callback_url"] = callback_url
        await self._call("POST", "wa_phone_check", json=body)

    async def _call(self, method: str, path: str, *, json: Any = None) -> Any:
        """One paced request (429s retried); returns the envelope's ``data``."""
        response = await paced_request(
            self._http,
            method,
            f"{self._base}/{path}",
            pacer=self._limiter,
            provider=NAME,
            max_retries=self._settings.max_rate_limit_retries,
            json=json,
            headers=ACCEPT_JSON,
            auth=self._auth,
        )
        return self._unwrap(response)

    @staticmethod
    def _unwrap(response: httpx.Response) -> Any:
        status = response.status_code
        if status < 400:  # the hot path: a success envelope, read once
            body = json_body(response, provider=NAME)
            if not isinstance(body, dict):
                raise UnexpectedResponse(
                    _("{provider} answered with an unexpected body.").format(provider=NAME),
                    provider=NAME,
                )
            if body.get("error") is True:
                raise _envelope_error(body, error_detail(body))
            return body.get("data")
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = error_detail(body)
        raise_for_common_status(response, provider=NAME, detail=detail)
        raise _client_error(status, detail)


def _client_error(status: int, detail: str) -> ProviderError:
    reason = detail or _("no reason given")
    if status == 404:
        return ValidationError(
            _("{provider}: not found ({reason}).").format(provider=NAME, reason=reason),
            provider=NAME,
            code="404",
        )
    if status == 402 or _CREDIT_WORDS.search(detail):
        return InsufficientCredit(
            _("{provider}: not enough credit ({reason}).").format(provider=NAME, reason=reason),
            provider=NAME,
            code=str(status),
        )
    return ValidationError(
        _("{provider} refused the request (HTTP {status}): {reason}.").format(
            provider=NAME, status=status, reason=reason
        ),
        provider=NAME,
        code=str(status),
    )


def _envelope_error(body: Mapping[str, Any], detail: str) -> ProviderError:
    code = str(body.get("error_code", "")) or None
    # The provider's own words are matched, before a missing reason is put in ours.
    if _CREDIT_WORDS.search(detail):
        return InsufficientCredit(
            _("{provider}: not enough credit ({reason}).").format(provider=NAME, reason=detail),
            provider=NAME,
        )
    if re.search(r"api ?key|unauthori[sz]ed|forbidden", detail, re.IGNORECASE):
        return AuthError(
            _("{provider} refused the API key ({reason}).").format(provider=NAME, reason=detail),
            provider=NAME,
            code=code,
        )
    reason = detail or _("no reason given")
    return MessageRejected(
        _("{provider} refused the message: {reason}.").format(provider=NAME, reason=reason),
        provider=NAME,
        code=code,
    )


def _parse_date(raw: object) -> date | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _parse_datetime(raw: object) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
