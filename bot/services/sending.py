"""The send use-case: validate, store as ``queued``, call the provider, record the outcome.

Guarantees:
- every message row exists (``queued``) before its provider call, so none is lost;
- the batch's ``origin`` (chat + Telegram message id) is unique, so an update delivered twice
  returns the first send instead of sending again;
- a call that may have reached the provider but lost its answer becomes ``unknown``, never a
  blind resend; an error that proves nothing was sent becomes ``failed``;
- the batch's status card is owed from the moment the batch is stored (an outbox entry of the
  same transaction, held for the caller, who posts it when the send is done), so a send cut
  off by a crash still gets its card after the restart.

Recipients go one per request, or in chunks of the adapter's declared
``recipients_per_request`` where its API takes a list (each recipient is still its own message
row, tracked on its own). Fan-out is bounded by a fixed set of workers, and outcomes are
written in batches by :class:`ChangeWriter` while later calls are still in flight, so a large
send costs a few commits, not one per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from html import escape

from bot.services.accounts import Accounts
from bot.services.errors import BadInput
from bot.services.phones import normalise
from providers.base import (
    BulkProvider,
    DeliveryState,
    Media,
    OutgoingMessage,
    Provider,
    SendResult,
)
from providers.errors import AuthError, InsufficientCredit, ProviderError, UnexpectedResponse
from providers.registry import RECIPIENT_PREFIXES, Route, all_route_specs
from storage.messages import Messages, StateChange
from storage.models import Batch, Message, utcnow
from storage.repo import Repository

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10_000
WRITE_BATCH = 200
# The caller of a send posts its card as soon as the send is done (the outbox entry stored
# with the batch is held for it); if it has not after this long, the delivery loop does.
CARD_HOLD = timedelta(seconds=60)
# Errors that will fail every remaining recipient the same way: stop calling the provider.
_FATAL = (AuthError, InsufficientCredit)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A send as the chat asked for it."""

    chat_id: int
    actor_id: int
    actor_name: str
    route: Route
    recipients: Sequence[str]
    text: str
    origin: str
    country: str | None = None
    media: Media | None = None
    options: dict[str, str] | None = None
    schedule_id: int | None = None
    # Handed to the provider for later (``SCHEDULED_AT``): it goes out then; polls and
    # expiry count from then.
    send_at: datetime | None = None
    # The line above the card (HTML), stored with the batch so a card posted late has it.
    card_note: str = ""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """The stored batch and its messages after the provider calls.

    ``last_event_id`` is the newest history row the messages' states come from (the status
    card shows up to it); ``None`` when they were read back from the database (a replay).
    ``still_sending``: a replay whose first send is still running in this process (which
    posts its card when it is done). ``card_hold_until``: until then nobody but the caller
    posts the card of a fresh send (its outbox entry is held for it).
    """

    batch: Batch
    messages: list[Message]
    replayed: bool
    last_event_id: int | None = None
    still_sending: bool = False
    card_hold_until: datetime | None = None


class ChangeWriter:
    """Collects a send's outcomes and commits them in batches while sends go on.

    Adding never waits for the database: a full batch is committed by a background task, so
    no provider call waits behind a commit; :meth:`flush` waits for everything to be stored
    and gives back each message as stored.
    """

    def __init__(self, messages: Messages, batch_size: int = WRITE_BATCH) -> None:
        self._messages = messages
        self._batch_size = batch_size
        self._pending: list[StateChange] = []
        self._writing: asyncio.Task[None] | None = None
        self.stored: dict[int, Message] = {}
        self.last_event_id = 0

    def add(self, change: StateChange) -> None:
        """Queue one message's outcome; a full batch starts a commit in the background."""
        self._pending.append(change)
        if len(self._pending) >= self._batch_size and self._may_start():
            self._writing = asyncio.create_task(self._write())

    async def flush(self) -> None:
        """Commit everything queued so far.

        Raises what a background commit raised: an outcome is never silently dropped.
        """
        if self._writing is not None:
            await self._writing
        await self._write()

    def _may_start(self) -> bool:
        # A failed background commit is left for flush() to raise, not replaced.
        task = self._writing
        return task is None or (task.done() and not task.cancelled() and not task.exception())

    async def _write(self) -> None:
        while self._pending:
            chunk, self._pending = self._pending, []
            applied = await self._messages.apply_changes(chunk)
            self.stored.update((m.id, m) for m in applied.current if m.id is not None)
            self.last_event_id = max(self.last_event_id, applied.last_event_id)


