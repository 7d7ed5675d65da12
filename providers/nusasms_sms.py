"""NusaSMS SMS v3 and command API client (``user`` + ``password``, XML by default, or JSON).

Documented in ``shared/api-docs/nusasms.txt``: ``sendsms/plain`` (``GSM``, ``SMSText``,
``unicode``, ``otp=Y``), ``sendsms/group`` (an address-book ``group`` instead of ``GSM``) under
``{sms_base}/v3/``, and ``{sms_base}/command`` with ``cmd=CREDITS`` or ``cmd=DR&ref_no=``.

- Sends are ``POST`` with a form body (as the docs' headings say, and as public clients do), so
  the password never sits in a URL; ``command`` is ``GET`` as documented.
- ``output=json`` is always asked for, yet XML answers (the default) are still understood,
  parsed with ``defusedxml`` because the body comes from outside.
- Every call goes through :func:`providers.ratelimit.paced_request`, paced by the pacer of this
  SMS account (keyed by ``sms_user``); a 429 is retried after its delay: it proves the request
  was not processed.
- Vendor status codes come back in HTTP 200 bodies; :mod:`providers.nusasms_codes` maps them.
- ``CREDITS`` and ``DR`` bodies are not printed in the docs: the parsers accept the shape
  ``{"results": [{"status", "credits"|"value", ...}]}`` as well as a bare object
  ``{"value", "expiredDate"}`` seen in public clients (*inferred*).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from i18n import N_, _
from providers.base import Balance, DeliveryState, SendResult, StatusReport
from providers.errors import (
    ProviderError,
    UnexpectedResponse,
    ValidationError,
)
from providers.http import raise_for_common_status
from providers.nusasms import NusaSmsSettings, error_detail
from providers.nusasms_codes import NAME, map_dr_status, normalise_code, sms_error
from providers.ratelimit import SlotPacer, paced_request
from providers.sms_encoding import is_gsm7

Row = dict[str, str]
OUTPUT_JSON: Mapping[str, str] = {"output": "json"}
# Stored in English as a status detail and translated where a chat shows it (bot/render.py).
GROUP_NO_REPORT = N_("NusaSMS gives no delivery report for a group campaign (see app.nusasms.com)")
_CREDIT_KEYS = ("credits", "credit", "value", "balance", "sms_balance", "amount")
_EXPIRY_KEYS = ("expiredDate", "expired_date", "expiry", "sms_expired_date", "expired")
_DR_KEYS = ("dr_status", "status_dr", "dr", "delivery_status", "report", "message_status")


@dataclass(frozen=True, slots=True)
class SmsCredentials:
    """The SMS v3 API login (different from the WhatsApp API key)."""

    user: str
    password: str = field(repr=False)


def parse_results(response: httpx.Response) -> list[Row]:
    """The ``result`` rows of a JSON or XML answer, every value as a string.

    Raises:
        UnexpectedResponse: when the body is neither readable JSON nor XML.

    """
    raw = response.content.removeprefix(b"\xef\xbb\xbf").lstrip()
    if raw.startswith(b"<"):
        return _xml_rows(raw)  # bytes: the parser honours the declared encoding
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise UnexpectedResponse(
            _(
                "{provider} answered HTTP {status} with a body that is neither JSON nor XML."
            ).format(provider=NAME, status=response.status_code),
            provider=NAME,
        ) from exc
    return _json_rows(body)


def _json_rows(body: Any) -> list[Row]:
    if isinstance(body, dict) and "results" in body:
        body = body["results"]
    if isinstance(body, dict):
        if isinstance(body.get("result"), dict | list):
            return _json_rows(body["result"])
        body = [body]
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise UnexpectedResponse(
            _("{provider} answered JSON without result rows.").format(provider=NAME),
            provider=NAME,
        )
    return [{str(k): _text(v) for k, v in row.items()} for row in body]


def _xml_rows(raw: bytes) -> list[Row]:
    try:
        root = fromstring(raw)
    except (ParseError, DefusedXmlException) as exc:
        raise UnexpectedResponse(
            _("{provider} answered with unreadable XML.").format(provider=NAME), provider=NAME
        ) from exc
    results = [el for el in root.iter() if el.tag == "result"]
    if not results:
        # A bare <results>/<response> with fields directly inside it.
        results = [root]
    return [{child.tag: (child.text or "").strip() for child in el} for el in results]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first(row: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in row.items()}
    for key in keys:
        value = lowered.get(key.lower())
        if value not in (None, ""):
            return value
    return None


class NusaSmsSmsClient:
    """The SMS v3 + command half of NusaSMS for one ``sms_user``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        credentials: SmsCredentials,
        limiter: SlotPacer,
        settings: NusaSmsSettings,
    ) -> None:
        self._http = http
        self._creds = credentials
        self._limiter = limiter
        self._settings = settings
        self._base = settings.sms_base_url.rstrip("/")

    async def send_plain(self, to: str, text: str, *, otp: bool = False) -> SendResult:
        """Send one SMS with ``sendsms/plain``; the ref is NusaSMS's ``messageid``."""
        row = await self._send("v3/sendsms/plain", {"GSM": to}, text, otp=otp)
        ref = row.get("messageid", "")
        if not ref:
            raise UnexpectedResponse(
                _("{provider} accepted the SMS but returned no messageid.").format(provider=NAME),
                provider=NAME,
            )
        return SendResult(ref=ref, state=DeliveryState.ACCEPTED, provider_status="0")

    async def send_group(self, group: str, text: str, *, otp: bool = False) -> SendResult:
        """Send to an address-book group with ``sendsms/group``; the ref is the campaign."""
        row = await self._send("v3/sendsms/group", {"group": group}, text, otp=otp)
        campaign = row.get("campaign_name", "")
        if not campaign:
            raise UnexpectedResponse(
                _("{provider} accepted the group send but named no campaign.").format(
                    provider=NAME
                ),
                provider=NAME,
            )
        return SendResult(
            ref=campaign,
            state=DeliveryState.ACCEPTED,
            provider_status="0",
            detail=_(
                "campaign {campaign}; NusaSMS gives no delivery report for a group campaign "
                "(see app.nusasms.com)"
            ).format(campaign=campaign),
        )

    async def credits(self) -> Balance:
        """The SMS credits from ``command?cmd=CREDITS`` (also how the login is verified)."""
        row = await self._command({"cmd": "CREDITS", "type": "sms"})
        raw = _first(row, _CREDIT_KEYS)
        try:
            amount = float(raw or "")
        except ValueError as exc:
            raise UnexpectedResponse(
                _("{provider} sent unreadable credits.").format(provider=NAME), provider=NAME
            ) from exc
        expiry = _first(row, _EXPIRY_KEYS)
        expires = None
        if expiry:
            try:
                expires = date.fromisoformat(expiry[:10])
            except ValueError:
                expires = None
        return Balance(
            name=_("SMS API credits"), amount=amount, unit=_("credits"), expires=expires
        )

    async def delivery_report(self, ref: str) -> StatusReport:
        """Where an SMS is, from ``command?cmd=DR&ref_no=``."""
        row = await self._command({"cmd": "DR", "ref_no": ref})
        raw = _first(row, _DR_KEYS)
        if raw is None:
            raise UnexpectedResponse(
                _("{provider} sent a delivery report without a state.").format(provider=NAME),
                provider=NAME,
            )
        state, meaning = map_dr_status(raw)
        return StatusReport(ref=ref, state=state, provider_status=raw, detail=meaning)

    async def _send(self, path: str, target: Mapping[str, str], text: str, *, otp: bool) -> Row:
        form = {
            "user": self._creds.user,
            "password": self._creds.password,
            "SMSText": text,
            **target,
        }
        if not is_gsm7(text):
            form["unicode"] = "true"
        if otp:
            form["otp"] = "Y"
        rows = await self._call("POST", path, params=OUTPUT_JSON, data=form)
        return _checked(rows[0])

    async def _command(self, params: Mapping[str, str]) -> Row:
        query = {
            "user": self._creds.user,
            "password": self._creds.password,
            **params,
            "output": "json",
        }
        rows = await self._call("GET", "command", params=query)
        return _checked(rows[0])

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        data: Mapping[str, str] | None = None,
    ) -> list[Row]:
        """One paced request (429s retried); returns the answer's result rows.

        ``params`` is the query string, ``data`` a form body.
        """
        response = await paced_request(
            self._http,
            method,
            f"{self._base}/{path}",
            pacer=self._limiter,
            provider=NAME,
            max_retries=self._settings.max_rate_limit_retries,
            params=params,
            data=data,
        )
        return _unwrap(response)


def _unwrap(response: httpx.Response) -> list[Row]:
    status = response.status_code
    detail = ""
    if status >= 400:
        try:
            detail = error_detail(response.json())
        except ValueError:
            detail = ""
    raise_for_common_status(response, provider=NAME, detail=detail)
    if status >= 400:
        raise ValidationError(
            _("{provider} refused the request (HTTP {status}): {reason}.").format(
                provider=NAME, status=status, reason=detail or _("no reason given")
            ),
            provider=NAME,
            code=str(status),
        )
    rows = parse_results(response)
    if not rows:
        raise UnexpectedResponse(
            _("{provider} answered without a result.").format(provider=NAME), provider=NAME
        )
    return rows


def _checked(row: Row) -> Row:
    """The row when its status is 0 (or absent), else the mapped error."""
    code = normalise_code(row.get("status", "0") or "0")
    error: ProviderError | None = sms_error(code)
    if error is not None:
        raise error
    return row
