"""Polling providers for delivery states, expiring stuck messages, applying pushed receipts.

Nothing here imports telegram: every path ends in
:meth:`storage.messages.Messages.apply_changes` (forward only, one history row per real change),
whose transaction also writes the card edits and failure notices the changes owe their chats
to the outbox (:mod:`storage.outbox`), which the card updater delivers coalesced.

When each message is polled next lives in memory (:class:`PollSchedule`); due messages are
taken from it in pages, read back from the database (the state a poll compares against) and
polled with bounded concurrency (the adapters also pace themselves per account). Only an
answer that moves a message is written: one UPDATE carrying the new state *and* the next
poll as a restart hint. A poll that changes nothing, a failed or rate-limited poll only moves
the message's entry in memory; expiry ends a stuck message eventually. A session is never held
across a provider call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.services.accounts import Accounts
from bot.services.errors import UserError
from bot.tracking.policy import PollPolicy
from bot.tracking.schedule import PollSchedule
from i18n import ENGLISH, _, use_language
from providers.base import DeliveryState, Provider, StatusReport
from providers.errors import ProviderError, RateLimited
from providers.registry import REGISTRY, ProviderSpec
from storage.messages import StateChange
from storage.models import Message
from storage.repo import Repository
from storage.tracking_repo import PollHint, ReadWatch, TrackingRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one round of polls did: how many were asked, what moved, what failed."""

    asked: int = 0
    moved: list[Message] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """What a pushed callback did."""

    matched: int
    moved: list[Message]
    unknown_refs: list[str]