def validate_text(route: Route, text: str, media: Media | None) -> str:
    """The text to send, or a ``BadInput`` saying why it cannot be sent."""
    body = text.strip()
    if not body and media is None:
        raise BadInput("The message text is empty.")
    limit = route.channel.max_text
    if len(body) > limit:
        raise BadInput(
            f"The message is {len(body)} characters long; {route} allows at most {limit}."
        )
    return body


def recipients_for(route: Route, raw: Sequence[str], country: str | None) -> list[str]:
    """Normalised, de-duplicated recipients in the provider's format, or ``BadInput``."""
    items = [r.strip() for r in raw if r.strip()]
    if not items:
        raise BadInput("No recipient given.")
    if len(items) > MAX_RECIPIENTS:
        raise BadInput(f"At most {MAX_RECIPIENTS} recipients per send ({len(items)} given).")
    if not route.channel.phone_recipients:
        return list(dict.fromkeys(items))
    out: list[str] = []
    errors: list[str] = []
    for item in items:
        kind, sep, value = item.partition(":")
        try:
            if sep and kind.lower() in RECIPIENT_PREFIXES:
                out.append(_kind_recipient(route, kind.lower(), value))
                continue
            out.append(
                normalise(item, country=country, allow_wa_group=route.channel.name == "wa").digits
            )
        except BadInput as exc:
            errors.append(exc.message)
    if errors:
        shown = "\n".join(errors[:5]) + (
            f"\n…and {len(errors) - 5} more." if len(errors) > 5 else ""
        )
        raise BadInput(f"Nothing was sent:\n{shown}")
    return list(dict.fromkeys(out))


def _kind_recipient(route: Route, kind: str, value: str) -> str:
    """``kind:<id>`` as the provider takes it, or ``BadInput`` saying why it cannot be sent."""
    shown = escape(f"{kind}:{value}")
    if kind not in route.channel.recipient_kinds:
        takes = [str(r) for r in all_route_specs() if kind in r.channel.recipient_kinds]
        raise BadInput(
            f"“{shown}”: {route} takes phone numbers, not {kind} ids ({', '.join(takes)} do)."
        )
    digits = value.strip()
    if not digits.isdigit() or int(digits) == 0:
        raise BadInput(
            f"“{shown}” is not a {kind} id: write {kind}:&lt;number&gt;, e.g. {kind}:12."
        )
    return f"{kind}:{int(digits)}"


