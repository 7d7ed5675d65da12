"""A stateful fake of NusaSMS's documented HTTP APIs, usable as ``httpx.MockTransport(fake)``.

Both halves of ``shared/api-docs/nusasms.txt`` are served by one callable:

* the WhatsApp/account API under any path containing ``/nusasms_api/1.0/`` (``APIKey`` header,
  JSON envelope, FastAPI-style 422 bodies): ``GET auth/api_key``, ``GET balance``,
  ``POST whatsapp/message``, ``POST whatsapp/media``, ``GET whatsapp/status/{ref_no}`` and
  ``POST wa_phone_check``;
* the SMS v3 API under any path ending in ``/api/v3/sendsms/plain``, ``/api/v3/sendsms/group``
  or ``/api/command`` (``user``/``password`` query or form parameters, XML by default, JSON
  with ``output=json``, vendor status codes ``0`` … ``-99`` in an HTTP 200).

Usage::

    fake = FakeNusaSms(min_interval=0.05)
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    fake.set_status(ref_no, "D")                      # move a message along
    fake.fail_next(503, "down", path_contains="/whatsapp/")
    fake.raise_next(lambda r: httpx.ConnectError("refused", request=r))
    fake.sms_status_next("-78")                       # next SMS send answers -78

What the fake *infers* beyond the docs (each is an attribute or argument, so tests can change
it):

* Unknown WhatsApp ref_no: HTTP 404 with ``{"error": true, "error_code": 404,
  "message": "Message not found", "data": null}``. New messages start in ``initial_status``
  (``"Q"``); ``sent_date``/``delivered_date``/``read_date`` are filled as the status moves.
* WhatsApp credits are deducted as documented (1 per 1500 characters, 2 per media); when
  ``credit.wa_balance`` is too low the answer is HTTP ``insufficient_credit_status`` (400)
  with the envelope message ``"Insufficient WA balance"``. ``None`` means unlimited.
* Request bodies are JSON objects (FastAPI body models); a form body, as in the curl
  examples, gets FastAPI's 422. Strings accept numbers and booleans accept ``"true"``/``1``
  as pydantic v1 would.
* ``whatsapp/media``: the schema marks ``sender`` required but both examples omit it, so it
  is optional unless ``media_requires_sender``. ``file_name`` is required with
  ``media_base64``; the type comes from ``file_name`` or else the URL's path; 1 KB = 1024 B.
* Rate limit (``min_interval``): keyed by the API key (WhatsApp) or ``user`` (SMS), measured
  from the last *accepted* request; answered HTTP 429 with ``Retry-After: retry_after`` and
  the envelope message ``"Too Many Requests"`` on both APIs.
* SMS: ``-6`` for a missing ``GSM`` (or ``group``), ``-12`` for a missing ``SMSText``,
  ``-13`` for a ``GSM`` that is not digits in international format (leading ``0``), ``-7``
  when ``credit.sms_expired_date`` is in the past, ``-2`` when ``credit.sms_balance`` cannot
  pay one credit per 160-character part (70 for ``unicode``), ``-55`` for an unknown or
  empty ``group`` (``sms_groups``). Message ids are 18 digits.
* ``api/command`` bodies are not printed in the docs. The fake answers, in XML or JSON::

      cmd=CREDITS           {"results": [{"status": "0", "credits": "1000"}]}
      cmd=DR&ref_no=<id>    {"results": [{"status": "0", "messageid": "<id>",
                                          "dr_status": "SENT"}]}

  with ``credits`` from ``credit.sms_balance`` and ``dr_status`` settable with
  :meth:`FakeNusaSms.set_sms_dr`. Unknown ref_no or cmd: ``status`` ``-1``; bad user: ``-5``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import httpx

from tests.secret_watch import secret

DEV_TESTING_API_KEY: Final = secret("DEV_TESTING_API_KEY")
TEST_API_KEY: Final = secret("test-api-key")
TEST_SMS_PASSWORD: Final = secret("sms-password")
MAGIC_REFS: Final[Mapping[str, str]] = {
    "queued": "Q",
    "sent": "S",
    "delivered": "D",
    "read": "R",
    "aborted": "A",
    "failed": "F",
}
KB: Final = 1024
MEDIA_LIMITS: Final[Mapping[str, int]] = {
    "jpg": 512 * KB,
    "jpeg": 512 * KB,
    "png": 512 * KB,
    "pdf": 512 * KB,
    "mp4": 1024 * KB,
    "webm": 1024 * KB,
}
WA_PREFIX: Final = "/nusasms_api/1.0/"
_SMS_ROUTE = re.compile(r"/api/(?:v3/sendsms/(?P<kind>plain|group)|command)/?$")
_PHONE = re.compile(r"^\d{8,14}$")
_GSM = re.compile(r"^[1-9]\d{7,14}$")
_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on", "t"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", "f"})

Body = Mapping[str, Any] | list[Any] | str | bytes | None
ExcFactory = Callable[[httpx.Request], BaseException]


@dataclass(slots=True)
class Credit:
    """The documented ``Credit`` schema; ``None`` amounts are sent as ``null``."""

    id_client: int = 4321
    wa_balance: float | None = 1000
    wa_expired_date: str | None = "2099-12-31"
    hlr_balance: float | None = 0
    hlr_expired_date: str | None = None
    sim_balance: float | None = 0
    sim_expired_date: str | None = None
    sms_balance: float | None = 1000
    sms_expired_date: str | None = "2099-12-31"
    pulsa_balance: float | None = 0

    def to_json(self) -> dict[str, Any]:
        """The ``data`` of ``GET balance``."""
        out: dict[str, Any] = {"idClient": self.id_client}
        for kind in ("wa", "hlr", "sim", "sms"):
            out[f"{kind}_balance"] = getattr(self, f"{kind}_balance")
            out[f"{kind}_expired_date"] = getattr(self, f"{kind}_expired_date")
        out["pulsa_balance"] = self.pulsa_balance
        return out


@dataclass(slots=True)
class StoredMessage:
    """One WhatsApp message the fake accepted."""

    ref_no: str
    kind: str  # "text" or "media"
    destination: str
    sender: str
    is_group: bool
    status: str
    create_date: datetime
    message: str | None = None
    caption: str | None = None
    file_name: str | None = None
    media_url: str | None = None
    media: bytes | None = None
    timeout: int | None = None
    sent_date: datetime | None = None
    delivered_date: datetime | None = None
    read_date: datetime | None = None

    def advance(self, letter: str, now: datetime) -> None:
        """Set the status letter and fill the dates the move implies."""
        self.status = letter
        if letter in ("S", "D", "R") and self.sent_date is None:
            self.sent_date = now
        if letter in ("D", "R") and self.delivered_date is None:
            self.delivered_date = now
        if letter == "R" and self.read_date is None:
            self.read_date = now

    def to_json(self) -> dict[str, Any]:
        """The documented ``GetMessage`` shape."""
        return {
            "destination": self.destination,
            "sender": self.sender,
            "is_group": self.is_group,
            "create_date": _iso(self.create_date),
            "sent_date": _iso(self.sent_date),
            "read_date": _iso(self.read_date),
            "delivered_date": _iso(self.delivered_date),
            "ref_no": self.ref_no,
            "status": self.status,
            "message": self.message,
            "caption": self.caption,
            "media_url": self.media_url,
        }


@dataclass(slots=True)
class PhoneCheck:
    """One accepted ``wa_phone_check`` request."""

    phone_numbers: list[str]
    callback_url: str | None


@dataclass(slots=True)
class SmsMessage:
    """One SMS the fake accepted on ``sendsms/plain``."""

    messageid: str
    destination: str
    text: str
    unicode: bool
    otp: bool
    dr_status: str = "SENT"


@dataclass(slots=True)
class SmsCampaign:
    """One accepted ``sendsms/group`` request."""

    campaign_name: str
    group: str
    destinations: list[str]
    text: str


@dataclass(slots=True)
class _Planned:
    path_contains: str | None
    status: int = 0
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    exc_factory: ExcFactory | None = None


class FakeNusaSms:
    """The fake server: call it with an ``httpx.Request``, get an ``httpx.Response``.

    Args:
        api_key: the accepted ``APIKey``.
        dev_server: also accept ``DEV_TESTING_API_KEY`` and answer the magic ref_nos.
        sms_user: the accepted SMS ``user``.
        sms_password: the accepted SMS ``password``.
        min_interval: minimum seconds between accepted requests per account; ``None`` is off.
        tolerance: seconds of scheduling jitter forgiven by the rate limit.
        retry_after: the ``Retry-After`` header of 429 answers.
        clock: monotonic seconds for the rate limit.
        now: wall-clock time for message dates.

    """

    def __init__(
        self,
        *,
        api_key: str = TEST_API_KEY,
        dev_server: bool = False,
        sms_user: str = "sms-user",
        sms_password: str = TEST_SMS_PASSWORD,
        min_interval: float | None = None,
        tolerance: float = 0.0,
        retry_after: str = "1",
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_keys = {api_key, DEV_TESTING_API_KEY} if dev_server else {api_key}
        self.dev_server = dev_server
        self.sms_user = sms_user
        self.sms_password = sms_password
        self.min_interval = min_interval
        self.tolerance = tolerance
        self.retry_after = retry_after
        self.userid = "fake-user"
        self.id_person = 1001
        self.credit = Credit()
        self.default_sender = "6281100000000"
        self.initial_status = "Q"
        self.insufficient_credit_status = 400
        self.media_requires_sender = False
        self.sms_groups: dict[str, list[str]] = {"Example": ["6281200000001", "6281200000002"]}
        self.requests: list[httpx.Request] = []
        self.messages: dict[str, StoredMessage] = {}
        self.phone_checks: list[PhoneCheck] = []
        self.sms_messages: dict[str, SmsMessage] = {}
        self.sms_campaigns: list[SmsCampaign] = []
        self.rate_limited = 0
        self._clock = clock
        self._now = now
        self._last_hit: dict[str, float] = {}
        self._planned: list[_Planned] = []
        self._sms_codes: list[str] = []
        self._seq = itertools.count(1)
        self._lock = threading.RLock()  # the HTTP bridge may call from another thread

    # -- what tests read ----------------------------------------------------------------------

    @property
    def sent(self) -> list[StoredMessage]:
        """Accepted WhatsApp messages, oldest first."""
        return list(self.messages.values())

    @property
    def sms_sent(self) -> list[SmsMessage]:
        """Accepted plain SMS, oldest first."""
        return list(self.sms_messages.values())

    def json_body(self, index: int = -1) -> Any:
        """The JSON body of a recorded request (the last one by default)."""
        return json.loads(self.requests[index].content)

    # -- what tests program -------------------------------------------------------------------

    def set_status(self, ref_no: str, letter: str) -> None:
        """Move a WhatsApp message to ``letter`` (any string; unknown ones test robustness)."""
        with self._lock:
            self.messages[ref_no].advance(letter, self._now())

    def set_sms_dr(self, messageid: str, dr_status: str) -> None:
        """Set what ``cmd=DR`` reports for an SMS (e.g. ``DELIVERED``, ``NOT_DELIVERED``)."""
        with self._lock:
            self.sms_messages[messageid].dr_status = dr_status

    def fail_next(
        self,
        status_code: int,
        body: Body = None,
        *,
        path_contains: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next request (whose path contains ``path_contains``) with this response.

        A ``dict``/``list`` body is sent as JSON, ``str`` as text, ``bytes`` as they are. A 429
        without its own ``Retry-After`` gets the fake's ``retry_after``.
        """
        extra = dict(headers or {})
        if status_code == 429 and not any(k.lower() == "retry-after" for k in extra):
            extra["Retry-After"] = self.retry_after
        with self._lock:
            self._planned.append(_Planned(path_contains, status_code, body, extra))

    def raise_next(self, exc_factory: ExcFactory, *, path_contains: str | None = None) -> None:
        """Make the next (matching) request raise ``exc_factory(request)``.

        Example: ``fake.raise_next(lambda r: httpx.ReadTimeout("timed out", request=r))``.
        """
        with self._lock:
            self._planned.append(_Planned(path_contains, exc_factory=exc_factory))

    def sms_status_next(self, code: str) -> None:
        """Force the vendor status code (e.g. ``"-2"``, ``"-78"``) of the next SMS send."""
        with self._lock:
            self._sms_codes.append(code)

    # -- the transport handler ----------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            path = request.url.path
            planned = self._pop_planned(path)
            if planned is not None:
                if planned.exc_factory is not None:
                    raise planned.exc_factory(request)
                return _response(planned.status, planned.body, planned.headers)
            if WA_PREFIX in path:
                return self._wa(request, path.split(WA_PREFIX, 1)[1].rstrip("/"))
            match = _SMS_ROUTE.search(path)
            if match is not None:
                return self._sms(request, match.group("kind"))
            return _json(404, {"detail": "Not Found"})

    def _pop_planned(self, path: str) -> _Planned | None:
        for i, planned in enumerate(self._planned):
            if planned.path_contains is None or planned.path_contains in path:
                return self._planned.pop(i)
        return None

    def _throttle(self, account: str, body: Mapping[str, Any]) -> httpx.Response | None:
        if self.min_interval is None:
            return None
        now = self._clock()
        last = self._last_hit.get(account)
        if last is not None and now - last < self.min_interval - self.tolerance:
            self.rate_limited += 1
            return _json(429, body, headers={"Retry-After": self.retry_after})
        self._last_hit[account] = now
        return None

    # -- WhatsApp / account API ---------------------------------------------------------------

    def _wa(self, request: httpx.Request, route: str) -> httpx.Response:
        api_key = request.headers.get("APIKey", "")
        limited = self._throttle(f"wa:{api_key}", _envelope_error(429, "Too Many Requests"))
        if limited is not None:
            return limited
        routes: dict[str, tuple[str, Callable[[httpx.Request], httpx.Response]]] = {
            "auth/api_key": ("GET", self._wa_whoami),
            "balance": ("GET", self._wa_balance),
            "whatsapp/message": ("POST", self._wa_message),
            "whatsapp/media": ("POST", self._wa_media),
            "wa_phone_check": ("POST", self._wa_phone_check),
        }
        ref_no = route.removeprefix("whatsapp/status/")
        if ref_no != route and ref_no and "/" not in ref_no:
            route = "whatsapp/status/{ref_no}"
            routes[route] = ("GET", self._wa_status)
        if route not in routes:
            return _json(404, {"detail": "Not Found"})
        method, handler = routes[route]
        if request.method != method:
            return _json(405, {"detail": "Method Not Allowed"})
        if api_key not in self.api_keys:
            return _json(401, _envelope_error(401, "Invalid API Key"))
        return handler(request)

    def _wa_whoami(self, request: httpx.Request) -> httpx.Response:
        data = {
            "userid": self.userid,
            "idPerson": self.id_person,
            "idClient": self.credit.id_client,
        }
        return _json(200, _envelope(data))

    def _wa_balance(self, request: httpx.Request) -> httpx.Response:
        return _json(200, _envelope(self.credit.to_json()))

    def _wa_message(self, request: httpx.Request) -> httpx.Response:
        body, invalid = _json_object(request)
        if invalid is not None:
            return invalid
        f = _Fields(body)
        destination = f.text("destination", required=True)
        text = f.text("message", required=True)
        sender, is_group, timeout = f.text("sender"), f.boolean("is_group"), f.integer("timeout")
        if f.errors or destination is None or text is None:
            return _validation_error(f.errors)
        refused = self._charge_wa(max(1, math.ceil(len(text) / 1500)))
        if refused is not None:
            return refused
        msg = self._store("text", destination, sender, is_group, timeout, message=text)
        data = {"sender": msg.sender, "destination": destination, "message": text}
        return _json(201, _envelope({**data, "ref_no": msg.ref_no}))

    def _wa_media(self, request: httpx.Request) -> httpx.Response:
        body, invalid = _json_object(request)
        if invalid is not None:
            return invalid
        f = _Fields(body)
        destination = f.text("destination", required=True)
        sender = f.text("sender", required=self.media_requires_sender)
        is_group, timeout = f.boolean("is_group"), f.integer("timeout")
        caption, file_name = f.text("caption"), f.text("file_name")
        media_url, media_b64 = f.url("media_url"), f.text("media_base64")
        content = self._check_media(f, media_b64, media_url, file_name)
        if f.errors or destination is None:
            return _validation_error(f.errors)
        refused = self._charge_wa(2)
        if refused is not None:
            return refused
        msg = self._store(
            "media",
            destination,
            sender,
            is_group,
            timeout,
            caption=caption,
            file_name=file_name,
            media_url=media_url,
            media=content,
        )
        data = {"sender": msg.sender, "destination": destination, "caption": caption}
        return _json(201, _envelope({**data, "media_url": media_url, "ref_no": msg.ref_no}))

    @staticmethod
    def _check_media(
        f: _Fields, media_b64: str | None, media_url: str | None, file_name: str | None
    ) -> bytes | None:
        if media_b64 is None and media_url is None:
            f.error(["body"], "media_base64 or media_url is required", "value_error")
            return None
        if media_b64 is not None and not file_name:
            f.error(
                ["body", "file_name"], "file_name is required with media_base64", "value_error"
            )
            return None
        name = file_name or urlsplit(media_url or "").path
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if ext not in MEDIA_LIMITS:
            allowed = ", ".join(MEDIA_LIMITS)
            f.error(["body", "file_name"], f"file type not allowed; use {allowed}", "value_error")
            return None
        if media_b64 is None:
            return None  # the real API downloads the URL later; the fake cannot size it
        try:
            content = base64.b64decode(media_b64, validate=True)
        except (binascii.Error, ValueError):
            f.error(["body", "media_base64"], "invalid base64 data", "value_error")
            return None
        if len(content) > MEDIA_LIMITS[ext]:
            limit = MEDIA_LIMITS[ext] // KB
            msg = f"file too large: {len(content)} bytes, max {limit} KB for {ext}"
            f.error(["body", "media_base64"], msg, "value_error")
        return content

    def _wa_status(self, request: httpx.Request) -> httpx.Response:
        ref_no = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        msg = self.messages.get(ref_no)
        if msg is None and self.dev_server and ref_no in MAGIC_REFS:
            now = self._now()
            msg = StoredMessage(
                ref_no, "text", "6281234567890", self.default_sender, False, "", now
            )
            msg.message = f"test message {ref_no}"
            msg.advance(MAGIC_REFS[ref_no], now)
        if msg is None:
            return _json(404, _envelope_error(404, "Message not found"))
        return _json(200, _envelope(msg.to_json()))

    def _wa_phone_check(self, request: httpx.Request) -> httpx.Response:
        body, invalid = _json_object(request)
        if invalid is not None:
            return invalid
        f = _Fields(body)
        numbers = body.get("phone_numbers")
        if numbers is None:
            f.error(["body", "phone_numbers"], "field required", "value_error.missing")
        elif not isinstance(numbers, list):
            f.error(["body", "phone_numbers"], "value is not a valid list", "type_error.list")
        elif len(numbers) > 100:
            msg = "ensure this value has at most 100 items"
            f.error(["body", "phone_numbers"], msg, "value_error.list.max_items")
        else:
            for i, number in enumerate(numbers):
                if not isinstance(number, str) or not _PHONE.match(number):
                    msg = f'string does not match regex "{_PHONE.pattern}"'
                    f.error(["body", "phone_numbers", i], msg, "value_error.str.regex")
        callback_url = f.url("callback_url")
        if f.errors or not isinstance(numbers, list):
            return _validation_error(f.errors)
        self.phone_checks.append(PhoneCheck([str(n) for n in numbers], callback_url))
        return _json(201, _envelope(None))

    def _charge_wa(self, cost: int) -> httpx.Response | None:
        balance = self.credit.wa_balance
        if balance is None:
            return None
        if balance < cost:
            status = self.insufficient_credit_status
            return _json(status, _envelope_error(status, "Insufficient WA balance"))
        self.credit.wa_balance = balance - cost
        return None

    def _store(
        self,
        kind: str,
        destination: str,
        sender: str | None,
        is_group: bool,
        timeout: int | None,
        **extra: Any,
    ) -> StoredMessage:
        ref_no = f"wa-{uuid.uuid4().hex[:12]}-{next(self._seq)}"
        msg = StoredMessage(
            ref_no=ref_no,
            kind=kind,
            destination=destination,
            sender=sender or self.default_sender,
            is_group=is_group,
            status=self.initial_status,
            create_date=self._now(),
            timeout=timeout,
            **extra,
        )
        self.messages[ref_no] = msg
        return msg

    # -- SMS v3 API ---------------------------------------------------------------------------

    def _sms(self, request: httpx.Request, kind: str | None) -> httpx.Response:
        if request.method not in ("GET", "POST"):
            return _json(405, {"detail": "Method Not Allowed"})
        params = dict(parse_qsl(request.url.query.decode("utf-8", "replace"), True))
        if request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(request.content.decode("utf-8", "replace"), True))
        limited = self._throttle(
            f"sms:{params.get('user', '')}", _envelope_error(429, "Too Many Requests")
        )
        if limited is not None:
            return limited
        as_json = params.get("output", "").lower() == "json"
        if kind == "plain":
            row = self._sms_plain(params)
        elif kind == "group":
            row = self._sms_group(params)
        else:
            row = self._sms_command(params)
        return _sms_results([row], as_json=as_json)

    def _sms_authorised(self, params: Mapping[str, str]) -> bool:
        return params.get("user") == self.sms_user and params.get("password") == self.sms_password

    def _sms_refusal(self, params: Mapping[str, str], destination: str, parts: int) -> str:
        """The vendor status for a send, ``"0"`` when it may go ahead."""
        if self._sms_codes:
            return self._sms_codes.pop(0)
        if not self._sms_authorised(params):
            return "-5"
        if not destination:
            return "-6"
        if not params.get("SMSText"):
            return "-12"
        expiry = self.credit.sms_expired_date
        if expiry and expiry < self._now().date().isoformat():
            return "-7"
        balance = self.credit.sms_balance
        if balance is not None and balance < parts:
            return "-2"
        return "0"

    def _sms_parts(self, params: Mapping[str, str]) -> int:
        per_part = 70 if params.get("unicode", "").lower() in _TRUE_WORDS else 160
        return max(1, math.ceil(len(params.get("SMSText", "")) / per_part))

    def _sms_plain(self, params: Mapping[str, str]) -> dict[str, str]:
        gsm = params.get("GSM", "")
        status = self._sms_refusal(params, gsm, self._sms_parts(params))
        if status == "0" and not _GSM.match(gsm):
            status = "-13"
        if status != "0":
            return {"status": status, "messageid": "", "destination": gsm}
        self._debit_sms(self._sms_parts(params))
        messageid = str(175041319200000000 + next(self._seq))
        self.sms_messages[messageid] = SmsMessage(
            messageid,
            gsm,
            params.get("SMSText", ""),
            unicode=params.get("unicode", "").lower() in _TRUE_WORDS,
            otp=params.get("otp", "").upper() == "Y",
        )
        return {"status": "0", "messageid": messageid, "destination": gsm}

    def _sms_group(self, params: Mapping[str, str]) -> dict[str, str]:
        group = params.get("group", "")
        campaign = f"Group-Api-Campaign-{uuid.uuid4().hex[:7]}-{5100 + next(self._seq)}"
        contacts = self.sms_groups.get(group, [])
        status = self._sms_refusal(params, group, self._sms_parts(params) * max(1, len(contacts)))
        if status == "0" and not contacts:
            status = "-55"
        if status == "0":
            self._debit_sms(self._sms_parts(params) * len(contacts))
            text = params.get("SMSText", "")
            self.sms_campaigns.append(SmsCampaign(campaign, group, list(contacts), text))
        return {"status": status, "campaign_name": campaign, "group": group}

    def _sms_command(self, params: Mapping[str, str]) -> dict[str, str]:
        if not self._sms_authorised(params):
            return {"status": "-5"}
        cmd = params.get("cmd", "").upper()
        if cmd == "CREDITS":
            return {"status": "0", "credits": _number(self.credit.sms_balance)}
        if cmd == "DR":
            ref_no = params.get("ref_no", "")
            sms = self.sms_messages.get(ref_no)
            if sms is None:
                return {"status": "-1", "messageid": ref_no, "dr_status": ""}
            return {"status": "0", "messageid": ref_no, "dr_status": sms.dr_status}
        return {"status": "-1"}

    def _debit_sms(self, parts: int) -> None:
        if self.credit.sms_balance is not None:
            self.credit.sms_balance -= parts


