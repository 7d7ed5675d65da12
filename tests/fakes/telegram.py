"""An offline fake of the Telegram Bot API for tests.

:class:`FakeTelegram` is the shared, thread-safe state: it answers Bot API methods with JSON
shaped like the real server's (``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code": 400, "description": "Bad Request: ..."}``), remembers the messages the bot sent so
edits and deletes behave like on Telegram, and records every call as a :class:`Call`.

:class:`OfflineRequest` plugs that state into python-telegram-bot as its request layer, so an
``Application`` runs without any network::

    state = FakeTelegram()
    app = offline_builder(state).build()
    async with app:
        await feed(app, private_message("/ping"))
    assert state.last_text(1) == "pong"

The update builders (:func:`private_message`, :func:`group_message`, :func:`photo_message`,
:func:`document_message`, :func:`callback_query`) return dicts ready for
``telegram.Update.de_json``. The same state also backs the real HTTP server in
``tests.fakes.bot_api_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

from telegram import Update
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, RequestData

from tests.secret_watch import WATCH, secret

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_ID",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "ApiError",
    "Call",
    "FakeTelegram",
    "OfflineRequest",
    "UploadedFile",
    "bad_request",
    "callback_query",
    "command_entities",
    "decode_form_value",
    "document_message",
    "edited_message",
    "feed",
    "group_message",
    "normalize_params",
    "offline_builder",
    "photo_message",
    "private_message",
    "render_text",
    "utf16_len",
]

DEFAULT_TOKEN = secret("123:ABC")
BOT_ID = 999
BOT_USERNAME = "chatops_test_bot"
BOT_FIRST_NAME = "ChatOps"
GROUP_TITLE = "Team"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_RESULTS = 50
MAX_INLINE_ID_BYTES = 64
MAX_NEXT_OFFSET_BYTES = 64

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

# Parameters whose form-encoded value is a plain string (PTB does not JSON-encode ``str``
# values), so ``"123"`` must stay a string instead of becoming an int.
STRING_PARAMS = frozenset(
    [
        "action",
        "address",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "certificate",
        "currency",
        "custom_title",
        "description",
        "emoji",
        "error_message",
        "explanation",
        "file_id",
        "first_name",
        "foursquare_id",
        "game_short_name",
        "inline_message_id",
        "inline_query_id",
        "invite_link",
        "ip_address",
        "language_code",
        "last_name",
        "message_effect_id",
        "name",
        "next_offset",
        "parse_mode",
        "payload",
        "phone_number",
        "pre_checkout_query_id",
        "provider_token",
        "query_id",
        "question",
        "result_id",
        "secret_token",
        "shipping_query_id",
        "short_description",
        "start_parameter",
        "text",
        "title",
        "url",
    ]
)
# Parameters that are JSON objects or arrays; a string value for them is decoded.
JSON_PARAMS = frozenset(
    [
        "allowed_updates",
        "button",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "reply_markup",
        "reply_parameters",
        "results",
        "scope",
    ]
)

_T = TypeVar("_T")

_update_ids = itertools.count(1)
_user_message_ids = itertools.count(100_001)
_callback_ids = itertools.count(1)
_inline_query_ids = itertools.count(1)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram uses for entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class UploadedFile:
    """A file the bot uploaded in a multipart request (e.g. ``sendDocument``)."""

    file_name: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class Call:
    """One Bot API call as the fake received it.

    ``params`` are decoded: numbers are ints, ``reply_markup``/``entities`` are dicts/lists and
    uploaded files are :class:`UploadedFile`. ``at`` is ``time.monotonic()`` when the call was
    answered; ``status`` and ``response`` are what the fake answered.
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the fake answered ``{"ok": true, ...}``."""
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer (``None`` for errors)."""
        return self.response.get("result")


