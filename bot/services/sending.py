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

A send to more than ``large_above`` (``CONFIRM_ABOVE``) recipients is a *large send*
(:mod:`bot.services.large_sends`, :mod:`storage.large_sends`): its card is posted at once and
shows progress, each chunk is marked handed over in its own transaction just before its call
(a Stop wins every row not handed over yet), and a stop or a crash leaves the rows never
handed over ``queued`` for :meth:`Sender.resume` at the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from html import escape

from bot.services.accounts import Accounts
from bot.services.errors import BadInput, UserError, echo
from bot.services.phones import normalise
from bot.services.stoplist import drop_stopped, skipped_note
from i18n import _
from providers.base import (
    STATUS_CALLBACK,
    SUBJECT,
    BulkProvider,
    DeliveryState,
    Media,
    Multicaster,
    MulticastRequest,
    OutgoingMessage,
    Provider,
    SendResult,
)
from providers.errors import (
    AuthError,
    InsufficientCredit,
    ProviderError,
    UnexpectedResponse,
    ValidationError,
)
from providers.registry import RECIPIENT_PREFIXES, Route, all_route_specs, parse_route
from storage.messages import Messages, NewMessage, Reroute, StateChange
from storage.models import AuditOutcome, Batch, Message, Progress, utcnow
from storage.repo import Repository

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10_000
WRITE_BATCH = 200
# The caller of a send posts its card as soon as the send is done (the outbox entry stored
# with the batch is held for it); if it has not after this long, the delivery loop does.
CARD_HOLD = timedelta(seconds=60)
# A large send commits outcomes at least this often (seconds): its card shows progress, and
# a crash leaves few answered rows without their answer (they would become ``unknown``).
PROGRESS_FLUSH = 0.25
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
    # The rest of an ordered failover chain (``/use a,b``): tried in turn, only for messages
    # the route before certainly did not send.
    fallbacks: tuple[Route, ...] = ()
    # A template broadcast (a ``command="multicast"`` channel): one request to the adapter's
    # ``multicast``; its one recipient row stands for the audience.
    multicast: MulticastRequest | None = None
    # A personalised send: each recipient's own text, in the order of ``recipients``
    # (:mod:`bot.services.addressing`); ``text`` is then what the batch shows (the template).
    texts: Sequence[str] | None = None
    # The line above the card (HTML), stored with the batch so a card posted late has it.
    card_note: str = ""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """The stored batch and its messages after the provider calls.

    ``last_event_id`` is the newest history row the messages' states come from (the status
    card shows up to it); ``None`` when they were read back from the database (a replay).
    ``still_sending``: a replay whose first send is still running in this process (which
    posts its card when it is done). ``card_hold_until``: until then nobody but the caller
    posts the card of a fresh send (its outbox entry is held for it). ``stopped``: the
    recipients (E.164) the chat's stoplist removed; ``card_note`` the line above the card as
    stored with the batch (HTML: the request's note, then the stoplist's).
    """

    batch: Batch
    messages: list[Message]
    replayed: bool
    last_event_id: int | None = None
    still_sending: bool = False
    card_hold_until: datetime | None = None
    stopped: tuple[str, ...] = ()
    card_note: str = ""