class Poller:
    """Turns provider answers and receipts into state changes and next polls."""

    def __init__(
        self,
        store: TrackingRepository,
        repo: Repository,
        accounts: Accounts,
        policy: PollPolicy,
        *,
        registry: dict[str, ProviderSpec] | None = None,
        language_of: Callable[[int], Awaitable[str]] | None = None,
    ) -> None:
        self._store = store
        self._repo = repo
        self._accounts = accounts
        self.policy = policy
        # Notes written for one chat's messages are in its language (None: English).
        self._language_of = language_of
        self.schedule = PollSchedule()
        self._registry = REGISTRY if registry is None else registry

    async def language(self, chat_id: int) -> str:
        """The language notes about this chat's messages are written in."""
        if self._language_of is None:
            return ENGLISH
        try:
            return await self._language_of(chat_id)
        except Exception:  # a note in English beats no note
            log.warning("could not read the language of chat %s", chat_id)
            return ENGLISH

    # -- the schedule ------------------------------------------------------------------------

    def resume(self, hints: Sequence[PollHint], now: datetime) -> None:
        """At start: arm every message the database says is polled (see ``catch_up``).

        An open message without a next poll is due now; a read-watched delivered one (whose
        hint a final state cleared) continues its backoff from its delivery (``updated_at``).
        """
        for hint in hints:
            due = hint.next_poll_at
            if due is None and hint.delivered_at is not None:
                due = hint.delivered_at + self.policy.delay(hint.poll_attempts)
            at, attempts = self.policy.catch_up(due or now, hint.poll_attempts, now)
            self.schedule.arm(hint.message_id, at, attempts)

    def track(self, messages: Sequence[Message], now: datetime) -> None:
        """New messages from the send path enter the schedule (no database round)."""
        watch = self.policy.watch(now)
        for message in messages:
            if message.id is None or message.id in self.schedule:
                continue  # a card posted again: its messages are scheduled already
            if not self._pollable(message, watch):
                continue
            delivered = message.state == DeliveryState.DELIVERED
            hint = PollHint(
                message.id,
                message.next_poll_at,
                message.poll_attempts,
                message.updated_at if delivered else None,
            )
            self.resume([hint], now)

    def _pollable(self, message: Message, watch: ReadWatch) -> bool:
        return (
            message.provider_ref is not None
            and self._store.tracks(message.provider, message.channel)
            and watch.covers(message)
        )

    def _rearm(self, message: Message, watch: ReadWatch, at: datetime, attempts: int) -> None:
        assert message.id is not None
        if self._pollable(message, watch):
            self.schedule.arm(message.id, at, attempts)
        else:
            self.schedule.drop(message.id)

    def _attempts(self, message: Message) -> int:
        assert message.id is not None
        known = self.schedule.attempts(message.id)
        return message.poll_attempts if known is None else known

    # -- polls -------------------------------------------------------------------------------

    async def poll_due(self, now: datetime, *, stopping: Callable[[], bool] | None = None) -> int:
        """Poll every message due at ``now``, page by page; returns how many were asked.

        Nothing due: no database round at all.
        """
        asked = 0
        size = self.policy.page_size
        for _page in range(self.policy.max_pages):
            if stopping is not None and stopping():
                break
            ids = self.schedule.take(now, size, retry_at=now + self.policy.delay(0))
            if not ids:
                break
            rows = {m.id: m for m in await self._store.messages.by_ids(ids)}
            watch = self.policy.watch(now)
            page: list[Message] = []
            for message_id in ids:
                message = rows.get(message_id)
                if message is not None and self._pollable(message, watch):
                    page.append(message)
                else:  # gone, final (a receipt came), or its read watch is over
                    self.schedule.drop(message_id)
            outcome = await self.poll(page, now, source="poll")
            asked += outcome.asked
            if len(ids) < size:
                break
        return asked

    async def poll(
        self, messages: Sequence[Message], now: datetime, *, source: str
    ) -> PollOutcome:
        """Ask the providers about these messages now and schedule their next polls."""
        if not messages:
            return PollOutcome()
        adapters = await self.adapters(messages)
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def one(message: Message) -> StatusReport | Exception:
            adapter = adapters[(message.chat_id, message.provider)]
            if isinstance(adapter, Exception):
                return adapter
            assert message.provider_ref is not None
            async with gate:
                try:
                    return await adapter.status(message.provider_ref, channel=message.channel)
                except (ProviderError, UserError) as exc:
                    return exc
                except Exception as exc:  # a bug in one adapter must not stop tracking
                    log.exception("polling message %s failed unexpectedly", message.id)
                    return exc

        # Recipients of one provider message share its ref (a bulk API): asked about once.
        by_key: dict[tuple[int, str, str, str | None], Message] = {}
        for message in messages:
            by_key.setdefault(_poll_key(message), message)
        answers = dict(
            zip(by_key, await asyncio.gather(*(one(m) for m in by_key.values())), strict=True)
        )
        results = [answers[_poll_key(m)] for m in messages]
        changes: list[StateChange] = []
        plans: list[tuple[Message, datetime, int]] = []
        errors: list[str] = []
        for message, result in zip(messages, results, strict=True):
            assert message.id is not None
            attempts = self._attempts(message) + 1
            delay = self.policy.delay(attempts)
            if isinstance(result, StatusReport):
                # Only a move is written (with its next poll); the same state again is not.
                if DeliveryState(message.state).can_become(result.state):
                    changes.append(
                        StateChange(
                            message_id=message.id,
                            state=result.state,
                            source=source,
                            provider_status=result.provider_status,
                            detail=result.detail,
                            next_poll_at=now + delay,
                            poll_attempts=attempts,
                        )
                    )
            else:
                if isinstance(result, RateLimited):
                    delay = max(delay, timedelta(seconds=result.retry_after))
                errors.append(getattr(result, "message", "") or type(result).__name__)
            plans.append((message, now + delay, attempts))
        moved = (await self._repo.messages.apply_changes(changes)).moved
        by_id = {m.id: m for m in moved}
        watch = self.policy.watch(now)
        for message, at, attempts in plans:
            self._rearm(by_id.get(message.id, message), watch, at, attempts)
        return PollOutcome(asked=len(messages), moved=moved, errors=errors)

    async def expire(self, now: datetime) -> int:
        """Mark messages open for longer than the expiry age ``expired``; returns how many.

        Read watches need no sweep: a delivered message's next poll was cleared with its
        final state, and the schedule drops a message whose watch is over when it comes due.
        """
        cutoff = now - self.policy.expire_after
        expired = 0
        for _page in range(self.policy.max_pages):
            ids = await self._store.stale_open(cutoff, limit=self.policy.page_size)
            if not ids:
                break
            # Messages of many chats expire together: each note in its own chat's language.
            details: dict[int, str] = {}
            for chat_id in {chat for _id, chat in ids}:
                with use_language(await self.language(chat_id)):
                    details[chat_id] = _("no final status within {hours} h").format(
                        hours=self.policy.expire_hours
                    )
            applied = await self._repo.messages.apply_changes(
                StateChange(i, DeliveryState.EXPIRED, "expiry", detail=details[chat])
                for i, chat in ids
            )
            moved = applied.moved
            for message in moved:
                assert message.id is not None
                self.schedule.drop(message.id)
            expired += len(moved)
            if len(ids) < self.policy.page_size:
                break
        return expired

    # -- receipts ----------------------------------------------------------------------------

    async def receive(
        self, provider: str, reports: Sequence[StatusReport], now: datetime, *, source: str
    ) -> ReceiptOutcome:
        """Apply pushed receipts, matched to messages by ``(provider, provider ref)``."""
        messages = await self._store.by_refs(provider, {r.ref for r in reports})
        by_ref: dict[str, list[Message]] = {}
        for message in messages:
            by_ref.setdefault(message.provider_ref or "", []).append(message)
        changes: list[StateChange] = []
        plans: dict[int, tuple[datetime, int]] = {}
        matched = 0
        for message in messages:
            assert message.id is not None
            # A receipt is progress: the next poll (e.g. waiting for "read") backs off anew
            # from now, and that hint is written with the change.
            attempts = self._attempts(message)
            at = now + self.policy.delay(attempts)
            plans[message.id] = (at, attempts)
            state = DeliveryState(message.state)
            for report in reports:
                if report.ref != message.provider_ref:
                    continue
                matched += 1
                if not state.can_become(report.state):
                    continue  # a duplicate or late receipt: nothing to write
                state = report.state
                changes.append(
                    StateChange(
                        message_id=message.id,
                        state=report.state,
                        source=source,
                        provider_status=report.provider_status,
                        detail=report.detail,
                        next_poll_at=at,
                        poll_attempts=attempts,
                    )
                )
        moved = (await self._repo.messages.apply_changes(changes)).moved
        watch = self.policy.watch(now)
        for message in moved:
            assert message.id is not None
            self._rearm(message, watch, *plans[message.id])
        unknown = sorted({r.ref for r in reports if r.ref not in by_ref})
        return ReceiptOutcome(matched=matched, moved=moved, unknown_refs=unknown)

    async def adapters(
        self, messages: Sequence[Message]
    ) -> dict[tuple[int, str], Provider | Exception]:
        """One adapter per (chat, provider) of a page (credentials decrypted once)."""
        adapters: dict[tuple[int, str], Provider | Exception] = {}
        for message in messages:
            key = (message.chat_id, message.provider)
            if key in adapters:
                continue
            spec = self._registry.get(message.provider)
            if spec is None:
                adapters[key] = LookupError(f"no adapter for {message.provider} yet")
                continue
            try:
                adapters[key] = await self._accounts.adapter(message.chat_id, spec)
            except (UserError, ProviderError) as exc:
                adapters[key] = exc
        return adapters


def _poll_key(message: Message) -> tuple[int, str, str, str | None]:
    """What one status call answers for: the chat's account, channel and provider ref."""
    return (message.chat_id, message.provider, message.channel, message.provider_ref)