class Sender:
    """Runs sends for every provider."""

    def __init__(
        self,
        repo: Repository,
        accounts: Accounts,
        *,
        concurrency: int,
        first_poll: float,
    ) -> None:
        self._repo = repo
        self._accounts = accounts
        self._concurrency = concurrency
        self._first_poll = timedelta(seconds=first_poll)
        self._sending: dict[str, int] = {}  # origins being sent now, and by how many calls

    async def send(self, request: SendRequest) -> SendOutcome:
        """Validate, store, send and record one batch."""
        origin = request.origin
        self._sending[origin] = self._sending.get(origin, 0) + 1
        try:
            return await self._send(request)
        finally:
            left = self._sending.pop(origin) - 1
            if left:
                self._sending[origin] = left

    async def _send(self, request: SendRequest) -> SendOutcome:
        route = request.route
        text = validate_text(route, request.text, request.media)
        recipients = recipients_for(route, request.recipients, request.country)
        adapter = await self._accounts.adapter(
            request.chat_id, route.provider, channel=route.channel
        )
        batch = Batch(
            chat_id=request.chat_id,
            route=str(route),
            text=text,
            origin=request.origin,
            created_by=request.actor_id,
            created_by_name=request.actor_name,
            schedule_id=request.schedule_id,
        )
        media_name = request.media.file_name if request.media else None
        rows = [
            Message(
                batch_id=0,
                chat_id=request.chat_id,
                provider=route.provider.name,
                channel=route.channel.name,
                recipient=to,
                text=text,
                media_name=media_name,
                idempotency_key=f"{request.origin}:{index}",
                send_at=request.send_at,
            )
            for index, to in enumerate(recipients)
        ]
        messages = self._repo.messages
        stored = await messages.store_send(batch, rows, hold=CARD_HOLD, note=request.card_note)
        batch = stored.batch
        assert batch.id is not None
        if not stored.new:
            log.info("send %s replayed; not sending again", request.origin)
            return SendOutcome(
                batch,
                await messages.of_batch(batch.id),
                replayed=True,
                still_sending=self._sending.get(request.origin, 0) > 1,
            )
        writer = await self._fan_out(adapter, route, rows, text, request)
        sent = [writer.stored.get(row.id or 0, row) for row in rows]
        return SendOutcome(
            batch,
            sent,
            False,
            max(stored.last_event_id, writer.last_event_id),
            card_hold_until=stored.card_hold_until,
        )

    async def _fan_out(
        self,
        adapter: Provider,
        route: Route,
        rows: list[Message],
        text: str,
        request: SendRequest,
    ) -> ChangeWriter:
        writer = ChangeWriter(self._repo.messages)
        stop: list[ProviderError] = []
        template = OutgoingMessage(
            channel=route.channel.name,
            to="",
            text=text,
            media=request.media,
            options=request.options or {},
        )
        # One request per recipient, or per chunk where the API takes a list (capability).
        size = adapter.capabilities.recipients_per_request
        bulk = adapter if size > 1 and isinstance(adapter, BulkProvider) else None
        step = size if bulk is not None else 1
        # Shared: each worker takes the next chunk, each chunk is taken once.
        queue = iter([rows[i : i + step] for i in range(0, len(rows), step)])

        async def send(chunk: list[Message]) -> list[SendResult]:
            if bulk is not None:
                results = await bulk.send_many(template, [row.recipient for row in chunk])
                if len(results) != len(chunk):  # an adapter bug: never guess who got what
                    raise UnexpectedResponse(
                        f"{route.provider.display} answered for {len(results)} of "
                        f"{len(chunk)} recipients.",
                        provider=route.provider.display,
                    )
                return results
            return [await adapter.send(replace(template, to=chunk[0].recipient))]

        async def worker() -> None:
            # A fixed set of workers, not a task per recipient: 10,000 tasks waiting on a
            # semaphore cost ~30 µs a message in scheduling alone.
            for chunk in queue:
                ids = [row.id for row in chunk if row.id is not None]
                if stop:
                    for message_id in ids:
                        writer.add(_failed(message_id, stop[0], skipped=True))
                    continue
                try:
                    results = await send(chunk)
                except ProviderError as exc:
                    if isinstance(exc, _FATAL):
                        stop.append(exc)
                    for message_id in ids:
                        writer.add(_failed(message_id, exc))
                else:
                    for message_id, result in zip(ids, results, strict=True):
                        writer.add(self._accepted(message_id, result, request.send_at))

        workers = min(self._concurrency, (len(rows) + step - 1) // step)
        await asyncio.gather(*(worker() for _ in range(workers)))
        await writer.flush()
        return writer

    def _accepted(
        self, message_id: int, result: SendResult, send_at: datetime | None
    ) -> StateChange:
        start = max(utcnow(), send_at) if send_at is not None else utcnow()
        return StateChange(
            message_id=message_id,
            state=result.state,
            source="send",
            provider_ref=result.ref,
            provider_status=result.provider_status,
            detail=result.detail,
            next_poll_at=None if result.state.is_final else start + self._first_poll,
        )


def _failed(message_id: int, exc: ProviderError, *, skipped: bool = False) -> StateChange:
    if exc.maybe_sent:
        return StateChange(
            message_id=message_id,
            state=DeliveryState.UNKNOWN,
            source="send",
            detail=f"{exc.message} It may or may not have been sent; "
            "check with the provider before sending again.",
        )
    detail = f"not attempted: {exc.message}" if skipped else exc.message
    return StateChange(
        message_id=message_id, state=DeliveryState.FAILED, source="send", detail=detail
    )
