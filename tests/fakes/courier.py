"""A stateful fake of courier and its identity login, usable as ``httpx.MockTransport(fake)``.

One handler serves both services under any URL prefix (the login is told apart by its path,
``/v1/login/``), so it works behind a routed transport (``tests.conftest``), alone in the
contract table, and over real HTTP (``tests.fakes.httpserver``).

- **identity**: ``POST …/v1/login/`` with ``{"username", "password"}`` answers
  ``{"access-token", "refresh-token"}`` (counted in ``logins``); a wrong pair is a 401.
- **courier**: every other path needs ``Authorization: Bearer <token>`` of a live token
  (401 otherwise; :meth:`expire_tokens` ends them all). Answers are JSON:API documents,
  errors ``{"errors": [{code, detail, source, status}]}``; unknown ids are 404, bad attributes
  422 with a ``detail`` and a ``source.pointer``; lists page with ``page[limit]`` /
  ``page[offset]``.

Seeded: one organization (:data:`ORG`), two text accounts — :data:`ACCOUNT_A` with one number
(:data:`NUMBER_A1`) and :data:`ACCOUNT_B` with two (:data:`NUMBER_B1`, and :data:`NUMBER_B2`,
which cannot send SMS).

Usage::

    fake = FakeCourier()
    fake.set_text_status(text_id, "delivered")
    fake.expire_tokens()                                      # the next call gets a 401
    fake.fail_next(429, path_contains="/v1/texts/", headers={"Retry-After": "0"})
    fake.raise_next(lambda r: httpx.ReadTimeout("slow", request=r), after=True)
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.secret_watch import secret

USERNAME = "nurse@sunrise.example"
PASSWORD = secret("correct-horse-battery")
ORG = "0f0f0f0f-0000-4000-8000-000000000001"
OTHER_ORG = "0f0f0f0f-0000-4000-8000-000000000002"
ACCOUNT_A = "aaaaaaaa-0000-4000-8000-00000000000a"
ACCOUNT_B = "bbbbbbbb-0000-4000-8000-00000000000b"
NUMBER_A1 = "aaaaaaaa-1111-4000-8000-0000000000a1"
NUMBER_B1 = "bbbbbbbb-1111-4000-8000-0000000000b1"
NUMBER_B2 = "bbbbbbbb-1111-4000-8000-0000000000b2"
PHONE_A1 = "+15550100001"
PHONE_B1 = "+15550100002"
PHONE_B2 = "+15550100003"
INDIVIDUAL = "11111111-2222-4333-8444-000000000001"
GROUP = "99999999-2222-4333-8444-000000000009"

MEDIA_TYPE = "application/vnd.api+json"
_UUID = re.compile(r"^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Body = Mapping[str, Any] | list[Any] | str | bytes | None
ExcFactory = Callable[[httpx.Request], BaseException]
Handler = Callable[[httpx.Request, str | None], httpx.Response]


@dataclass(slots=True)
class Stored:
    """One resource the fake holds: its id, type and attributes."""

    id: str
    type: str
    attributes: dict[str, Any]

    def json(self) -> dict[str, Any]:
        """As a JSON:API resource object."""
        return {"id": self.id, "type": self.type, "attributes": dict(self.attributes)}


@dataclass(slots=True)
class _Planned:
    path_contains: str | None
    method: str | None
    status: int = 0
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    exc_factory: ExcFactory | None = None
    after: bool = False


# (method, path suffix pattern) → handler name; ``{id}`` captures one id.
_ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/v1/login/", "_login"),
    ("GET", "/v1/organizations/", "_list_organizations"),
    ("GET", "/v1/organizations/{id}/", "_get_organization"),
    ("GET", "/v1/text-accounts/", "_list_accounts"),
    ("GET", "/v1/text-account-numbers/", "_list_numbers"),
    ("GET", "/v1/texts/", "_list_texts"),
    ("POST", "/v1/texts/", "_send_text"),
    ("GET", "/v1/texts/{id}/", "_get_text"),
    ("POST", "/v1/messaging-bulk-messages/", "_create_bulk"),
    ("GET", "/v1/messaging-bulk-messages/{id}/", "_get_bulk"),
    ("POST", "/v1/multicasts/", "_create_multicast"),
    ("GET", "/v1/multicasts/{id}/", "_get_multicast"),
    ("POST", "/v1/user-emails/", "_create_email"),
    ("POST", "/v1/user-emails/{id}/send/", "_send_email"),
]


def _pattern(template: str) -> re.Pattern[str]:
    body = re.escape(template).replace(re.escape("{id}"), r"(?P<id>[^/]+)")
    return re.compile(f"^(?:/.*)?{body}$")


_COMPILED = [(method, _pattern(path), name) for method, path, name in _ROUTES]


class FakeCourier:
    """The fake courier + identity: call it with an ``httpx.Request``, get a response.

    Args:
        users: user name → password the login accepts.
        now: wall-clock time for ``created-at`` / ``posted-time``.

    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.users = dict(users or {USERNAME: PASSWORD})
        self.now = now
        self.requests: list[httpx.Request] = []
        self.logins = 0  # successful logins
        self.login_attempts = 0
        self.tokens: dict[str, str] = {}  # live token → user name
        self.retry_after = "0"
        self.text_status = "accepted"  # a new text's status
        self.email_sent_status = "sent"  # an e-mail's status after /send/
        self.multicast_status = "queued"  # a new multicast's status
        self.templates: set[str] | None = None  # None: any template id exists
        self.organizations: dict[str, Stored] = {}
        self.accounts: dict[str, Stored] = {}
        self.numbers: dict[str, Stored] = {}
        self.texts: dict[str, Stored] = {}
        self.bulk: dict[str, Stored] = {}
        self.multicasts: dict[str, Stored] = {}
        self.emails: dict[str, Stored] = {}
        self._planned: list[_Planned] = []
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._seed()

    # -- what tests program -------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """End every token: the next courier call of each client gets a 401."""
        self.tokens.clear()

    def set_text_status(self, text_id: str, word: str, error: str | None = None) -> None:
        """Move a text to ``word`` (any word; unknown ones test robustness)."""
        text = self.texts[text_id]
        text.attributes["status"] = word
        if error is not None:
            text.attributes["error"] = error

    def set_multicast_status(self, multicast_id: str, word: str) -> None:
        """Move a multicast to ``word``."""
        self.multicasts[multicast_id].attributes["status"] = word

    def add_number(self, account_id: str, phone: str, *, sms: bool = True) -> str:
        """Give a text account another number; its id."""
        number_id = self._new_id()
        self.numbers[number_id] = Stored(
            number_id, "text-account-numbers", _number_attributes(account_id, phone, sms)
        )
        return number_id

    def fail_next(
        self,
        status_code: int,
        body: Body = None,
        *,
        path_contains: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next matching request (login included) with this instead of serving it.

        A ``dict``/``list`` body is JSON, ``str`` text, ``bytes`` as is; ``None`` is a JSON:API
        error for the status. A 429 gets ``Retry-After: retry_after`` unless given.
        """
        extra = dict(headers or {})
        if status_code == 429 and not any(k.lower() == "retry-after" for k in extra):
            extra["Retry-After"] = self.retry_after
        if body is None and status_code >= 400:
            body = _errors_body(status_code, f"HTTP {status_code}")
        self._planned.append(_Planned(path_contains, method, status_code, body, extra))

    def garbage_next(self, *, path_contains: str | None = None) -> None:
        """Answer the next matching request with HTTP 200 and an HTML page."""
        self.fail_next(200, b"<html><body>Bad gateway</body></html>", path_contains=path_contains)

    def raise_next(
        self,
        exc_factory: ExcFactory,
        *,
        after: bool = False,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """Make the next matching request raise ``exc_factory(request)``.

        With ``after`` the request is served first (a text is stored) and the answer is lost.
        """
        self._planned.append(_Planned(path_contains, method, exc_factory=exc_factory, after=after))

    # -- what tests read ----------------------------------------------------------------------

    def json_body(self, index: int = -1) -> Any:
        """The JSON body of a recorded request (the last one by default)."""
        return json.loads(self.requests[index].content)

    def requests_to(self, path_part: str, method: str | None = None) -> list[httpx.Request]:
        """Recorded requests whose path contains ``path_part`` (and of ``method``)."""
        return [r for r in self.requests if path_part in r.url.path and method in (None, r.method)]

    # -- the transport handler ----------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        planned = self._pop_planned(request)
        if planned is not None and planned.exc_factory is not None and not planned.after:
            raise planned.exc_factory(request)
        if planned is not None and planned.exc_factory is None:
            return _response(planned.status, planned.body, planned.headers)
        response = self._serve(request)
        if planned is not None and planned.exc_factory is not None:
            raise planned.exc_factory(request)
        return response

    def _pop_planned(self, request: httpx.Request) -> _Planned | None:
        for i, planned in enumerate(self._planned):
            if planned.path_contains is not None and planned.path_contains not in str(request.url):
                continue
            if planned.method is not None and planned.method != request.method:
                continue
            return self._planned.pop(i)
        return None

    def _serve(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        allowed = False
        for method, pattern, name in _COMPILED:
            found = pattern.match(path)
            if found is None:
                continue
            allowed = True
            if method != request.method:
                continue
            handler: Handler = getattr(self, name)
            item_id = found.groupdict().get("id")
            if name != "_login":
                refused = self._check_token(request)
                if refused is not None:
                    return refused
            return handler(request, item_id)
        if allowed:
            return _error(405, "method-not-allowed", f"{request.method} is not allowed here")
        return _error(404, "not-found", f"No route for {path}")

    def _check_token(self, request: httpx.Request) -> httpx.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return _error(401, "not-authenticated", "Authentication credentials were not provided")
        if token not in self.tokens:
            return _error(401, "token-expired", "The access token is invalid or has expired")
        return None

    # -- identity ------------------------------------------------------------------------------

    def _login(self, request: httpx.Request, _: str | None) -> httpx.Response:
        self.login_attempts += 1
        body = _json(request)
        if body is None:
            return _error(400, "invalid", "The body must be a JSON object")
        user, password = body.get("username"), body.get("password")
        if not isinstance(user, str) or self.users.get(user) != password:
            return _error(401, "invalid-credentials", "Invalid username or password")
        self.logins += 1
        token = f"tok-{next(self._tokens)}"
        self.tokens[token] = user
        return httpx.Response(
            200, json={"access-token": token, "refresh-token": f"refresh-{token}"}
        )

    # -- organizations, accounts, numbers -------------------------------------------------------

    def _list_organizations(self, request: httpx.Request, _: str | None) -> httpx.Response:
        return self._page(request, list(self.organizations.values()))

    def _get_organization(self, request: httpx.Request, item_id: str | None) -> httpx.Response:
        return self._one(self.organizations, item_id, "organization")

    def _list_accounts(self, request: httpx.Request, _: str | None) -> httpx.Response:
        org = request.url.params.get("organization-id")
        rows = [
            a for a in self.accounts.values() if org in (None, a.attributes["organization-id"])
        ]
        return self._page(request, rows)

    def _list_numbers(self, request: httpx.Request, _: str | None) -> httpx.Response:
        account = request.url.params.get("account-id")
        rows = [n for n in self.numbers.values() if account in (None, n.attributes["account-id"])]
        return self._page(request, rows)

    # -- texts ----------------------------------------------------------------------------------

    def _send_text(self, request: httpx.Request, _: str | None) -> httpx.Response:
        attributes = _attributes(request, "texts")
        if isinstance(attributes, httpx.Response):
            return attributes
        account, number = attributes.get("account-id"), attributes.get("number-id")
        org = attributes.get("organization-id")
        if org not in self.organizations:
            return _invalid("organization-id", f"Unknown organization {org}")
        if (
            account not in self.accounts
            or self.accounts[account].attributes["organization-id"] != org
        ):
            return _invalid("account-id", f"Unknown text account {account}")
        stored_number = self.numbers.get(str(number))
        if stored_number is None or stored_number.attributes["account-id"] != account:
            return _invalid("number-id", f"Number {number} is not in account {account}")
        if not stored_number.attributes["capability-sms"]:
            return _invalid("number-id", f"Number {number} cannot send SMS")
        target = attributes.get("target")
        if not isinstance(target, str) or not _E164.match(target):
            return _invalid("target", f"'{target}' is not a valid E.164 phone number")
        message = attributes.get("message")
        if not isinstance(message, str) or not message.strip():
            return _invalid("message", "This field may not be blank")
        if len(message) > 1600:
            return _invalid("message", "Ensure this field has no more than 1600 characters")
        text = Stored(
            self._new_id(),
            "texts",
            {
                "callback-status-url": attributes.get("callback-status-url"),
                "callback-url": attributes.get("callback-url"),
                "created-at": _iso(self.now()),
                "created-by": "00000000-0000-4000-8000-0000000000ff",
                "error": None,
                "from": stored_number.attributes["phone-number"],
                "last-modified-at": _iso(self.now()),
                "message": message,
                "status": self.text_status,
                "target": target,
                "twilio-sid": f"SM{len(self.texts) + 1:032d}",
                "number-id": number,
                "account-id": account,
            },
        )
        self.texts[text.id] = text
        return _created(text)

    def _get_text(self, request: httpx.Request, item_id: str | None) -> httpx.Response:
        return self._one(self.texts, item_id, "text")

    def _list_texts(self, request: httpx.Request, _: str | None) -> httpx.Response:
        params = request.url.params
        account = params.get("account-id")
        if not account:
            return _invalid("account-id", "This parameter is required", parameter=True)
        rows = [t for t in self.texts.values() if t.attributes["account-id"] == account]
        target = params.get("filter[target]")
        if target is not None:
            rows = [t for t in rows if t.attributes["target"] == target]
        number = params.get("filter[number-id]")
        if number is not None:
            rows = [t for t in rows if t.attributes["number-id"] == number]
        return self._page(request, rows)

    # -- bulk messages, multicasts ------------------------------------------------------------

    def _create_bulk(self, request: httpx.Request, _: str | None) -> httpx.Response:
        attributes = _attributes(request, "messaging-bulk-messages")
        if isinstance(attributes, httpx.Response):
            return attributes
        individuals = attributes.get("individual-ids", [])
        groups = attributes.get("individual-group-ids", [])
        for name, ids in (("individual-ids", individuals), ("individual-group-ids", groups)):
            if not isinstance(ids, list) or not all(
                isinstance(i, str) and _UUID.match(i) for i in ids
            ):
                return _invalid(name, "Must be a list of UUIDs")
        if not individuals and not groups:
            return _invalid("individual-ids", "At least one individual or group is required")
        message = attributes.get("message")
        if not isinstance(message, str) or not message.strip():
            return _invalid("message", "This field may not be blank")
        draft = bool(attributes.get("draft", True))
        bulk = Stored(
            self._new_id(),
            "messaging-bulk-messages",
            {
                "created-at": _iso(self.now()),
                "draft": draft,
                "individual-ids": individuals,
                "individual-group-ids": groups,
                "message": message,
                "organization-id": ORG,
                "posted-time": None if draft else _iso(self.now()),
            },
        )
        self.bulk[bulk.id] = bulk
        return _created(bulk)

    def _get_bulk(self, request: httpx.Request, item_id: str | None) -> httpx.Response:
        return self._one(self.bulk, item_id, "bulk message")

    def _create_multicast(self, request: httpx.Request, _: str | None) -> httpx.Response:
        attributes = _attributes(request, "multicasts")
        if isinstance(attributes, httpx.Response):
            return attributes
        template = attributes.get("template-id")
        if not isinstance(template, str) or not template:
            return _invalid("template-id", "This field is required")
        if self.templates is not None and template not in self.templates:
            return _invalid("template-id", f"Unknown template {template}")
        if not isinstance(attributes.get("filter-type"), str):
            return _invalid("filter-type", "This field is required")
        if not isinstance(attributes.get("filter-value", {}), dict):
            return _invalid("filter-value", "Must be an object")
        if attributes.get("organization-id") not in self.organizations:
            return _invalid("organization-id", "Unknown organization")
        if not isinstance(attributes.get("data", {}), dict):
            return _invalid("data", "Must be an object")
        multicast = Stored(
            self._new_id(),
            "multicasts",
            {
                "created-at": _iso(self.now()),
                "data": attributes.get("data", {}),
                "filter-type": attributes["filter-type"],
                "filter-value": attributes.get("filter-value", {}),
                "status": self.multicast_status,
                "template-id": template,
                "template-args": {},
            },
        )
        self.multicasts[multicast.id] = multicast
        return _created(multicast)

    def _get_multicast(self, request: httpx.Request, item_id: str | None) -> httpx.Response:
        return self._one(self.multicasts, item_id, "multicast")

    # -- e-mails --------------------------------------------------------------------------------

    def _create_email(self, request: httpx.Request, _: str | None) -> httpx.Response:
        attributes = _attributes(request, "user-emails")
        if isinstance(attributes, httpx.Response):
            return attributes
        to = attributes.get("to")
        if not isinstance(to, str) or not _EMAIL.match(to):
            return _invalid("to", f"'{to}' is not a valid e-mail address")
        if attributes.get("sender-organization-id") not in self.organizations:
            return _invalid("sender-organization-id", "Unknown organization")
        for name in ("subject", "message"):
            value = attributes.get(name)
            if not isinstance(value, str) or not value.strip():
                return _invalid(name, "This field may not be blank")
        auto = bool(attributes.get("auto-send", True))
        email = Stored(
            self._new_id(),
            "user-emails",
            {
                "created-at": _iso(self.now()),
                "message": attributes["message"],
                "result": None,
                "sender-organization-id": attributes["sender-organization-id"],
                "status": self.email_sent_status if auto else "draft",
                "subject": attributes["subject"],
                "to": [to],
            },
        )
        self.emails[email.id] = email
        return _created(email)

    def _send_email(self, request: httpx.Request, item_id: str | None) -> httpx.Response:
        email = self.emails.get(item_id or "")
        if email is None:
            return _error(404, "not-found", f"No user-email {item_id}")
        if email.attributes["status"] != "draft":
            return _error(422, "already-sent", "This e-mail was already sent")
        email.attributes["status"] = self.email_sent_status
        return _created(email)

    # -- helpers --------------------------------------------------------------------------------

    def _one(self, table: Mapping[str, Stored], item_id: str | None, what: str) -> httpx.Response:
        item = table.get(item_id or "")
        if item is None:
            return _error(404, "not-found", f"No {what} with id {item_id}")
        return _ok({"data": item.json(), "meta": {}})

    def _page(self, request: httpx.Request, rows: list[Stored]) -> httpx.Response:
        try:
            limit = int(request.url.params.get("page[limit]", "100"))
            offset = int(request.url.params.get("page[offset]", "0"))
        except ValueError:
            return _invalid(
                "page", "page[limit] and page[offset] must be integers", parameter=True
            )
        if not 1 <= limit <= 1000 or offset < 0:
            return _invalid("page", "page[limit] is 1..1000, page[offset] >= 0", parameter=True)
        chunk = rows[offset : offset + limit]
        return _ok({"data": [r.json() for r in chunk], "meta": {"count": len(rows)}})

    def _new_id(self) -> str:
        return f"c0c0c0c0-0000-4000-8000-{next(self._ids):012d}"

    def _seed(self) -> None:
        self.organizations[ORG] = Stored(
            ORG, "organizations", {"name": "sunrise", "display-name": "Sunrise Care"}
        )
        self.organizations[OTHER_ORG] = Stored(
            OTHER_ORG, "organizations", {"name": "elsewhere", "display-name": "Elsewhere"}
        )
        for account, phone in ((ACCOUNT_A, PHONE_A1), (ACCOUNT_B, PHONE_B1)):
            self.accounts[account] = Stored(
                account,
                "text-accounts",
                {"organization-id": ORG, "phone-number": phone, "allow-custom-number": False},
            )
        for number, account, phone, sms in (
            (NUMBER_A1, ACCOUNT_A, PHONE_A1, True),
            (NUMBER_B1, ACCOUNT_B, PHONE_B1, True),
            (NUMBER_B2, ACCOUNT_B, PHONE_B2, False),
        ):
            self.numbers[number] = Stored(
                number, "text-account-numbers", _number_attributes(account, phone, sms)
            )


def _number_attributes(account_id: str, phone: str, sms: bool) -> dict[str, Any]:
    return {
        "account-id": account_id,
        "capability-sms": sms,
        "capability-mms": sms,
        "capability-voice": True,
        "phone-number": phone,
    }


def _json(request: httpx.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _attributes(request: httpx.Request, kind: str) -> dict[str, Any] | httpx.Response:
    """The attributes of a JSON:API create document of type ``kind``, or the 400/409."""
    body = _json(request)
    data = body.get("data") if body is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        return _error(400, "parse-error", "Expected a JSON:API document with data.attributes")
    if data.get("type") != kind:
        return _error(409, "type-conflict", f"Expected type {kind}, got {data.get('type')}")
    return dict(data["attributes"])


def _ok(body: Mapping[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": MEDIA_TYPE}
    )


def _created(item: Stored) -> httpx.Response:
    return _ok({"data": item.json(), "meta": {}}, 201)


def _errors_body(
    status: int, detail: str, *, code: str = "error", source: Mapping[str, str] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "code": code, "detail": detail, "meta": {}}
    if source is not None:
        error["source"] = dict(source)
    return {"errors": [error]}


def _error(
    status: int, code: str, detail: str, *, source: Mapping[str, str] | None = None
) -> httpx.Response:
    return _ok(_errors_body(status, detail, code=code, source=source), status)


def _invalid(name: str, detail: str, *, parameter: bool = False) -> httpx.Response:
    source = {"parameter": name} if parameter else {"pointer": f"/data/attributes/{name}"}
    return _error(422, "invalid", detail, source=source)


def _response(status: int, body: Body, headers: Mapping[str, str]) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


__all__ = [
    "ACCOUNT_A",
    "ACCOUNT_B",
    "GROUP",
    "INDIVIDUAL",
    "NUMBER_A1",
    "NUMBER_B1",
    "NUMBER_B2",
    "ORG",
    "OTHER_ORG",
    "PASSWORD",
    "PHONE_A1",
    "PHONE_B1",
    "PHONE_B2",
    "USERNAME",
    "FakeCourier",
    "Stored",
]
