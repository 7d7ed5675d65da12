"""Polling providers for delivery states, expiring stuck messages, applying pushed receipts.

Nothing here imports telegram: every path ends in :meth:`Repository.apply_changes` (forward
only, one history row per real change) and hands the messages that moved to ``on_moved``,
which the card updater turns into coalesced edits.

Due rows are read in pages; each page is polled with bounded concurrency (the adapters also
pace themselves per account), its changes are committed in one transaction and every polled
message gets its next poll (backoff) in another. A session is never held across a provider
call. A failed poll only pushes the message's next poll back; expiry ends it eventually.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.services.accounts import Accounts
from bot.services.errors import UserError
from bot.tracking.policy import PollPolicy
from providers.base import DeliveryState, Provider, StatusReport
from providers.errors import ProviderError, RateLimited
from providers.registry import REGISTRY, ProviderSpec
from storage.models import Message
from storage.repo import Repository, StateChange
from storage.tracking_repo import PollPlan, TrackingRepository

log = logging.getLogger(__name__)

OnMoved = Callable[[Sequence[Message]], None]


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
    ) -> None:
        self._store = store
        self._repo = repo
        self._accounts = accounts
        self.policy = policy
        self._registry = REGISTRY if registry is None else registry
        # apply_changes reads, then writes: two concurrent calls (a webhook and a poll, two
        # callbacks) could both pass the forward-only check and the later commit would move
        # the state backwards. Every tracking write goes through this lock.
        self._writing = asyncio.Lock()

    async def poll_due(
        self, now: datetime, on_moved: OnMoved, *, stopping: Callable[[], bool] | None = None
    ) -> int:
        """Poll every message due at ``now``, page by page; returns how many were asked."""
        asked = 0
        for _ in range(self.policy.max_pages):
            if stopping is not None and stopping():
                break
            page = await self._store.due_messages(
                now, self.policy.watch(now), limit=self.policy.page_size
            )
            if not page:
                break
            outcome = await self.poll(page, now, source="poll")
            asked += outcome.asked
            if outcome.moved:
                on_moved(outcome.moved)
            if len(page) < self.policy.page_size:
                break
        return asked

    async def poll(
        self, messages: Sequence[Message], now: datetime, *, source: str
    ) -> PollOutcome:
        """Ask the providers about these messages now and schedule their next polls."""
        if not messages:
            return PollOutcome()
        adapters = await self._adapters(messages)
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

        results = await asyncio.gather(*(one(m) for m in messages))
        changes: list[StateChange] = []
        plans: list[PollPlan] = []
        errors: list[str] = []
        for message, result in zip(messages, results, strict=True):
            assert message.id is not None
            attempts = message.poll_attempts + 1
            delay = self.policy.delay(attempts)
            if isinstance(result, StatusReport):
                changes.append(
                    StateChange(
                        message_id=message.id,
                        state=result.state,
                        source=source,
                        provider_status=result.provider_status,
                        detail=result.detail,
                    )
                )
            else:
                if isinstance(result, RateLimited):
                    delay = max(delay, timedelta(seconds=result.retry_after))
                errors.append(getattr(result, "message", "") or type(result).__name__)
            plans.append(PollPlan(message.id, now + delay, attempts))
        async with self._writing:
            moved = await self._repo.apply_changes(changes)
            await self._store.reschedule(plans, self.policy.watch(now))
        return PollOutcome(asked=len(messages), moved=moved, errors=errors)

    async def expire(self, now: datetime, on_moved: OnMoved) -> int:
        """Mark messages open for longer than the expiry age ``expired``; returns how many."""
        cutoff = now - self.policy.expire_after
        detail = f"no final status within {self.policy.expire_hours}"
        expired = 0
        for _ in range(self.policy.max_pages):
            ids = await self._store.stale_open(cutoff, limit=self.policy.page_size)
            if not ids:
                break
            async with self._writing:
                moved = await self._repo.apply_changes(
                    StateChange(i, DeliveryState.EXPIRED, "expiry", detail=detail) for i in ids
                )
            expired += len(moved)
            if moved:
                on_moved(moved)
            if len(ids) < self.policy.page_size:
                break
        await self._store.stop_watching(self.policy.watch(now))
        return expired

    async def receive(
        self, provider: str, reports: Sequence[StatusReport], now: datetime, *, source: str
    ) -> ReceiptOutcome:
        """Apply pushed receipts, matched to messages by ``(provider, provider ref)``."""
        messages = await self._store.by_refs(provider, {r.ref for r in reports})
        by_ref: dict[str, list[Message]] = {}
        for message in messages:
            by_ref.setdefault(message.provider_ref or "", []).append(message)
        changes = [
            StateChange(
                message_id=m.id,
                state=r.state,
                source=source,
                provider_status=r.provider_status,
                detail=r.detail,
            )
            for r in reports
            for m in by_ref.get(r.ref, [])
            if m.id is not None
        ]
        async with self._writing:
            moved = await self._repo.apply_changes(changes)
            # A receipt is progress: the next poll (e.g. waiting for "read") backs off anew.
            plans = [
                PollPlan(m.id, now + self.policy.delay(m.poll_attempts), m.poll_attempts)
                for m in moved
                if m.id is not None
            ]
            await self._store.reschedule(plans, self.policy.watch(now))
        unknown = sorted({r.ref for r in reports if r.ref not in by_ref})
        return ReceiptOutcome(matched=len(changes), moved=moved, unknown_refs=unknown)

    async def _adapters(
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