class ChangeWriter:
    """Collects a send's outcomes and commits them in batches while sends go on.

    Adding never waits for the database: a full batch is committed by a background task, so
    no provider call waits behind a commit; :meth:`flush` waits for everything to be stored
    and gives back each message as stored.
    """

    def __init__(
        self,
        messages: Messages,
        batch_size: int = WRITE_BATCH,
        *,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._messages = messages
        self._batch_size = batch_size
        # A large send's card shows progress: outcomes are committed at least this often.
        self._max_age = max_age
        self._clock = clock
        self._since = clock()
        self._pending: list[StateChange] = []
        self._writing: asyncio.Task[None] | None = None
        self.stored: dict[int, Message] = {}
        self.last_event_id = 0

    def add(self, change: StateChange) -> None:
        """Queue one message's outcome; a full batch starts a commit in the background."""
        self._pending.append(change)
        full = len(self._pending) >= self._batch_size
        old = self._max_age is not None and self._clock() - self._since >= self._max_age
        if (full or old) and self._may_start():
            self._since = self._clock()
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


SUBJECT_SEPARATOR = "|"


def split_subject(text: str) -> tuple[str, str]:
    """``<subject> | <body>`` (a channel with ``subject``) into its subject and body.

    Raises:
        BadInput: without the separator, or with an empty subject or body.

    """
    subject, sep, body = text.partition(SUBJECT_SEPARATOR)
    if not sep or not subject.strip() or not body.strip():
        raise BadInput(
            _("Write the subject, then “|”, then the body: … &lt;subject&gt; | &lt;body&gt;.")
        )
    if "\n" in subject.strip():
        raise BadInput(_("The subject is one line: put “|” at the end of the subject line."))
    return subject.strip(), body.strip()


def validate_text(route: Route, text: str, media: Media | None) -> str:
    """The text to send, or a ``BadInput`` saying why it cannot be sent."""
    body = text.strip()
    if not body and media is None:
        raise BadInput(_("The message text is empty."))
    if route.channel.subject:
        split_subject(body)
    limit = route.channel.max_text
    if len(body) > limit:
        raise BadInput(
            _("The message is {length} characters long; {route} allows at most {limit}.").format(
                length=len(body), route=route, limit=limit
            )
        )
    return body


def recipients_for(route: Route, raw: Sequence[str], country: str | None) -> list[str]:
    """Normalised, de-duplicated recipients in the provider's format, or ``BadInput``.

    The channel's own reader (``ChannelSpec.read_recipient``) goes first: address-book ids,
    provider ids, e-mail addresses. What it leaves is a phone number on a phone channel, and
    taken as typed (a provider group name) on any other.
    """
    return [to for to, _text in personal_recipients(route, raw, [""] * len(raw), country)]


def personal_recipients(
    route: Route, raw: Sequence[str], texts: Sequence[str], country: str | None
) -> list[tuple[str, str]]:
    """:func:`recipients_for` keeping each recipient's own text (the first, for a duplicate)."""
    items = [(r.strip(), t) for r, t in zip(raw, texts, strict=True) if r.strip()]
    if not items:
        raise BadInput(_("No recipient given."))
    if len(items) > MAX_RECIPIENTS:
        raise BadInput(
            _("At most {limit} recipients per send ({given} given).").format(
                limit=MAX_RECIPIENTS, given=len(items)
            )
        )
    out: dict[str, str] = {}
    errors: list[str] = []
    for item, text in items:
        try:
            out.setdefault(_read_recipient(route, item, country), text)
        except BadInput as exc:
            errors.append(exc.message)
    if errors:
        shown = "\n".join(errors[:5])
        if len(errors) > 5:
            shown += "\n" + _("…and {count} more.").format(count=len(errors) - 5)
        raise BadInput(_("Nothing was sent:") + "\n" + shown)
    return list(out.items())


def addressed(request: SendRequest) -> tuple[str, list[tuple[str, str]]]:
    """The batch's text, and every recipient (normalised, once) with the text it gets."""
    route = request.route
    if request.texts is None:
        text = validate_text(route, request.text, request.media)
        recipients = recipients_for(route, request.recipients, request.country)
        return text, [(to, text) for to in recipients]
    checked = {t: validate_text(route, t, request.media) for t in set(request.texts)}
    pairs = personal_recipients(route, request.recipients, request.texts, request.country)
    return request.text.strip(), [(to, checked[t]) for to, t in pairs]


def _read_recipient(route: Route, item: str, country: str | None) -> str:
    channel = route.channel
    if channel.command:  # a multicast's one "recipient" names its audience, as typed
        return item
    kind, sep, _rest = item.partition(":")
    kind = kind.lower()
    if sep and kind in RECIPIENT_PREFIXES and kind not in channel.recipient_kinds:
        takes = [str(r) for r in all_route_specs() if kind in r.channel.recipient_kinds]
        raise BadInput(
            f"“{echo(item)}”: {route} takes {_(channel.recipient_noun)}, not {kind} ids "
            f"({', '.join(takes)} do)."
        )
    if channel.read_recipient is not None:
        try:
            value = channel.read_recipient(item)
        except ValueError as exc:
            raise BadInput(echo(str(exc), limit=200)) from exc
        if value is not None:
            return value
    if not channel.phone_recipients:
        return item
    return normalise(item, country=country, allow_wa_group=channel.name == "wa").digits


class Sender:
    """Runs sends for every provider."""

    def __init__(
        self,
        repo: Repository,
        accounts: Accounts,
        *,
        concurrency: int,
        first_poll: float,
        status_callback: Callable[[str], str | None] = lambda provider: None,
        large_above: int | None = None,
    ) -> None:
        self._repo = repo
        self._accounts = accounts
        self._concurrency = concurrency
        # More recipients than this make a large send (``CONFIRM_ABOVE``; None: never).
        self.large_above = large_above
        self._first_poll = timedelta(seconds=first_poll)
        # Provider name → where it may post status changes (None outside webhook mode).
        self._status_callback = status_callback
        self._sending: dict[str, int] = {}  # origins being sent now, and by how many calls
        self.clock: Callable[[], datetime] = utcnow  # plans first polls; the tracker's clock
        # Told each fresh send's messages after their provider calls (metrics count them).
        self.on_sent: Callable[[Sequence[Message]], None] | None = None

    async def send(self, request: SendRequest) -> SendOutcome:
        """Validate, store, send and record one batch."""
        origin = request.origin
        self._sending[origin] = self._sending.get(origin, 0) + 1
        try:
            outcome = await self._send(request)
            if self.on_sent is not None and not outcome.replayed:
                self.on_sent(outcome.messages)
            return outcome
        finally:
            left = self._sending.pop(origin) - 1
            if left:
                self._sending[origin] = left

    async def _send(self, request: SendRequest) -> SendOutcome:
        route = request.route
        text, recipients = addressed(request)
        recipients, stopped = await self._drop_stopped(request, recipients)
        card_note = "\n".join(
            filter(
                None,
                [request.card_note, escape(f"🚫 {skipped_note(stopped)}.") if stopped else ""],
            )
        )
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
        new_rows = [
            NewMessage(
                provider=route.provider.name,
                channel=route.channel.name,
                recipient=to,
                text=own_text,
                idempotency_key=f"{request.origin}:{index}",
                media_name=media_name,
                send_at=request.send_at,
            )
            for index, (to, own_text) in enumerate(recipients)
        ]
        large = self.is_large(request, len(new_rows))
        if large:  # its card is posted at once by the delivery loop and shows progress
            batch.progress, batch.started_at = Progress.SENDING.value, utcnow()
            batch.resume = resume_json(request)
        messages = self._repo.messages
        stored = await messages.store_send(
            batch,
            new_rows,
            hold=None if large else CARD_HOLD,
            note=card_note,
            audit_note=f"; {len(stopped)} skipped (stoplist)" if stopped else "",
        )
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
        rows = stored.messages
        writer = ChangeWriter(messages, max_age=PROGRESS_FLUSH if large else None)
        await self._chain(rows, route, adapter, request, writer, large=large)
        await writer.flush()
        if large:
            assert batch.id is not None
            await self._repo.large_sends.finish(batch.id)
        sent = [writer.stored.get(row.id or 0, row) for row in rows]
        return SendOutcome(
            batch,
            sent,
            False,
            max(stored.last_event_id, writer.last_event_id),
            card_hold_until=stored.card_hold_until,
            stopped=tuple(stopped),
            card_note=card_note,
        )

    def is_large(self, request: SendRequest, recipients: int) -> bool:
        """Whether a send is a large one: a progress card with Stop, resumed after a restart."""
        return (
            self.large_above is not None
            and recipients > self.large_above
            and request.multicast is None
        )

    async def _chain(
        self,
        rows: list[Message],
        route: Route,
        adapter: Provider,
        request: SendRequest,
        writer: ChangeWriter,
        *,
        large: bool,
    ) -> None:
        """Send ``rows`` on ``route``, then on the request's failover routes in turn.

        The chain's next route takes only what the current one certainly did not send.
        """
        pending, current, now_adapter = rows, route, adapter
        chain = [request.route, *request.fallbacks]
        following_routes = chain[chain.index(route) + 1 :] if route in chain else []
        for following in (*following_routes, None):
            refused = await self._fan_out(
                now_adapter,
                current,
                pending,
                request,
                writer,
                can_fail_over=bool(following),
                hand_over=self._repo.large_sends.hand_over if large else None,
            )
            if not refused or following is None:
                break
            pending, next_adapter = await self._fail_over(
                refused, current, following, request, writer
            )
            if not pending or next_adapter is None:
                break
            current, now_adapter = following, next_adapter

    async def resume(self, batch: Batch) -> list[Message]:
        """Go on with a large send a stop or a crash cut off: send its rows never handed over.

        Rows handed over without an answer were made ``unknown`` at start and are not sent
        again. A send whose account or file is gone fails its remaining rows saying why.
        Returns the messages it sent (to track).
        """
        assert batch.id is not None
        large_sends = self._repo.large_sends
        rows = await large_sends.unhanded(batch.id)
        writer = ChangeWriter(self._repo.messages, max_age=PROGRESS_FLUSH)
        if rows:
            await large_sends.restarted(batch.id)
            log.info("send %s: going on with %d recipients after a restart", batch.id, len(rows))
            request = resumed_request(batch)
            by_route: dict[str, list[Message]] = {}
            for row in rows:
                by_route.setdefault(f"{row.provider}:{row.channel}", []).append(row)
            for name, same in by_route.items():
                await self._resume_rows(same, parse_route(name), request, writer)
        await writer.flush()
        await large_sends.finish(batch.id)
        return [writer.stored[row.id] for row in rows if row.id in writer.stored]

    async def _resume_rows(
        self, rows: list[Message], route: Route, request: SendRequest, writer: ChangeWriter
    ) -> None:
        def fail(why: str) -> None:
            for row in rows:
                assert row.id is not None
                detail = _("not sent: {reason}").format(reason=why)
                writer.add(StateChange(row.id, DeliveryState.FAILED, "restart", detail=detail))

        if rows[0].media_name:
            fail(_("the bot restarted, and files are not kept: send it again"))
            return
        try:
            adapter = await self._accounts.adapter(
                request.chat_id, route.provider, channel=route.channel
            )
        except UserError as exc:
            fail(exc.message)
            return
        await self._chain(rows, route, adapter, request, writer, large=True)

    async def _drop_stopped(
        self, request: SendRequest, recipients: list[tuple[str, str]]
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """The recipients the chat's stoplist leaves; a send it empties is refused (audited)."""
        try:
            return await drop_stopped(
                self._repo.stoplist, request.chat_id, request.route, recipients
            )
        except BadInput:
            await self._repo.audit(
                request.chat_id,
                request.actor_id,
                "send",
                _("{count} recipient(s) via {route}: all on the stoplist").format(
                    count=len(recipients), route=request.route
                ),
                AuditOutcome.REFUSED,
            )
            raise

    async def _fan_out(
        self,
        adapter: Provider,
        route: Route,
        rows: list[Message],
        request: SendRequest,
        writer: ChangeWriter,
        *,
        can_fail_over: bool,
        hand_over: Callable[[Sequence[int]], Awaitable[list[int]]] | None = None,
    ) -> list[tuple[Message, ProviderError]]:
        """Send ``rows`` on ``route``; outcomes go to ``writer``.

        Returns the rows the provider certainly did not send (``not_sent``) when the chain has
        another route (``can_fail_over``); without one they are written as failed.
        ``hand_over`` (a large send) marks each chunk handed to the provider before its call
        and gives back the rows still to send: fewer means the send was stopped.
        """
        stop: list[ProviderError] = []
        halted: list[bool] = []  # a large send's Stop was pressed
        refused: list[tuple[Message, ProviderError]] = []
        options = dict(request.options or {})
        if route != request.route:  # failover: flags the channel lacks (an SMS --otp) stay
            options = {k: v for k, v in options.items() if k in route.channel.options}
        callback = self._status_callback(route.provider.name)
        if callback:
            options[STATUS_CALLBACK] = callback
        # Rows share a request only when they share a text (a personalised send has many).
        by_text: dict[str, list[Message]] = {}
        for row in rows:
            by_text.setdefault(row.text, []).append(row)
        outgoing = {text: _outgoing(route, text, request, options) for text in by_text}
        # One request per recipient, or per chunk where the API takes a list (capability).
        size = adapter.capabilities.per_request(route.channel.name)
        bulk = adapter if size > 1 and isinstance(adapter, BulkProvider) else None
        step = size if bulk is not None else 1
        # Shared: each worker takes the next chunk, each chunk is taken once.
        queue = iter(
            [same[i : i + step] for same in by_text.values() for i in range(0, len(same), step)]
        )

        async def send(chunk: list[Message]) -> list[SendResult]:
            template = outgoing[chunk[0].text]
            if request.multicast is not None:
                if not isinstance(adapter, Multicaster):  # declared but not built: a bug
                    raise ValidationError(
                        _("{provider} cannot multicast in this version.").format(
                            provider=route.provider.display
                        ),
                        provider=route.provider.display,
                    )
                return [await adapter.multicast(request.multicast)]
            if bulk is not None:
                results = await bulk.send_many(template, [row.recipient for row in chunk])
                if len(results) != len(chunk):  # an adapter bug: never guess who got what
                    raise UnexpectedResponse(
                        _("{provider} answered for {count} of {total} recipients.").format(
                            provider=route.provider.display, count=len(results), total=len(chunk)
                        ),
                        provider=route.provider.display,
                    )
                return results
            return [await adapter.send(replace(template, to=chunk[0].recipient))]

        def refuse(chunk: list[Message], exc: ProviderError, *, skipped: bool = False) -> None:
            if can_fail_over and exc.not_sent:
                refused.extend((row, exc) for row in chunk)
                return
            for row in chunk:
                if row.id is not None:
                    writer.add(_failed(row.id, exc, skipped=skipped))

        async def worker() -> None:
            # A fixed set of workers, not a task per recipient: 10,000 tasks waiting on a
            # semaphore cost ~30 µs a message in scheduling alone.
            for chunk in queue:
                if stop:
                    refuse(chunk, stop[0], skipped=True)
                    continue
                if hand_over is not None:
                    if halted:
                        continue  # the Stop itself made these rows aborted
                    taken = set(await hand_over([row.id for row in chunk if row.id is not None]))
                    if len(taken) < len(chunk):
                        halted.append(True)
                    chunk = [row for row in chunk if row.id in taken]
                    if not chunk:
                        continue
                try:
                    results = await send(chunk)
                except ProviderError as exc:
                    if isinstance(exc, _FATAL):
                        stop.append(exc)
                    refuse(chunk, exc)
                else:
                    ids = [row.id for row in chunk if row.id is not None]
                    for message_id, result in zip(ids, results, strict=True):
                        writer.add(self._accepted(message_id, result, request.send_at))

        workers = min(self._concurrency, (len(rows) + step - 1) // step)
        try:
            await asyncio.gather(*(worker() for _worker in range(workers)))
        except asyncio.CancelledError:
            # A stop cut the send off: keep the outcomes already known, and say that the
            # recipients never reached (or refused, waiting for the next route) were not
            # sent. Those whose call was in flight stay queued (the stop makes them
            # unknown). Shielded against the same cancellation. A large send's rows not
            # handed over stay queued: the next start goes on with them.
            for chunk in queue:
                for row in chunk:
                    if hand_over is None:
                        writer.add(_not_sent(row.id))
            for row, exc in refused:
                if row.id is not None:
                    writer.add(_failed(row.id, exc))
            await asyncio.shield(writer.flush())
            raise
        return refused

    async def _fail_over(
        self,
        refused: list[tuple[Message, ProviderError]],
        source: Route,
        target: Route,
        request: SendRequest,
        writer: ChangeWriter,
    ) -> tuple[list[Message], Provider | None]:
        """Move what ``source`` refused to ``target``; what cannot move is written as failed."""

        def fail(row: Message, exc: ProviderError, why: str) -> None:
            if row.id is not None:
                note = _("{route} could not take it: {reason}").format(route=target, reason=why)
                writer.add(_failed(row.id, exc, note=" " + note))

        try:
            if bool(request.media) and not target.channel.media:
                raise BadInput(_("it carries no files."))
            if target.channel.subject != source.channel.subject:
                raise BadInput(_("it takes another kind of message."))
            for text in {row.text for row, _error in refused}:
                validate_text(target, text, request.media)
            adapter = await self._accounts.adapter(
                request.chat_id, target.provider, channel=target.channel
            )
        except UserError as exc:
            for row, error in refused:
                fail(row, error, exc.message)
            return [], None
        moves: dict[int, tuple[Message, Reroute]] = {}
        for row, error in refused:
            try:
                recipient = _read_recipient(target, row.recipient, request.country)
            except BadInput as exc:
                fail(row, error, exc.message)
                continue
            assert row.id is not None
            moves[row.id] = (
                row,
                Reroute(
                    row.id,
                    target.provider.name,
                    target.channel.name,
                    recipient,
                    _("{source} did not send it ({reason}); trying {target}.").format(
                        source=source, reason=error.message, target=target
                    ),
                ),
            )
        moved = set(await self._repo.messages.reroute([move for _row, move in moves.values()]))
        rows: list[Message] = []
        for message_id, (row, move) in moves.items():
            if message_id in moved:
                row.provider, row.channel, row.recipient = (
                    move.provider,
                    move.channel,
                    move.recipient,
                )
                rows.append(row)
        log.info("failover: %d message(s) from %s to %s", len(rows), source, target)
        return rows, adapter

    def _accepted(
        self, message_id: int, result: SendResult, send_at: datetime | None
    ) -> StateChange:
        now = self.clock()
        start = max(now, send_at) if send_at is not None else now
        return StateChange(
            message_id=message_id,
            state=result.state,
            source="send",
            provider_ref=result.ref,
            provider_status=result.provider_status,
            detail=result.detail,
            next_poll_at=None if result.state.is_final else start + self._first_poll,
        )


def resume_json(request: SendRequest) -> str:
    """What a restart needs to go on with a large send, beside the batch and its rows."""
    return json.dumps(
        {
            "options": dict(request.options or {}),
            "fallbacks": [str(route) for route in request.fallbacks],
            "country": request.country,
        }
    )


def resumed_request(batch: Batch) -> SendRequest:
    """The request of a stored large send, rebuilt from the batch (no recipients: its rows)."""
    stored = json.loads(batch.resume or "{}")
    return SendRequest(
        chat_id=batch.chat_id,
        actor_id=batch.created_by,
        actor_name=batch.created_by_name,
        route=parse_route(batch.route),
        recipients=[],
        text=batch.text,
        origin=batch.origin,
        country=stored.get("country"),
        options=stored.get("options") or None,
        fallbacks=tuple(parse_route(r) for r in stored.get("fallbacks", [])),
        schedule_id=batch.schedule_id,
    )


def _not_sent(message_id: int | None) -> StateChange:
    assert message_id is not None
    return StateChange(
        message_id=message_id,
        state=DeliveryState.FAILED,
        source="send",
        detail=_("not sent: the bot stopped before this recipient's turn"),
    )


def _outgoing(
    route: Route, text: str, request: SendRequest, options: dict[str, str]
) -> OutgoingMessage:
    """The provider-neutral message of one text (its subject split off on a subject channel)."""
    own = dict(options)
    if route.channel.subject:
        own[SUBJECT], text = split_subject(text)
    return OutgoingMessage(
        channel=route.channel.name, to="", text=text, media=request.media, options=own
    )


def _failed(
    message_id: int, exc: ProviderError, *, skipped: bool = False, note: str = ""
) -> StateChange:
    if exc.maybe_sent:
        return StateChange(
            message_id=message_id,
            state=DeliveryState.UNKNOWN,
            source="send",
            detail=exc.message
            + " "
            + _("It may or may not have been sent; check with the provider before sending again."),
        )
    reason = _("not attempted: {reason}").format(reason=exc.message) if skipped else exc.message
    detail = reason + note
    return StateChange(
        message_id=message_id, state=DeliveryState.FAILED, source="send", detail=detail
    )
