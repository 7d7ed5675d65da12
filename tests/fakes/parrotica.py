"""A stateful fake of Parrotica's API, usable as ``httpx.MockTransport(fake)``.

It serves the path table of :mod:`providers.parrotica.paths` (or the overrides it is given)
under any URL prefix, checks ``x-api-key`` (401) and the ``{userId}`` in the path (403), and
answers the envelope ``{status, code, message, data?, meta?}``. Ids are integers
(``ids_as_floats`` serialises them as ``1001.0``, as the docs' samples suggest a server might),
and request ids must be integers too: ``1001.0`` in a body is a 400.

Usage::

    fake = FakeParrotica(now=clock)  # any () -> aware datetime
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    fake.set_state(1001, "delivered")                         # move a message along
    fake.fail_next(429, path_contains="/message/")            # Retry-After: fake.retry_after
    fake.raise_next(lambda r: httpx.ReadTimeout("slow", request=r), after=True)
    fake.send_returns_id = False                              # the documented bare envelope

What the fake *infers* (each is an attribute): a send answers 201 with ``data: {id}`` unless
``send_returns_id`` is off; new messages start ``pending`` (``scheduled`` with a future
``scheduledAt``) with ``status`` ``active``; a past ``scheduledAt`` is a 400; a sender ID must
be ``approved``; unknown contact/group/message ids are 404 (``contact not found: 7``); at most
``max_recipients`` entries a send; the message list is newest first with
``meta {page, limit, total}``; each send adds a ``debit`` transaction (one unit per recipient,
a group counting its members) and an activity entry.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx

from providers.parrotica.paths import resolve_paths
from tests.secret_watch import secret

DEFAULT_KEY = secret("test-parrotica-key")
DEFAULT_USER = "u-42"
_NUMBER = re.compile(r"^\+?\d{6,15}$")

Body = Mapping[str, Any] | list[Any] | str | bytes | None
ExcFactory = Callable[[httpx.Request], BaseException]
Handler = Callable[[httpx.Request, dict[str, str]], httpx.Response]


@dataclass(slots=True)
class StoredMessage:
    """One message the fake accepted."""

    id: int
    content: str
    sender_id: str
    numbers: list[str]
    contact_ids: list[int]
    group_ids: list[int]
    state: str
    status: str
    scheduled_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class StoredContact:
    """One address-book contact."""

    id: int
    full_name: str
    number: str
    created_at: datetime


@dataclass(slots=True)
class StoredGroup:
    """One contact group."""

    id: int
    name: str
    contact_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Planned:
    path_contains: str | None
    method: str | None
    status: int = 0
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    exc_factory: ExcFactory | None = None
    after: bool = False


class FakeParrotica:
    """The fake server: call it with an ``httpx.Request``, get an ``httpx.Response``.

    Args:
        api_key: the accepted ``x-api-key``.
        user_id: the account's User ID (the ``{userId}`` every path must carry).
        paths: ``PARROTICA_PATHS``-style overrides the fake serves instead of the defaults.
        now: wall-clock time for dates and the past-``scheduledAt`` check.

    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        user_id: str = DEFAULT_USER,
        paths: Mapping[str, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_key = api_key
        self.user_id = user_id
        self.send_returns_id = True
        self.ids_as_floats = False
        self.newest_first = True
        self.max_recipients = 100
        self.retry_after = "2"
        self.requests: list[httpx.Request] = []
        self.messages: dict[int, StoredMessage] = {}
        self.contacts: dict[int, StoredContact] = {}
        self.groups: dict[int, StoredGroup] = {}
        self.sender_ids: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self.activity: list[dict[str, Any]] = []
        self._now = now
        self._planned: list[_Planned] = []
        self._message_ids = itertools.count(1001)
        self._contact_ids = itertools.count(1)
        self._other_ids = itertools.count(1)
        self._routes = _compile(resolve_paths(paths))
        self._seed()

    # -- what tests read ----------------------------------------------------------------------

    def json_body(self, index: int = -1) -> Any:
        """The JSON body of a recorded request (the last one by default)."""
        return json.loads(self.requests[index].content)

    def requests_to(self, key: str, method: str | None = None) -> list[httpx.Request]:
        """Recorded requests that matched the path ``key`` (and ``method``)."""
        out = []
        for request in self.requests:
            match = self._match(request.url)
            if match is not None and match[0] == key and method in (None, request.method):
                out.append(request)
        return out

    # -- what tests program -------------------------------------------------------------------

    def add_contact(self, full_name: str, number: str) -> StoredContact:
        """Put a contact in the address book directly."""
        contact = StoredContact(next(self._contact_ids), full_name, number, self._now())
        self.contacts[contact.id] = contact
        return contact

    def add_group(self, name: str, contact_ids: list[int], group_id: int | None = None) -> int:
        """Create a group directly; returns its id."""
        gid = group_id if group_id is not None else 4000 + next(self._other_ids)
        self.groups[gid] = StoredGroup(gid, name, list(contact_ids))
        return gid

    def add_message(self, content: str, sender_id: str, *, state: str = "sent") -> int:
        """Store a message as if sent earlier (e.g. another with the same text); its id."""
        now = self._now()
        mid = next(self._message_ids)
        self.messages[mid] = StoredMessage(
            mid, content, sender_id, [], [], [], state, "active", None, now, now
        )
        return mid

    def set_state(self, message_id: int, state: str, status: str | None = None) -> None:
        """Move a message to ``state`` (any word; unknown ones test robustness)."""
        message = self.messages[message_id]
        message.state = state
        if status is not None:
            message.status = status
        message.updated_at = self._now()

    def fail_next(
        self,
        status_code: int,
        body: Body = None,
        *,
        path_contains: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next matching request with this response instead of serving it.

        A ``dict``/``list`` body is JSON, ``str`` text, ``bytes`` as is; ``None`` is the
        error envelope for the status. A 429 gets ``Retry-After: retry_after`` unless given.
        """
        extra = dict(headers or {})
        if status_code == 429 and not any(k.lower() == "retry-after" for k in extra):
            extra["Retry-After"] = self.retry_after
        if body is None and status_code >= 400:
            body = _error_body(status_code, "Too Many Requests" if status_code == 429 else "")
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

        With ``after`` the request is served first (a send is stored) and then the answer is
        "lost": the timeout after processing.
        """
        self._planned.append(_Planned(path_contains, method, exc_factory=exc_factory, after=after))

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

    def _match(self, url: httpx.URL) -> tuple[str, dict[str, str]] | None:
        """The path key and its (unquoted) placeholders; any prefix before the path is fine."""
        raw = url.raw_path.split(b"?", 1)[0].decode("ascii")
        for key, pattern in self._routes:
            found = pattern.search(raw)
            if found is not None:
                return key, {name: unquote(v) for name, v in found.groupdict().items()}
        return None

    def _serve(self, request: httpx.Request) -> httpx.Response:
        matched = self._match(request.url)
        if matched is None:
            return _error(404, f"Cannot {request.method} {request.url.path}")
        key, params = matched
        handler = self._handlers().get((key, request.method))
        if handler is None:
            return _error(405, "Method Not Allowed")
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "Invalid API key")
        if params.get("userId") != self.user_id:
            return _error(403, "This API key does not belong to that user")
        return handler(request, params)

    def _handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("activity", "GET"): lambda r, p: _ok([dict(a) for a in self.activity]),
            ("contacts", "GET"): self._list_contacts,
            ("contacts", "POST"): self._add_contact,
            ("contacts", "DELETE"): self._delete_contacts,
            ("contact", "GET"): self._get_contact,
            ("contact", "DELETE"): self._delete_contact,
            ("contact_summary", "GET"): self._summary,
            ("groups", "GET"): self._list_groups,
            ("messages", "GET"): self._list_messages,
            ("messages", "POST"): self._send,
            ("message", "GET"): self._get_message,
            ("reschedule", "POST"): self._reschedule,
            ("senderids", "GET"): self._list_sender_ids,
            ("transactions", "GET"): lambda r, p: _ok([self._ids(t) for t in self.transactions]),
        }

    # -- messages -----------------------------------------------------------------------------

    def _send(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        body = _json_object(request)
        if body is None:
            return _error(400, "The body must be a JSON object")
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            return _error(400, "content is required")
        sender = self._sender(body.get("senderId"))
        if isinstance(sender, httpx.Response):
            return sender
        numbers = body.get("numbers", [])
        if not isinstance(numbers, list) or not all(
            isinstance(n, str) and _NUMBER.match(n) for n in numbers
        ):
            return _error(400, "numbers must be phone numbers in international format")
        contact_ids, problem = _int_list(body, "contactids")
        group_ids, problem2 = _int_list(body, "groupids")
        if problem or problem2:
            return _error(400, problem or problem2)
        count = len(numbers) + len(contact_ids) + len(group_ids)
        if count == 0:
            return _error(400, "At least one recipient is required")
        if count > self.max_recipients:
            return _error(400, f"At most {self.max_recipients} recipients per request")
        for cid in contact_ids:
            if cid not in self.contacts:
                return _error(404, f"contact not found: {cid}")
        for gid in group_ids:
            if gid not in self.groups:
                return _error(404, f"group not found: {gid}")
        scheduled, problem = self._future(body.get("scheduledAt"), "scheduledAt")
        if problem:
            return _error(400, problem)
        now = self._now()
        mid = next(self._message_ids)
        state = "scheduled" if scheduled is not None else "pending"
        self.messages[mid] = StoredMessage(
            mid, content, sender, numbers, contact_ids, group_ids, state, "active", scheduled,
            now, now,
        )  # fmt: skip
        units = len(numbers) + len(contact_ids)
        units += sum(len(self.groups[g].contact_ids) for g in group_ids)
        self._record_transaction(units, f"SMS message {mid}")
        self._record_activity("message.create", f"Message {mid} to {count} recipient(s)")
        data = {"id": mid} if self.send_returns_id else None
        return _ok(self._ids(data) if data else None, "Message created", code=201)

    def _sender(self, raw: object) -> str | httpx.Response:
        if not isinstance(raw, str) or not raw:
            return _error(400, "senderId is required")
        for sender in self.sender_ids:
            if sender["senderId"] == raw:
                if sender["status"] != "approved":
                    return _error(400, f"Sender ID {raw} is not approved")
                return raw
        return _error(400, f"Sender ID {raw} not found")

    def _future(self, raw: object, name: str) -> tuple[datetime | None, str]:
        if raw is None:
            return None, ""
        if not isinstance(raw, str):
            return None, f"{name} must be an ISO date-time"
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None, f"{name} must be an ISO date-time"
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment <= self._now():
            return None, f"{name} must be in the future"
        return moment, ""

    def _list_messages(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        rows = sorted(self.messages.values(), key=lambda m: m.id, reverse=self.newest_first)
        return self._paged(request, [self._message_json(m) for m in rows])

    def _get_message(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        mid = _path_id(params["id"])
        if mid is None:
            return _error(400, "Invalid message id")
        message = self.messages.get(mid)
        if message is None:
            return _error(404, "message not found")
        return _ok(self._message_json(message))

    def _reschedule(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        body = _json_object(request)
        if body is None:
            return _error(400, "The body must be a JSON object")
        mid = body.get("messageId")
        if type(mid) is not int:
            return _error(400, "messageId must be an integer")
        message = self.messages.get(mid)
        if message is None:
            return _error(404, "message not found")
        when, problem = self._future(body.get("scheduleDate"), "scheduleDate")
        if problem or when is None:
            return _error(400, problem or "scheduleDate is required")
        if message.state != "scheduled":
            return _error(400, "Only scheduled messages can be rescheduled")
        message.scheduled_at = when
        message.updated_at = self._now()
        self._record_activity("message.reschedule", f"Message {mid} moved")
        return _ok(None, "Message rescheduled")

    def _message_json(self, message: StoredMessage) -> dict[str, Any]:
        return {
            "id": self._id(message.id),
            "content": message.content,
            "senderId": message.sender_id,
            "state": message.state,
            "status": message.status,
            "scheduledAt": _iso(message.scheduled_at),
            "createdAt": _iso(message.created_at),
            "updatedAt": _iso(message.updated_at),
            "contacts": [{"id": self._id(c)} for c in message.contact_ids],
            "groups": [{"id": self._id(g)} for g in message.group_ids],
        }

    # -- address book -------------------------------------------------------------------------

    def _list_contacts(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        return self._paged(request, [self._contact_json(c) for c in self.contacts.values()])

    def _add_contact(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        body = _json_object(request)
        if body is None:
            return _error(400, "The body must be a JSON object")
        name, number = body.get("fullName"), body.get("number")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "fullName is required")
        if not isinstance(number, str) or not _NUMBER.match(number):
            return _error(400, "number must be a phone number in international format")
        if any(c.number == number for c in self.contacts.values()):
            return _error(409, "A contact with this number already exists")
        contact = self.add_contact(name, number)
        self._record_activity("contact.create", f"Contact {contact.id} added")
        return _ok(self._contact_json(contact), "Contact created", code=201)

    def _delete_contacts(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        body = _json_object(request)
        ids, problem = _int_list(body or {}, "ids")
        if body is None or problem or not ids:
            return _error(400, problem or "ids must be a non-empty list of integers")
        for cid in ids:
            if cid not in self.contacts:
                return _error(404, f"contact not found: {cid}")
        for cid in ids:
            self._drop_contact(cid)
        self._record_activity("contact.delete", f"{len(ids)} contact(s) deleted")
        return _ok(None, f"{len(ids)} contact(s) deleted")

    def _get_contact(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        cid = _path_id(params["id"])
        if cid is None:
            return _error(400, "Invalid contact id")
        contact = self.contacts.get(cid)
        if contact is None:
            return _error(404, "contact not found")
        return _ok(self._contact_json(contact))

    def _delete_contact(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        cid = _path_id(params["id"])
        if cid is None or cid not in self.contacts:
            return _error(404, "contact not found")
        self._drop_contact(cid)
        return _ok(None, "Contact deleted")

    def _drop_contact(self, cid: int) -> None:
        del self.contacts[cid]
        for group in self.groups.values():
            if cid in group.contact_ids:
                group.contact_ids.remove(cid)

    def _summary(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        data = {"totalContacts": len(self.contacts), "totalGroups": len(self.groups)}
        return _ok(data)

    def _list_groups(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        rows = [
            {"id": self._id(g.id), "name": g.name, "contactCount": len(g.contact_ids)}
            for g in self.groups.values()
        ]
        return _ok(rows)

    def _list_sender_ids(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        return _ok([self._ids(s) for s in self.sender_ids])

    def _contact_json(self, contact: StoredContact) -> dict[str, Any]:
        return {
            "id": self._id(contact.id),
            "fullName": contact.full_name,
            "number": contact.number,
            "createdAt": _iso(contact.created_at),
            "updatedAt": _iso(contact.created_at),
        }

    # -- helpers ------------------------------------------------------------------------------

    def _paged(self, request: httpx.Request, rows: list[dict[str, Any]]) -> httpx.Response:
        try:
            page = int(request.url.params.get("page", "1"))
            limit = int(request.url.params.get("limit", "20"))
        except ValueError:
            return _error(400, "page and limit must be integers")
        if page < 1 or limit < 1:
            return _error(400, "page and limit must be positive")
        chunk = rows[(page - 1) * limit : page * limit]
        return _ok(chunk, meta={"page": page, "limit": limit, "total": len(rows)})

    def _id(self, value: int) -> int | float:
        return float(value) if self.ids_as_floats else value

    def _ids(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        if "id" in out:
            out["id"] = self._id(out["id"])
        return out

    def _record_transaction(self, units: int, description: str) -> None:
        now = _iso(self._now())
        self.transactions.append(
            {
                "id": next(self._other_ids),
                "amount": units,
                "unit": "sms",
                "value": round(units * 0.1, 2),
                "action": "debit",
                "description": description,
                "status": "success",
                "createdAt": now,
                "updatedAt": now,
            }
        )

    def _record_activity(self, action: str, description: str) -> None:
        self.activity.append(
            {
                "id": next(self._other_ids),
                "action": action,
                "description": description,
                "createdAt": _iso(self._now()),
            }
        )

    def _seed(self) -> None:
        now = _iso(self._now())
        ada = self.add_contact("Ada Lovelace", "+15550000001")
        grace = self.add_contact("Grace Hopper", "+15550000002")
        self.add_group("Customers", [ada.id, grace.id], group_id=4004)
        self.sender_ids = [
            {"id": 1, "senderId": "ABC123", "status": "approved", "createdAt": now,
             "updatedAt": now},
            {"id": 2, "senderId": "XYZ789", "status": "pending", "createdAt": now,
             "updatedAt": now},
        ]  # fmt: skip
        self.transactions.append(
            {
                "id": next(self._other_ids),
                "amount": 500,
                "unit": "sms",
                "value": 50.0,
                "action": "credit",
                "description": "Top-up",
                "status": "success",
                "createdAt": now,
                "updatedAt": now,
            }
        )


def _compile(paths: Mapping[str, str]) -> list[tuple[str, re.Pattern[str]]]:
    """Path templates as regexes; fixed segments win over ``{id}`` (``/summary``)."""
    ordered = sorted(paths.items(), key=lambda kv: "{id}" in kv[1])
    out = []
    for key, template in ordered:
        pattern = re.escape(template)
        pattern = pattern.replace(re.escape("{userId}"), r"(?P<userId>[^/]+)")
        pattern = pattern.replace(re.escape("{id}"), r"(?P<id>[^/]+)")
        out.append((key, re.compile(f"^(?:/.*)?{pattern}$")))
    return out


def _json_object(request: httpx.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _int_list(body: Mapping[str, Any], name: str) -> tuple[list[int], str]:
    """A list of strict integers: ``1001.0`` and ``"1001"`` are refused, as ids are ints."""
    raw = body.get(name, [])
    if not isinstance(raw, list) or not all(type(v) is int for v in raw):
        return [], f"{name} must be a list of integers"
    return list(raw), ""


def _path_id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def _ok(
    data: Any = None,
    message: str = "Success",
    *,
    code: int = 200,
    meta: Mapping[str, Any] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"status": "success", "code": code, "message": message}
    if data is not None:
        body["data"] = data
    if meta is not None:
        body["meta"] = dict(meta)
    return httpx.Response(code, json=body)


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"status": "error", "code": status, "message": message or f"HTTP {status}"}


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json=_error_body(status, message))


def _response(status: int, body: Body, headers: Mapping[str, str]) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def _iso(moment: datetime | None) -> str | None:
    """The docs' format: ``2000-01-23T04:56:07.000+00:00``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


__all__ = ["DEFAULT_KEY", "DEFAULT_USER", "FakeParrotica", "StoredMessage"]