class ApiError(Exception):
    """An error answer of the Bot API, raised inside the fake and turned into JSON."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(description: str) -> ApiError:
    """A 400 error; ``description`` is given without the ``Bad Request: `` prefix."""
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class _Injected:
    method: str
    error: ApiError
    times: int


# --------------------------------------------------------------------------------------------
# HTML parse mode
# --------------------------------------------------------------------------------------------

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SUPPORTED_TAGS = {*_SIMPLE_TAGS, "a", "span", "blockquote", "tg-emoji"}


class _TelegramHTML(HTMLParser):
    """Parses Telegram's HTML subset into plain text and entities, like the real server."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.parts: list[str] = []
        self.length = 0
        self.stack: list[tuple[str, int, dict[str, str | None]]] = []
        self.entities: list[dict[str, Any]] = []
        self.error: str | None = None
        self._line_starts = [0]
        for match in re.finditer("\n", source):
            self._line_starts.append(match.end())

    def _byte_offset(self) -> int:
        line, column = self.getpos()
        index = self._line_starts[line - 1] + column
        return len(self.source[:index].encode("utf-8"))

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error:
            return
        attributes = dict(attrs)
        if tag not in _SUPPORTED_TAGS:
            self._fail(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
            return
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            self._fail(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self._byte_offset()}'
            )
            return
        self.stack.append((tag, self.length, attributes))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')

    def handle_endtag(self, tag: str) -> None:
        if self.error:
            return
        if not self.stack:
            self._fail(f"Unexpected end tag at byte offset {self._byte_offset()}")
            return
        open_tag, start, attributes = self.stack.pop()
        if open_tag != tag:
            self._fail(
                f"Unmatched end tag at byte offset {self._byte_offset()}, "
                f'expected "</{open_tag}>", found "</{tag}>"'
            )
            return
        language = (attributes.get("class") or "").removeprefix("language-")
        if (
            tag == "code"
            and self.stack
            and self.stack[-1][0] == "pre"
            and (attributes.get("class") or "").startswith("language-")
        ):
            self.stack[-1][2]["language"] = language
            return
        length = self.length - start
        if length <= 0:
            return
        entity: dict[str, Any] = {"offset": start, "length": length}
        if tag in _SIMPLE_TAGS:
            entity["type"] = _SIMPLE_TAGS[tag]
            if tag == "pre" and attributes.get("language"):
                entity["language"] = attributes["language"]
        elif tag == "span":
            entity["type"] = "spoiler"
        elif tag == "blockquote":
            entity["type"] = (
                "expandable_blockquote" if "expandable" in attributes else "blockquote"
            )
        elif tag == "tg-emoji":
            entity["type"] = "custom_emoji"
            entity["custom_emoji_id"] = attributes.get("emoji-id") or ""
        else:  # "a"
            href = attributes.get("href")
            if not href:
                return
            entity["type"] = "text_link"
            entity["url"] = href
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        if self.error:
            return
        self.parts.append(data)
        self.length += utf16_len(data)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        """Parse the source; raises the 400 Telegram answers for malformed HTML."""
        self.feed(self.source)
        self.close()
        if self.stack and not self.error:
            self._fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"')
        if self.error:
            raise bad_request(f"can't parse entities: {self.error}")
        return "".join(self.parts), self.entities


