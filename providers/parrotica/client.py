"""The Parrotica HTTP client: typed calls over the shared ``httpx.AsyncClient``.

Auth is :class:`~providers.parrotica.answers.ApiKeyAuth` (the ``x-api-key`` header); the
account's User ID goes into every path (:mod:`providers.parrotica.paths`, overridable by
``PARROTICA_PATHS``). Answers are read, and failures mapped to :mod:`providers.errors`, in
:mod:`providers.parrotica.answers`; transport failures become ``ProviderUnavailable`` here
(``maybe_sent`` when the request may have been acted on). Results are the dataclasses of
:mod:`providers.parrotica.models`.

A send's answer may lack the new message's id (the documented answer is the bare envelope).
The client then looks for it in the message list — same content and sender ID, created within
``match_window`` of the request — and reports the id as unknown unless exactly one message
matches. It never sends again.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, ClassVar, TypeVar

import httpx

from i18n import N_, _, ngettext
from providers.base import AccountInfo
from providers.errors import (
    AuthError,
    ProviderError,
    UnexpectedResponse,
    ValidationError,
)
from providers.parrotica.answers import Answer, ApiKeyAuth, read_answer
from providers.parrotica.facts import (
    MAX_RECIPIENTS_PER_REQUEST,
    NAME,
    Recipients,
    format_time,
    read_id,
    recipient_batches,
    wire_ids,
)
from providers.parrotica.models import (
    Ack,
    Activity,
    Contact,
    ContactSummary,
    Group,
    IdSource,
    Message,
    Page,
    SenderId,
    SendOutcome,
    Transaction,
    as_list,
    parse_activity,
    parse_contact,
    parse_group,
    parse_message,
    parse_sender_id,
    parse_summary,
    parse_transaction,
)
from providers.parrotica.paths import fill, resolve_paths
from providers.ratelimit import SlotPacer, paced_request

T = TypeVar("T")
_NUMBER = re.compile(r"^\+?\d{6,15}$")
_CLAIMED_KEPT = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ParroticaClient:
    """One Parrotica account: its API key, its User ID, the shared HTTP client.

    Args:
        http: the shared client (``MockTransport`` in tests).
        api_key: the account's API key (sent as ``x-api-key`` only).
        user_id: the account's User ID (part of every path).
        base_url: ``PARROTICA_BASE_URL``; a path prefix is kept.
        paths: ``PARROTICA_PATHS`` overrides by key (validated).
        match_window: how far a listed message's ``createdAt`` may lie from the send request
            for the message to count as the one just sent.
        clock: the current time (aware); tests inject their own.
        pacer: the account's pacer (:mod:`providers.ratelimit`); unpaced by default, since
            Parrotica documents no rate: only its 429s hold the account back.
        rate_limit_retries: how often a 429 is sent again after its ``Retry-After``.

    Raises:
        AuthError: the API key or the User ID is empty.
        ValueError: ``paths`` has an unknown key or a path without its placeholders, or
            ``match_window`` is negative.

    """

    MAX_RECIPIENTS_PER_REQUEST: ClassVar[int] = MAX_RECIPIENTS_PER_REQUEST
    LOOKUP_PAGE_SIZE: ClassVar[int] = 50
    LOOKUP_PAGES: ClassVar[int] = 3

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        user_id: str,
        base_url: str,
        paths: Mapping[str, str] | None = None,
        match_window: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = _utcnow,
        pacer: SlotPacer | None = None,
        rate_limit_retries: int = 3,
    ) -> None:
        if not api_key.strip():
            raise AuthError(
                _("{provider} needs an API key (api_key).").format(provider=NAME), provider=NAME
            )
        if not user_id.strip():
            raise AuthError(
                _(
                    "{provider} needs the account's User ID (user_id) as well as the API key."
                ).format(provider=NAME),
                provider=NAME,
            )
        if match_window < timedelta(0):
            raise ValueError("match_window must not be negative")
        self._http = http
        self._auth = ApiKeyAuth(api_key)
        self._secret = api_key
        self._user_id = user_id.strip()
        self._base_url = base_url.rstrip("/")
        self._paths = resolve_paths(paths)
        self._window = match_window
        self._clock = clock
        self._claimed: deque[int] = deque(maxlen=_CLAIMED_KEPT)
        self._pacer = pacer if pacer is not None else SlotPacer(0)
        self._retries = rate_limit_retries  # 429s sent again after their Retry-After

    @property
    def user_id(self) -> str:
        """The account's User ID."""
        return self._user_id

    @classmethod
    def batches(
        cls,
        numbers: Sequence[str] = (),
        contact_ids: Sequence[int] = (),
        group_ids: Sequence[int] = (),
    ) -> list[Recipients]:
        """Recipients split into send requests of at most ``MAX_RECIPIENTS_PER_REQUEST``."""
        return recipient_batches(
            numbers, contact_ids, group_ids, size=cls.MAX_RECIPIENTS_PER_REQUEST
        )

    # -- account ---------------------------------------------------------------------------

    async def verify(self) -> AccountInfo:
        """Check the key and User ID with a cheap read (the sender IDs)."""
        senders = await self.sender_ids()
        names = ", ".join(s.sender_id for s in senders[:5]) or _("none yet")
        details = (
            _("sender IDs: {names} (+{more})") if len(senders) > 5 else _("sender IDs: {names}")
        ).format(names=names, more=len(senders) - 5)
        return AccountInfo(account=_("user {id}").format(id=self._user_id), details=details)

    async def sender_ids(self) -> list[SenderId]:
        """The account's sender IDs."""
        return await self._list("senderids", parse_sender_id, what=N_("sender IDs"))

    async def transactions(self) -> list[Transaction]:
        """The account's credit transactions."""
        return await self._list("transactions", parse_transaction, what=N_("transactions"))

    async def activity(self) -> list[Activity]:
        """The account's recent activity."""
        return await self._list("activity", parse_activity, what=N_("activity"))

    # -- messages --------------------------------------------------------------------------

    async def send(
        self,
        content: str,
        *,
        sender_id: str,
        numbers: Sequence[str] = (),
        contact_ids: Sequence[int] = (),
        group_ids: Sequence[int] = (),
        scheduled_at: datetime | None = None,
    ) -> SendOutcome:
        """Send (or, with a future ``scheduled_at``, schedule) one message.

        At most :attr:`MAX_RECIPIENTS_PER_REQUEST` entries; split larger sends with
        :meth:`batches`.

        Raises:
            ValidationError: empty text, sender ID or recipients, a malformed number or id,
                too many recipients, or ``scheduled_at`` naive or not in the future — all
                before any request.
            ProviderError: as in the module docstring; ``maybe_sent`` says whether the
                message may exist anyway.

        """
        body = self._send_body(content, sender_id, numbers, contact_ids, group_ids, scheduled_at)
        started = self._clock()
        answer = await self._call("POST", "messages", body=body, sending=True)
        finished = self._clock()
        message_id = _id_in(answer.data)
        if message_id is not None:
            self._claimed.append(message_id)
            return SendOutcome(message_id, IdSource.RESPONSE, scheduled_at)
        return await self._find_sent(content, sender_id.strip(), started, finished, scheduled_at)

    async def get_message(self, message_id: int) -> Message:
        """One message, with its state."""
        (checked,) = wire_ids([message_id], what=N_("message ids"))
        answer = await self._call("GET", "message", item_id=checked)
        return parse_message(answer.data)

    async def list_messages(self, page: int = 1, limit: int = 20) -> Page[Message]:
        """A page of the account's messages."""
        return await self._page("messages", parse_message, page, limit, what=N_("messages"))

    async def messages_between(self, low: datetime, high: datetime) -> tuple[list[Message], bool]:
        """Listed messages created from ``low`` to ``high``, and whether that is all of them.

        At most ``LOOKUP_PAGES`` pages are read; the answer is complete when the list ended,
        or when a page listed newest first reached a message older than ``low`` (the order is
        not documented, so it is checked, never assumed).
        """
        found: list[Message] = []
        for page in range(1, self.LOOKUP_PAGES + 1):
            listing = await self.list_messages(page, self.LOOKUP_PAGE_SIZE)
            times = [m.created_at for m in listing.items if m.created_at is not None]
            found.extend(m for m in listing.items if _within(m.created_at, low, high))
            newest_first = all(a >= b for a, b in pairwise(times))
            if not listing.has_more or (newest_first and times and times[-1] < low):
                return found, True
        return found, False

    async def reschedule(self, message_id: int, when: datetime) -> Ack:
        """Move a scheduled message to ``when`` (body ``{messageId, scheduleDate}``).

        Raises:
            ValidationError: ``when`` is naive or not in the future (before any request), or
                Parrotica refused (unknown message, already sent).

        """
        (checked,) = wire_ids([message_id], what=N_("message ids"))
        body = {"messageId": checked, "scheduleDate": self._future(when, "scheduleDate")}
        answer = await self._call("POST", "reschedule", body=body)
        return Ack(answer.message)

    # -- address book ----------------------------------------------------------------------

    async def contacts(self, page: int = 1, limit: int = 20) -> Page[Contact]:
        """A page of the address book."""
        return await self._page("contacts", parse_contact, page, limit, what=N_("contacts"))

    async def get_contact(self, contact_id: int) -> Contact:
        """One contact."""
        (checked,) = wire_ids([contact_id], what=N_("contact ids"))
        answer = await self._call("GET", "contact", item_id=checked)
        return parse_contact(answer.data)

    async def add_contact(self, full_name: str, number: str) -> Contact | None:
        """Add a contact; the new contact when Parrotica returns it, else ``None``."""
        name = full_name.strip()
        if not name:
            raise ValidationError(
                _("A {provider} contact needs a name.").format(provider=NAME), provider=NAME
            )
        body = {"fullName": name, "number": _checked_number(number)}
        answer = await self._call("POST", "contacts", body=body)
        if isinstance(answer.data, dict) and "id" in answer.data:
            return parse_contact(answer.data)
        return None

    async def delete_contacts(self, contact_ids: Sequence[int]) -> Ack:
        """Delete contacts by id (one request, body ``{ids: [...]}``)."""
        ids = wire_ids(contact_ids, what=N_("contact ids"))
        if not ids:
            raise ValidationError(_("Name at least one contact id to delete."), provider=NAME)
        answer = await self._call("DELETE", "contacts", body={"ids": ids})
        return Ack(answer.message)

    async def delete_contact(self, contact_id: int) -> Ack:
        """Delete one contact (``DELETE`` on the ``contact`` path)."""
        (checked,) = wire_ids([contact_id], what=N_("contact ids"))
        answer = await self._call("DELETE", "contact", item_id=checked)
        return Ack(answer.message)

    async def contact_summary(self) -> ContactSummary:
        """The address book's counts."""
        answer = await self._call("GET", "contact_summary")
        return parse_summary(answer.data)

    async def groups(self) -> list[Group]:
        """The contact groups (``group:<id>`` recipients)."""
        return await self._list("groups", parse_group, what=N_("groups"))

    # -- internals -------------------------------------------------------------------------

    def _send_body(
        self,
        content: str,
        sender_id: str,
        numbers: Sequence[str],
        contact_ids: Sequence[int],
        group_ids: Sequence[int],
        scheduled_at: datetime | None,
    ) -> dict[str, Any]:
        if not content.strip():
            raise ValidationError(_("The message text is empty."), provider=NAME)
        if not sender_id.strip():
            raise ValidationError(
                _("Pick a {provider} sender ID first (/senders).").format(provider=NAME),
                provider=NAME,
            )
        if isinstance(numbers, str):
            raise ValidationError(_("numbers must be a list of numbers."), provider=NAME)
        body: dict[str, Any] = {
            "content": content,
            "senderId": sender_id.strip(),
            "numbers": [_checked_number(n) for n in numbers],
            "contactids": wire_ids(contact_ids, what=N_("contact ids")),
            "groupids": wire_ids(group_ids, what=N_("group ids")),
        }
        count = len(body["numbers"]) + len(body["contactids"]) + len(body["groupids"])
        if count == 0:
            raise ValidationError(_("The message has no recipients."), provider=NAME)
        if count > self.MAX_RECIPIENTS_PER_REQUEST:
            raise ValidationError(
                _(
                    "{provider} takes at most {most} recipients a request ({count} given); "
                    "split the send."
                ).format(provider=NAME, most=self.MAX_RECIPIENTS_PER_REQUEST, count=count),
                provider=NAME,
            )
        if scheduled_at is not None:
            body["scheduledAt"] = self._future(scheduled_at, "scheduledAt")
        return body

    def _future(self, when: datetime, field: str) -> str:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValidationError(
                _("{field} needs a time zone.").format(field=field), provider=NAME
            )
        if when <= self._clock():
            raise ValidationError(
                _("{field} {time} is in the past; pick a later time.").format(
                    field=field, time=format_time(when)
                ),
                provider=NAME,
            )
        return format_time(when)

    async def _find_sent(
        self,
        content: str,
        sender_id: str,
        started: datetime,
        finished: datetime,
        scheduled_at: datetime | None,
    ) -> SendOutcome:
        """Look for the message just sent in the message list (its id was not returned)."""
        low, high = started - self._window, finished + self._window
        try:
            listed, _complete = await self.messages_between(low, high)
        except ProviderError as exc:
            detail = _(
                "{provider} accepted the message; its id could not be looked up: {error}"
            ).format(provider=NAME, error=exc.message)
            return SendOutcome(None, IdSource.NONE, scheduled_at, detail)
        matches = {
            m.id: m
            for m in listed
            if m.content.strip() == content.strip()
            and m.sender_id == sender_id
            and m.id not in self._claimed
        }
        if len(matches) == 1:
            (message_id,) = matches
            self._claimed.append(message_id)
            return SendOutcome(message_id, IdSource.MESSAGE_LIST, scheduled_at)
        if not matches:
            untracked = _(
                "{provider} accepted the message but did not return its id, and no message in "
                "its message list matched; its delivery cannot be tracked."
            )
        else:
            untracked = ngettext(
                "{provider} accepted the message but did not return its id, and {count} message "
                "in its message list matched; its delivery cannot be tracked.",
                "{provider} accepted the message but did not return its id, and {count} messages "
                "in its message list matched; its delivery cannot be tracked.",
                len(matches),
            )
        detail = untracked.format(provider=NAME, count=len(matches))
        return SendOutcome(None, IdSource.NONE, scheduled_at, detail)

    async def _list(self, key: str, parse: Callable[[object], T], *, what: str) -> list[T]:
        answer = await self._call("GET", key)
        return [parse(item) for item in as_list(answer.data, what=what)]

    async def _page(
        self, key: str, parse: Callable[[object], T], page: int, limit: int, *, what: str
    ) -> Page[T]:
        if page < 1 or not 1 <= limit <= 100:
            raise ValidationError(
                _("page must be 1 or more and limit between 1 and 100."), provider=NAME
            )
        answer = await self._call("GET", key, params={"page": page, "limit": limit})
        items = tuple(parse(item) for item in as_list(answer.data, what=what))
        total = None
        for name in ("total", "totalItems", "totalCount", "count"):
            raw = answer.meta.get(name)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                total = int(raw)
                break
        return Page(items, page, limit, total)

    async def _call(
        self,
        method: str,
        key: str,
        *,
        item_id: int | None = None,
        params: Mapping[str, int] | None = None,
        body: Mapping[str, Any] | None = None,
        sending: bool = False,
    ) -> Answer:
        url = self._base_url + fill(self._paths[key], user_id=self._user_id, item_id=item_id)
        # The one paced-request helper: Parrotica documents no rate, so only its 429s pace us.
        response = await paced_request(
            self._http,
            method,
            url,
            pacer=self._pacer,
            provider=NAME,
            max_retries=self._retries,
            params=params,
            json=body,
            auth=self._auth,
        )
        return read_answer(response, sending=sending, secret=self._secret)


def _within(moment: datetime | None, low: datetime, high: datetime) -> bool:
    return moment is not None and low <= moment <= high


def _id_in(data: object) -> int | None:
    """``data.id`` of a send answer (also ``[{id}]``), or ``None`` when there is none."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict) or data.get("id") is None:
        return None
    try:
        return read_id(data["id"], what=N_("a message id"))
    except UnexpectedResponse:
        return None  # a fractional id is no id: look it up instead


def _checked_number(number: object) -> str:
    if not isinstance(number, str) or not _NUMBER.match(number.strip()):
        raise ValidationError(
            _("{number!r} is not a phone number in international format (+ and digits).").format(
                number=number
            ),
            provider=NAME,
        )
    return number.strip()