class _Fields:
    """Pydantic-v1-like field checks that collect FastAPI ``detail`` items."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.errors: list[dict[str, Any]] = []

    def error(self, loc: list[str | int], msg: str, kind: str) -> None:
        self.errors.append({"loc": loc, "msg": msg, "type": kind})

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.error(["body", name], "field required", "value_error.missing")
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # pydantic v1 coerces numbers to str
        self.error(["body", name], "str type expected", "type_error.str")
        return None

    def boolean(self, name: str) -> bool:
        value = self.body.get(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int | str) and str(value).lower() in _TRUE_WORDS | _FALSE_WORDS:
            return str(value).lower() in _TRUE_WORDS
        self.error(["body", name], "value could not be parsed to a boolean", "type_error.bool")
        return False

    def integer(self, name: str) -> int | None:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        self.error(["body", name], "value is not a valid integer", "type_error.integer")
        return None

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            self.error(["body", name], "invalid or missing URL scheme", "value_error.url.scheme")
            return None
        return value


def _json_object(request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None]:
    """The request's JSON object, or the 422 FastAPI would answer instead."""
    if not request.content:
        return {}, _validation_error(
            [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}]
        )
    try:
        body = json.loads(request.content)
    except ValueError as exc:
        return {}, _validation_error(
            [{"loc": ["body"], "msg": str(exc), "type": "value_error.jsondecode"}]
        )
    if not isinstance(body, dict):
        return {}, _validation_error(
            [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
        )
    return body, None


def _envelope(data: Any, message: str = "Success") -> dict[str, Any]:
    return {"error": False, "error_code": 0, "message": message, "data": data}


def _envelope_error(code: int, message: str) -> dict[str, Any]:
    return {"error": True, "error_code": code, "message": message, "data": None}


def _validation_error(errors: list[dict[str, Any]]) -> httpx.Response:
    return _json(422, {"detail": errors})


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _response(status: int, body: Body, headers: Mapping[str, str]) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return _json(status, body, headers)


def _sms_results(rows: list[dict[str, str]], *, as_json: bool) -> httpx.Response:
    """The documented ``{"results": [...]}`` / ``<results><result>…`` answer."""
    if as_json:
        return _json(200, {"results": rows})
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<results>"]
    for row in rows:
        lines.append("  <result>")
        lines.extend(f"    <{key}>{escape(value)}</{key}>" for key, value in row.items())
        lines.append("  </result>")
    lines.append("</results>")
    xml = "\n".join(lines) + "\n"
    return httpx.Response(
        200, content=xml.encode(), headers={"Content-Type": "text/xml; charset=UTF-8"}
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _number(value: float | None) -> str:
    if value is None:
        return "0"
    return str(int(value)) if float(value).is_integer() else str(value)