def render_text(
    text: str, parse_mode: str | None = None, entities: list[dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The text and entities Telegram would store for ``text`` sent with ``parse_mode``.

    HTML is parsed like Telegram does (tags become entities, unknown tags are a 400), and leading
    and trailing whitespace is trimmed. Markdown modes are not interpreted (text kept as is).
    """
    if parse_mode and parse_mode.lower() == "html":
        plain, found = _TelegramHTML(text).result()
    else:
        plain, found = text, [dict(e) for e in entities or []]
    stripped = plain.strip()
    lead = utf16_len(plain) - utf16_len(plain.lstrip())
    total = utf16_len(stripped)
    kept: list[dict[str, Any]] = []
    for entity in found:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return stripped, kept


# --------------------------------------------------------------------------------------------
# Parameter decoding shared by the offline request and the HTTP server
# --------------------------------------------------------------------------------------------


def decode_form_value(name: str, raw: str) -> Any:
    """Decode one form-encoded parameter the way PTB encoded it.

    PTB sends ``str`` values as they are and JSON-encodes everything else, so a value is
    JSON-decoded unless the parameter is known to be a string.
    """
    if name in STRING_PARAMS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def normalize_params(params: dict[str, Any], uploads: dict[str, UploadedFile]) -> dict[str, Any]:
    """Decode JSON-string values of object parameters and put uploads where they belong.

    An upload referenced as ``attach://name`` replaces that reference; any other upload is stored
    under its part name (``document`` for ``sendDocument``).
    """
    decoded: dict[str, Any] = {}
    for name, value in params.items():
        if name in JSON_PARAMS and isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        decoded[name] = value
    referenced: set[str] = set()

    def attach(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if name in uploads:
                referenced.add(name)
                return uploads[name]
        if isinstance(value, dict):
            return {k: attach(v) for k, v in value.items()}
        if isinstance(value, list):
            return [attach(v) for v in value]
        return value

    decoded = {name: attach(value) for name, value in decoded.items()}
    for name, upload in uploads.items():
        if name not in referenced:
            decoded[name] = upload
    return decoded


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise bad_request(f"{what} is invalid")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise bad_request(f"{what} is invalid")


def _maybe_int(value: Any) -> int | None:
    try:
        return _as_int(value, "value")
    except ApiError:
        return None


def _maybe_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return {"file_name": value.file_name, "mime_type": value.mime_type}
    return value


# --------------------------------------------------------------------------------------------
# The shared state
# --------------------------------------------------------------------------------------------


class FakeTelegram:
    """Thread-safe state of a fake Bot API, shared by :class:`OfflineRequest` and the server.

    Programmable attributes (mutate them directly from tests):

    * ``blocked_chats`` – sends/edits to these chats answer 403 "bot was blocked by the user";
    * ``chat_admins`` – chat id → admin user ids for ``getChatMember``/``getChatAdministrators``
      (the smallest id is the ``creator``);
    * ``files`` – file id → ``(content, file_path)`` for ``getFile`` and downloads;
    * ``users``/``chats`` – JSON of known users/chats (filled from fed updates, else generated).
    * ``chat_members`` – chat id → member user ids: ``getChatMember`` of anyone else in such a
      chat (not an admin either) answers ``left``; chats not listed count everyone a member.

    Inline mode: ``answerInlineQuery`` is validated like the Bot API (at most 50 results, unique
    ids, renderable message texts) and :meth:`post_inline_result` plays a user choosing a
    result: the message is kept in ``inline_messages`` by its ``inline_message_id``, where
    ``editMessageText`` with that id edits it.

    Inspection: ``calls``, :meth:`calls_to`, :meth:`sent_texts`, :meth:`last_text` and
    ``messages[(chat_id, message_id)]`` – the current Message JSON of every message the bot sent
    (text after HTML parsing, updated by edits, removed by deletes).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_id: int = BOT_ID,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
    ) -> None:
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.blocked_chats: set[int] = set()
        self.chat_admins: dict[int, set[int]] = {}
        self.chat_members: dict[int, set[int]] = {}
        self.inline_messages: dict[str, dict[str, Any]] = {}
        self._inline_ids = itertools.count(1)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.file_names: dict[str, tuple[str, str]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook_url = ""
        self.updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id: dict[int, int] = {}
        self._file_counter = itertools.count(1)
        self._injected: list[_Injected] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # ---- programming the fake ---------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for ``getUpdates``; assigns and returns its ``update_id``."""
        with self._lock:
            queued = copy.deepcopy(update)
            queued["update_id"] = self._next_update_id
            self._next_update_id += 1
            self.updates.append(queued)
            self.register_update(queued)
            self._changed()
            return int(queued["update_id"])

    def register_update(self, update: dict[str, Any]) -> None:
        """Remember the users, chats and user messages of an incoming update."""
        with self._lock:
            for key in (
                "message",
                "edited_message",
                "channel_post",
                "callback_query",
                "inline_query",
            ):
                payload = update.get(key)
                if not isinstance(payload, dict):
                    continue
                user = payload.get("from")
                if isinstance(user, dict) and not user.get("is_bot"):
                    self.users.setdefault(int(user["id"]), dict(user))
                message = payload if key in ("message", "edited_message", "channel_post") else None
                if message is not None:
                    chat = message["chat"]
                    self.chats.setdefault(int(chat["id"]), dict(chat))
                    self.user_messages[(int(chat["id"]), int(message["message_id"]))] = (
                        copy.deepcopy(message)
                    )

    def delete_message_by_user(self, chat_id: int, message_id: int) -> None:
        """The user deleted a message: later edits fail with "message to edit not found"."""
        with self._lock:
            self.messages.pop((chat_id, message_id), None)
            self.user_messages.pop((chat_id, message_id), None)

    def add_file(
        self,
        content: bytes,
        *,
        file_id: str | None = None,
        file_path: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> str:
        """Store a downloadable file and return its ``file_id``."""
        with self._lock:
            number = next(self._file_counter)
            file_id = file_id or f"BQACAgIAAxkBAAI{number:06d}"
            suffix = mimetypes.guess_extension(mime_type or "") or ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1]
            self.files[file_id] = (content, file_path or f"documents/file_{number}{suffix}")
            if file_name or mime_type:
                self.file_names[file_id] = (
                    file_name or f"file_{number}{suffix}",
                    mime_type or "application/octet-stream",
                )
            return file_id

    def fail_next(
        self,
        method: str,
        error_code: int = 400,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (429 with ``retry_after``)."""
        parameters: dict[str, Any] | None = None
        if retry_after is not None:
            error_code = 429
            parameters = {"retry_after": retry_after}
            description = description or f"Too Many Requests: retry after {retry_after}"
        error = ApiError(error_code, description or "Bad Request: injected failure", parameters)
        with self._lock:
            self._injected.append(_Injected(method.lower(), error, times))

    # ---- inspection -------------------------------------------------------------------------

    def mark(self) -> int:
        """The number of calls so far, for ``wait_for(..., since=mark)``."""
        with self._lock:
            return len(self.calls)

    def calls_to(self, method: str) -> list[Call]:
        """All calls of ``method`` (case-insensitive), oldest first."""
        wanted = method.lower()
        with self._lock:
            return [c for c in self.calls if c.method.lower() == wanted]

    def sent_texts(self, chat_id: int) -> list[str]:
        """Texts (as displayed, after HTML parsing) of the successful sendMessage calls."""
        with self._lock:
            return [
                c.result["text"]
                for c in self.calls
                if c.ok and c.method.lower() == "sendmessage" and c.result["chat"]["id"] == chat_id
            ]

    def last_text(self, chat_id: int) -> str | None:
        """The text the bot last sent or edited into ``chat_id`` (``None`` if nothing)."""
        with self._lock:
            for c in reversed(self.calls):
                if (
                    c.ok
                    and c.method.lower() in ("sendmessage", "editmessagetext")
                    and isinstance(c.result, dict)
                    and c.result["chat"]["id"] == chat_id
                ):
                    return str(c.result.get("text", ""))
            return None

    def file_bytes(self, url: str) -> bytes | None:
        """The content behind a download URL (``.../file/bot<token>/<file_path>``) or path."""
        path = unquote(urlsplit(url).path)
        marker = path.find("/file/bot")
        if marker >= 0:
            token, _, file_path = path[marker + len("/file/bot") :].partition("/")
            if self.token is not None and token != self.token:
                return None
        else:
            file_path = path.lstrip("/")
        return self.file_by_path(file_path)

    def file_by_path(self, file_path: str) -> bytes | None:
        """The content stored under ``file_path`` (as returned by ``getFile``), if any."""
        with self._lock:
            for content, stored_path in self.files.values():
                if stored_path == file_path:
                    return content
        return None

    def find_call(
        self, method: str, predicate: Callable[[Call], bool] | None = None, since: int = 0
    ) -> Call | None:
        """The first call of ``method`` from index ``since`` on that matches ``predicate``."""
        wanted = method.lower()
        with self._lock:
            for c in self.calls[since:]:
                if c.method.lower() == wanted and (predicate is None or predicate(c)):
                    return c
        return None

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one I/O
        *,
        since: int = 0,
    ) -> Call:
        """Wait until a call of ``method`` matching ``predicate`` was made (also past ones)."""
        found = await self._wait_until(lambda: self.find_call(method, predicate, since), timeout)
        if found is None:
            raise TimeoutError(self._timeout_message(method, timeout, since))
        return found

    def wait_for_sync(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> Call:
        """Blocking :meth:`wait_for` for synchronous code (another thread serves the bot)."""
        with self._cond:
            found: list[Call] = []

            def check() -> bool:
                call = self.find_call(method, predicate, since)
                if call is not None:
                    found.append(call)
                return call is not None

            if not self._cond.wait_for(check, timeout):
                raise TimeoutError(self._timeout_message(method, timeout, since))
            return found[0]

    def _timeout_message(self, method: str, timeout: float, since: int) -> str:
        with self._lock:
            seen = [f"{c.method}({c.status})" for c in self.calls[since:]][-30:]
        return f"no matching {method} call within {timeout}s; calls since {since}: {seen}"

    # ---- answering --------------------------------------------------------------------------

    async def handle(
        self,
        method: str,
        params: dict[str, Any],
        *,
        stop: Callable[[], bool] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Answer one call like the Bot API, long-polling ``getUpdates`` for ``timeout`` s.

        ``stop`` (checked whenever the state changes) ends a long poll early, e.g. on shutdown.
        """
        if method.lower() == "getupdates":
            timeout = _maybe_float(params.get("timeout"))
            offset = params.get("offset")
            if timeout is not None and timeout > 0:

                def ready() -> bool | None:
                    if (stop is not None and stop()) or self._updates_ready(offset):
                        return True
                    return None

                await self._wait_until(ready, timeout)
        return self.dispatch(method, params)

    def dispatch(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one call immediately and record it; returns (HTTP status, JSON body)."""
        with self._lock:
            try:
                self._check_injected(method)
                result = self._answer(method, params)
            except ApiError as error:
                status, body = error.error_code, error.body()
            else:
                status, body = 200, {"ok": True, "result": result}
            recorded = copy.deepcopy(body)
            self.calls.append(Call(method, dict(params), time.monotonic(), status, recorded))
            WATCH.observe_call(method, params)  # no test secret may reach a chat
            self._changed()
            return status, body

    def _check_injected(self, method: str) -> None:
        for injected in self._injected:
            if injected.method == method.lower():
                injected.times -= 1
                if injected.times <= 0:
                    self._injected.remove(injected)
                raise injected.error

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        name = method.lower()
        chat_id = params.get("chat_id")
        if (
            name.startswith(("send", "edit", "copy", "forward"))
            and _maybe_int(chat_id) in self.blocked_chats
        ):
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        handler = self._handlers().get(name)
        if handler is not None:
            return handler(params)
        if name.startswith("send"):
            return self._send_other(params)
        return True

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "getme": lambda _p: dict(self.bot_user),
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "senddocument": self._send_document,
            "sendchataction": lambda _p: True,
            "sendmediagroup": self._send_media_group,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "answercallbackquery": lambda _p: True,
            "answerinlinequery": self._answer_inline_query,
            "setmycommands": self._set_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getmycommands": self._get_my_commands,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "getfile": self._get_file,
            "copymessage": self._copy_message,
        }

    # ---- updates & webhook --------------------------------------------------------------------

    def _updates_ready(self, offset: Any) -> bool:
        with self._lock:
            if self.webhook_url:
                return True
            first = _maybe_int(offset)
            if first is not None and first < 0:
                return bool(self.updates)
            return any(first is None or u["update_id"] >= first for u in self.updates)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = int(params.get("limit") or 100)
        if offset is not None:
            first = _as_int(offset, "offset")
            if first < 0:
                self.updates = self.updates[first:]
            else:
                self.updates = [u for u in self.updates if u["update_id"] >= first]
        return copy.deepcopy(self.updates[: max(1, min(limit, 100))])

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = str(params.get("url") or "")
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }

    # ---- chats & users ------------------------------------------------------------------------

    def user_json(self, user_id: int) -> dict[str, Any]:
        """The User JSON of ``user_id`` (known from updates, the bot, or a generated one)."""
        if user_id == self.bot_user["id"]:
            return dict(self.bot_user)
        known = self.users.get(user_id)
        if known is not None:
            return dict(known)
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}

    def chat_json(self, chat_id: int) -> dict[str, Any]:
        """The Chat JSON: negative ids are supergroups titled "Team", others private chats."""
        known = self.chats.get(chat_id)
        if known is not None:
            return dict(known)
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": GROUP_TITLE}
        user = self.user_json(chat_id)
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        if user.get("username"):
            chat["username"] = user["username"]
        return chat

    def _chat_id(self, params: dict[str, Any]) -> int:
        if params.get("chat_id") in (None, ""):
            raise bad_request("chat_id is empty")
        chat_id = _maybe_int(params["chat_id"])
        if chat_id is None:
            raise bad_request("chat not found")
        return chat_id

    def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat_json(self._chat_id(params))
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return chat

    def _member_json(self, chat_id: int, user_id: int) -> dict[str, Any]:
        user = self.user_json(user_id)
        admins = self.chat_admins.get(chat_id, set())
        if user_id in admins and user_id == min(admins):
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in admins:
            rights = dict.fromkeys(
                (
                    "can_manage_chat",
                    "can_delete_messages",
                    "can_manage_video_chats",
                    "can_restrict_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                    "can_pin_messages",
                    "can_manage_topics",
                ),
                True,
            )
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_promote_members": False,
                **rights,
            }
        return {"status": "member", "user": user}

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        if params.get("user_id") in (None, ""):
            raise bad_request("user_id is empty")
        user_id = _as_int(params["user_id"], "user_id")
        members = self.chat_members.get(chat_id)
        if members is not None and user_id not in members | self.chat_admins.get(chat_id, set()):
            return {"status": "left", "user": self.user_json(user_id)}
        return self._member_json(chat_id, user_id)

    def _get_chat_administrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = self._chat_id(params)
        return [
            self._member_json(chat_id, uid) for uid in sorted(self.chat_admins.get(chat_id, ()))
        ]

    # ---- inline mode --------------------------------------------------------------------------

    def _answer_inline_query(self, params: dict[str, Any]) -> bool:
        if not params.get("inline_query_id"):
            raise bad_request("QUERY_ID_INVALID")
        results = params.get("results")
        if not isinstance(results, list):
            raise bad_request("RESULTS_INVALID")
        if len(results) > MAX_INLINE_RESULTS:
            raise bad_request("RESULTS_TOO_MUCH")
        ids = [str(r.get("id", "")) for r in results]
        if len(set(ids)) != len(ids) or not all(
            0 < len(i.encode()) <= MAX_INLINE_ID_BYTES for i in ids
        ):
            raise bad_request("RESULT_ID_INVALID")
        for result in results:
            content = result.get("input_message_content") or {}
            text, _entities = render_text(
                str(content.get("message_text", "")), content.get("parse_mode")
            )
            if not text or utf16_len(text) > MAX_TEXT_LENGTH:
                raise bad_request("MESSAGE_EMPTY" if not text else "MESSAGE_TOO_LONG")
            if not result.get("title"):
                raise bad_request("RESULT_TITLE_EMPTY")
            self._markup(result)
        if len(str(params.get("next_offset") or "").encode()) > MAX_NEXT_OFFSET_BYTES:
            raise bad_request("NEXT_OFFSET_INVALID")
        button = params.get("button")
        if button is not None and not (
            isinstance(button, dict) and button.get("text") and button.get("start_parameter")
        ):
            raise bad_request("BUTTON_INVALID")
        return True

    def inline_results(self, inline_query_id: str) -> list[dict[str, Any]]:
        """The results the bot answered ``inline_query_id`` with (the last accepted answer)."""
        call = self.find_call(
            "answerInlineQuery",
            lambda c: c.ok and str(c.params.get("inline_query_id")) == inline_query_id,
        )
        assert call is not None, f"inline query {inline_query_id} was not answered"
        return list(call.params.get("results") or [])

    def post_inline_result(self, inline_query_id: str, result_id: str) -> str:
        """A user picks a result: Telegram posts its message; returns its inline_message_id."""
        with self._lock:
            result = next(
                r for r in self.inline_results(inline_query_id) if str(r["id"]) == result_id
            )
            content = result["input_message_content"]
            text, entities = render_text(content["message_text"], content.get("parse_mode"))
            inline_id = f"AgAAAInline{next(self._inline_ids)}"
            message: dict[str, Any] = {"text": text}
            if entities:
                message["entities"] = entities
            markup = self._markup(result)
            if markup:
                message["reply_markup"] = markup
            self.inline_messages[inline_id] = message
            return inline_id

    # ---- messages -----------------------------------------------------------------------------

    def _new_message(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        # Every bot message gets its id here, so the counter is above all of them (no scan of
        # the chat's history: a benchmark posts thousands of cards in one chat).
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "chat": self.chat_json(chat_id),
            "date": int(time.time()),
        }
        reply = params.get("reply_parameters")
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        if reply_id is None:
            reply_id = params.get("reply_to_message_id")
        if reply_id is not None:
            key = (chat_id, _as_int(reply_id, "reply_to_message_id"))
            original = self.messages.get(key) or self.user_messages.get(key)
            if original is not None:
                message["reply_to_message"] = {
                    k: v for k, v in original.items() if k != "reply_to_message"
                }
        return message

    @staticmethod
    def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                actions = set(button) - {"text", "style", "icon_custom_emoji_id"}
                if not actions:
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not (
                    0 < len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise bad_request("BUTTON_DATA_INVALID")
        return copy.deepcopy(markup) if markup["inline_keyboard"] else None

    def _render(self, params: dict[str, Any], key: str, entities_key: str) -> tuple[str, Any]:
        raw = params.get(key)
        text, entities = render_text(
            "" if raw is None else str(raw), params.get("parse_mode"), params.get(entities_key)
        )
        return text, entities

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        markup = self._markup(params)
        text, entities = self._render(params, "text", "entities")
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        message = self._new_message(chat_id, params)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if markup:
            message["reply_markup"] = markup
        self.messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _caption(self, params: dict[str, Any], message: dict[str, Any]) -> None:
        caption, entities = self._render(params, "caption", "caption_entities")
        if utf16_len(caption) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        if caption:
            message["caption"] = caption
            if entities:
                message["caption_entities"] = entities

    def _document_json(self, document: Any) -> dict[str, Any]:
        if isinstance(document, UploadedFile):
            file_id = self.add_file(
                document.content, file_name=document.file_name, mime_type=document.mime_type
            )
        elif isinstance(document, str) and document in self.files:
            file_id = document
        elif isinstance(document, str) and document.startswith(("http://", "https://")):
            name = document.rsplit("/", 1)[-1] or "file"
            file_id = self.add_file(b"", file_name=name, mime_type=mimetypes.guess_type(name)[0])
        elif document in (None, ""):
            raise bad_request("there is no document in the request")
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        content, _path = self.files[file_id]
        file_name, mime_type = self.file_names.get(file_id, ("file", "application/octet-stream"))
        return {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": file_id,
            "file_unique_id": f"AgAD{file_id[-8:]}",
            "file_size": len(content),
        }

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        markup = self._markup(params)
        document = self._document_json(params.get("document"))
        message = self._new_message(chat_id, params)
        message["document"] = document
        self._caption(params, message)
        if markup:
            message["reply_markup"] = markup
        self.messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _send_other(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        markup = self._markup(params)
        message = self._new_message(chat_id, params)
        self._caption(params, message)
        if markup:
            message["reply_markup"] = markup
        self.messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _send_media_group(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        media = params.get("media")
        if not isinstance(media, list) or not media:
            raise bad_request("media is empty")
        return [self._send_other({**params, **item}) for item in media]

    def _copy_message(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._send_other({k: v for k, v in params.items() if k != "caption"})
        return {"message_id": sent["message_id"]}

    def _editable(self, params: dict[str, Any]) -> tuple[int, int, dict[str, Any]] | None:
        inline_id = params.get("inline_message_id")
        if inline_id:
            inline = self.inline_messages.get(str(inline_id))
            if inline is None:
                raise bad_request("MESSAGE_ID_INVALID")
            return 0, 0, inline
        chat_id = self._chat_id(params)
        if params.get("message_id") in (None, ""):
            raise bad_request("message identifier is not specified")
        message_id = _as_int(params["message_id"], "message_id")
        message = self.messages.get((chat_id, message_id))
        if message is None:
            if (chat_id, message_id) in self.user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return chat_id, message_id, message

    def _apply_edit(
        self, message: dict[str, Any], changes: dict[str, Any], markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        before = {k: message.get(k) for k in changes} | {
            "reply_markup": message.get("reply_markup")
        }
        after = dict(changes) | {"reply_markup": markup}
        if before == after:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        for key, value in after.items():
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = self._markup(params)
        text, entities = self._render(params, "text", "entities")
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        target = self._editable(params)
        if target is None:
            return True
        _chat_id, _message_id, message = target
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        edited = self._apply_edit(message, {"text": text, "entities": entities or None}, markup)
        return True if params.get("inline_message_id") else edited

    def _edit_message_caption(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = self._markup(params)
        target = self._editable(params)
        if target is None:
            return True
        _chat_id, _message_id, message = target
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        rendered: dict[str, Any] = {}
        self._caption(params, rendered)
        changes = {
            "caption": rendered.get("caption"),
            "caption_entities": rendered.get("caption_entities"),
        }
        return self._apply_edit(message, changes, markup)

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = self._markup(params)
        target = self._editable(params)
        if target is None:
            return True
        _chat_id, _message_id, message = target
        return self._apply_edit(message, {}, markup)

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        if params.get("message_id") in (None, ""):
            raise bad_request("message identifier is not specified")
        key = (chat_id, _as_int(params["message_id"], "message_id"))
        if key not in self.messages and key not in self.user_messages:
            raise bad_request("message to delete not found")
        self.messages.pop(key, None)
        self.user_messages.pop(key, None)
        return True

    def _delete_messages(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        for message_id in params.get("message_ids") or []:
            self.messages.pop((chat_id, int(message_id)), None)
            self.user_messages.pop((chat_id, int(message_id)), None)
        return True

    # ---- commands & files ---------------------------------------------------------------------

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = copy.deepcopy(commands)
        return True

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self.commands.get(self._commands_key(params), []))

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files:
            raise bad_request("invalid file_id")
        content, file_path = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"AgAD{file_id[-8:]}",
            "file_size": len(content),
            "file_path": file_path,
        }

    # ---- change notification ------------------------------------------------------------------

    def _changed(self) -> None:
        """Wake every waiter (threads and event loops); call with the lock held."""
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            # A closed loop raises RuntimeError: nobody waits there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)

    def notify(self) -> None:
        """Wake all waiters so they re-check (e.g. a server shutting down)."""
        with self._lock:
            self._changed()

    async def _wait_until(self, check: Callable[[], _T | None], seconds: float) -> _T | None:
        """Wait until ``check()`` returns non-``None`` (its value) or ``seconds`` pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            with self._lock:
                value = check()
                remaining = deadline - loop.time()
                if value is not None or remaining <= 0:
                    return value
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    if (loop, future) in self._waiters:
                        self._waiters.remove((loop, future))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# --------------------------------------------------------------------------------------------
# The PTB request layer
# --------------------------------------------------------------------------------------------


def _read_content(content: bytes | IO[bytes]) -> bytes:
    return content if isinstance(content, bytes) else content.read()


class OfflineRequest(BaseRequest):
    """A PTB request layer answering from a :class:`FakeTelegram` instead of the network.

    Use one instance for ``request`` and another (same state) for ``get_updates_request``.
    ``POST {base_url}{token}/{method}`` is answered by the state; ``GET`` of a file URL (how
    ``File.download_*`` fetches) returns the bytes stored in ``state.files``.
    """

    def __init__(self, state: FakeTelegram | None = None, *, read_timeout: float = 5.0) -> None:
        self.state = state if state is not None else FakeTelegram()
        self._read_timeout = read_timeout
        self.initialized = False

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (only used by PTB to compute long-poll timeouts)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to open; marks the request as initialized."""
        self.initialized = True

    async def shutdown(self) -> None:
        """Nothing to close; marks the request as shut down."""
        self.initialized = False

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Answer one request from the state; returns (HTTP status, JSON payload)."""
        if method.upper() == "GET" and request_data is None:
            content = self.state.file_bytes(url)
            if content is None:
                return 404, _dump({"ok": False, "error_code": 404, "description": "Not Found"})
            return 200, content
        path = urlsplit(url).path
        api_method = path.rsplit("/", 1)[-1]
        token = self.state.token
        if token is not None and not path.endswith(f"{token}/{api_method}"):
            return 401, _dump({"ok": False, "error_code": 401, "description": "Unauthorized"})
        params: dict[str, Any] = {}
        uploads: dict[str, UploadedFile] = {}
        if request_data is not None:
            params = copy.deepcopy(dict(request_data.parameters))
            for part, (file_name, data, mime_type) in request_data.multipart_data.items():
                uploads[part] = UploadedFile(file_name, _read_content(data), mime_type)
        status, body = await self.state.handle(api_method, normalize_params(params, uploads))
        return status, _dump(body)


def _dump(body: Any) -> bytes:
    return json.dumps(body, default=_jsonable).encode("utf-8")


def offline_builder(
    state: FakeTelegram | None = None, *, token: str = DEFAULT_TOKEN
) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """An ``ApplicationBuilder`` with ``token`` and both request layers offline on ``state``."""
    state = state if state is not None else FakeTelegram()
    return (
        ApplicationBuilder()
        .token(token)
        .request(OfflineRequest(state))
        .get_updates_request(OfflineRequest(state))
    )


async def feed(app: Application[Any, Any, Any, Any, Any, Any], update: dict[str, Any]) -> None:
    """Process ``update`` (a builder dict) with ``app`` as if it came from Telegram.

    When the app runs on an :class:`OfflineRequest`, its state learns the update's user, chat
    and message first (so the bot may delete or reply to that message).
    """
    request = app.bot.request
    if isinstance(request, OfflineRequest):
        request.state.register_update(update)
    await app.process_update(Update.de_json(copy.deepcopy(update), app.bot))


# --------------------------------------------------------------------------------------------
# Update builders
# --------------------------------------------------------------------------------------------


def _user(user_id: int, username: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": user_id,
        "is_bot": False,
        "first_name": username.capitalize() if username else f"User{user_id}",
        "language_code": "en",
    }
    if username:
        user["username"] = username
    return user


def _chat(chat_id: int, user: dict[str, Any]) -> dict[str, Any]:
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": GROUP_TITLE}
    chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
    if "username" in user:
        chat["username"] = user["username"]
    return chat


def command_entities(text: str) -> list[dict[str, Any]]:
    """A ``bot_command`` entity for a text starting with ``/cmd`` (or ``/cmd@bot``)."""
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return []
    token = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(token)}]


def _message_update(
    *,
    chat_id: int,
    user_id: int,
    username: str | None,
    message_id: int | None,
    reply_to: dict[str, Any] | None,
    content: dict[str, Any],
) -> dict[str, Any]:
    user = _user(user_id, username)
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else next(_user_message_ids),
        "from": user,
        "chat": _chat(chat_id, user),
        "date": int(time.time()),
        **content,
    }
    if reply_to is not None:
        original = reply_to.get("message", reply_to)
        message["reply_to_message"] = {
            k: v for k, v in copy.deepcopy(original).items() if k != "reply_to_message"
        }
    return {"update_id": next(_update_ids), "message": message}


def _text_content(text: str, key: str = "text") -> dict[str, Any]:
    content: dict[str, Any] = {key: text}
    entities = command_entities(text)
    if entities:
        content["entities" if key == "text" else "caption_entities"] = entities
    return content


def private_message(
    text: str,
    *,
    user_id: int = 1,
    username: str | None = "alice",
    chat_id: int | None = None,
    message_id: int | None = None,
    reply_to: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update with a text message from a user in their private chat with the bot.

    ``reply_to`` is another builder's update (or its ``message``) being replied to.
    """
    return _message_update(
        chat_id=user_id if chat_id is None else chat_id,
        user_id=user_id,
        username=username,
        message_id=message_id,
        reply_to=reply_to,
        content=_text_content(text),
    )


def group_message(
    text: str,
    *,
    chat_id: int = -100123,
    user_id: int = 1,
    username: str | None = "alice",
    message_id: int | None = None,
    reply_to: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update with a text message from a user in the supergroup ``chat_id``."""
    return _message_update(
        chat_id=chat_id,
        user_id=user_id,
        username=username,
        message_id=message_id,
        reply_to=reply_to,
        content=_text_content(text),
    )


def photo_message(
    *,
    file_id: str = "AgACAgIAAxkBAAIBphoto",
    caption: str | None = None,
    file_size: int = 48_213,
    user_id: int = 1,
    username: str | None = "alice",
    chat_id: int | None = None,
    message_id: int | None = None,
    reply_to: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update with a photo (two sizes, the largest has ``file_id``) and optional caption."""
    content: dict[str, Any] = {
        "photo": [
            {
                "file_id": f"{file_id}-thumb",
                "file_unique_id": "AQADthumb",
                "file_size": 1_342,
                "width": 90,
                "height": 68,
            },
            {
                "file_id": file_id,
                "file_unique_id": "AQADphoto",
                "file_size": file_size,
                "width": 1280,
                "height": 960,
            },
        ]
    }
    if caption is not None:
        content.update(_text_content(caption, "caption"))
    return _message_update(
        chat_id=user_id if chat_id is None else chat_id,
        user_id=user_id,
        username=username,
        message_id=message_id,
        reply_to=reply_to,
        content=content,
    )


def document_message(
    *,
    file_id: str = "BQACAgIAAxkBAAIBdocument",
    file_name: str = "recipients.csv",
    mime_type: str = "text/csv",
    file_size: int = 1024,
    caption: str | None = None,
    user_id: int = 1,
    username: str | None = "alice",
    chat_id: int | None = None,
    message_id: int | None = None,
    reply_to: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update with a document; store its bytes with ``state.add_file(..., file_id=...)``."""
    content: dict[str, Any] = {
        "document": {
            "file_id": file_id,
            "file_unique_id": f"AgAD{file_id[-8:]}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": file_size,
        }
    }
    if caption is not None:
        content.update(_text_content(caption, "caption"))
    return _message_update(
        chat_id=user_id if chat_id is None else chat_id,
        user_id=user_id,
        username=username,
        message_id=message_id,
        reply_to=reply_to,
        content=content,
    )


def callback_query(
    data: str,
    *,
    message_chat_id: int,
    message_id: int,
    user_id: int = 1,
    username: str | None = "alice",
    message: dict[str, Any] | None = None,
    message_text: str = "…",
) -> dict[str, Any]:
    """An update with an inline-button press on the bot's message ``message_id``.

    Pass ``message=state.messages[(chat_id, message_id)]`` to embed the real card; otherwise a
    bot message with ``message_text`` is made up.
    """
    user = _user(user_id, username)
    if message is None:
        message = {
            "message_id": message_id,
            "from": {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": BOT_FIRST_NAME,
                "username": BOT_USERNAME,
            },
            "chat": _chat(message_chat_id, user),
            "date": int(time.time()),
            "text": message_text,
        }
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(4_000_000_000 + next(_callback_ids)),
            "from": user,
            "message": copy.deepcopy(message),
            "chat_instance": str(-abs(message_chat_id) * 7919),
            "data": data,
        },
    }


def edited_message(update: dict[str, Any], text: str) -> dict[str, Any]:
    """``update``'s message edited to ``text``: the ``edited_message`` update Telegram sends."""
    message = copy.deepcopy(update.get("message", update))
    message.pop("entities", None)
    message.update(_text_content(text))
    message["edit_date"] = int(message["date"]) + 1
    return {"update_id": next(_update_ids), "edited_message": message}


def inline_query(
    query: str,
    *,
    user_id: int = 1,
    username: str | None = "alice",
    offset: str = "",
    chat_type: str = "sender",
) -> dict[str, Any]:
    """An ``inline_query`` update: the user typed ``@bot <query>`` in some chat."""
    return {
        "update_id": next(_update_ids),
        "inline_query": {
            "id": str(7_000_000_000 + next(_inline_query_ids)),
            "from": _user(user_id, username),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        },
    }


def inline_callback_query(
    data: str, *, inline_message_id: str, user_id: int = 1, username: str | None = "alice"
) -> dict[str, Any]:
    """A button press under a message posted through inline mode (no ``message``, no chat)."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(4_000_000_000 + next(_callback_ids)),
            "from": _user(user_id, username),
            "inline_message_id": inline_message_id,
            "chat_instance": str(-7919 * user_id),
            "data": data,
        },
    }
