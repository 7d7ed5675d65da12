"""The send path as ``bot.app.start_resources`` builds it, over either database, for benchmarks.

:class:`SendStack` opens a migrated database (``storage.db.Database`` over the URL it is
given: a SQLite file or a fresh PostgreSQL database, see ``bench.common.BenchDatabase``), the
shared HTTP client from ``providers.http.make_http_client``, a ``ProviderEnvironment``
pointing NusaSMS at a fake server, and ``Services.build``; it connects NusaSMS for one chat
by storing its encrypted key.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlmodel import col, select

from bot.services import Services
from bot.services.sending import SendRequest
from providers.http import make_http_client
from providers.nusasms import NusaSmsSettings
from providers.ratelimit import AccountLimiters
from providers.registry import ProviderEnvironment, parse_route
from storage.crypto import CredentialCipher, load_or_create_keys
from storage.db import Database, create_engine, migrate
from storage.messages import Applied, Messages, NewMessage, StateChange, StoredSend
from storage.models import Batch, Message
from storage.repo import Repository

CHAT = 4242
API_KEY = "bench-api-key"
TEXT = "Your verification code is 123456. It expires in 10 minutes."


def recipients(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct valid Indonesian mobile numbers."""
    return [f"62812{offset + i:08d}" for i in range(count)]


def send_request(origin: str, to: list[str]) -> SendRequest:
    """A WhatsApp send from the benchmark's chat."""
    return SendRequest(
        chat_id=CHAT,
        actor_id=1,
        actor_name="bench",
        route=parse_route("nusasms:wa"),
        recipients=to,
        text=TEXT,
        origin=origin,
    )


class TimedMessages(Messages):
    """The real message store, adding up the wall time spent in the send path's writes."""

    WATCHED: ClassVar[tuple[str, ...]] = ("store_send", "apply_changes")

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.seconds: dict[str, float] = dict.fromkeys(self.WATCHED, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(self.WATCHED, 0)

    async def _timed(self, name: str, call: Awaitable[Any]) -> Any:
        start = time.perf_counter()
        try:
            return await call
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1

    async def store_send(
        self,
        batch: Batch,
        messages: Sequence[NewMessage],
        *,
        hold: timedelta | None = None,
        note: str = "",
        audit_note: str = "",
    ) -> StoredSend:
        """Timed :meth:`Messages.store_send`."""
        stored: StoredSend = await self._timed(
            "store_send",
            super().store_send(batch, messages, hold=hold, note=note, audit_note=audit_note),
        )
        return stored

    async def apply_changes(self, changes: Iterable[StateChange]) -> Applied:
        """Timed :meth:`Messages.apply_changes`."""
        applied: Applied = await self._timed("apply_changes", super().apply_changes(changes))
        return applied

    def reset(self) -> None:
        """Forget the warm-up's timings."""
        self.seconds = dict.fromkeys(self.WATCHED, 0.0)
        self.calls = dict.fromkeys(self.WATCHED, 0)


class SendStack:
    """Repository, cipher, provider environment and services over the database at ``url``."""

    def __init__(
        self,
        workdir: Path,
        url: str,
        *,
        base_url: str,
        min_interval: float,
        concurrency: int,
        large_above: int | None = None,
    ) -> None:
        self.url = url
        self.workdir = workdir
        self.base_url = base_url
        self.min_interval = min_interval
        self.concurrency = concurrency
        self.large_above = large_above  # CONFIRM_ABOVE: larger sends are large sends
        self._db: Database | None = None
        self._http: httpx.AsyncClient | None = None
        self.messages: TimedMessages
        self.repo: Repository
        self.services: Services

    async def __aenter__(self) -> SendStack:
        engine = create_engine(self.url)
        await migrate(engine)
        self._db = Database(engine)
        cipher = CredentialCipher(
            load_or_create_keys(Fernet.generate_key().decode(), self.workdir)
        )
        self._http = make_http_client(timeout=20.0, max_connections=max(self.concurrency * 2, 20))
        env = ProviderEnvironment(
            http=self._http,
            limiters=AccountLimiters(),
            nusasms=NusaSmsSettings(base_url=self.base_url, min_interval=self.min_interval),
        )
        self.repo = Repository(self._db)
        self.messages = TimedMessages(self._db)
        self.repo.messages = self.messages
        self.repo.large_sends.outbox = self.messages.outbox  # one outbox, one listener
        self.services = Services.build(
            self.repo,
            cipher,
            env,
            send_concurrency=self.concurrency,
            first_poll=15.0,
            large_above=self.large_above,
        )
        await self.repo.ensure_chat(CHAT, kind="private", title="bench")
        await self.repo.save_credential(
            CHAT, "nusasms", secret=cipher.encrypt({"api_key": API_KEY}), account="bench", actor=1
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._db is not None:
            await self._db.engine.dispose()

    async def verify_stored(self, batch_id: int) -> tuple[int, int]:
        """Reopen the database: messages accepted with a ref, and distinct refs."""
        engine = create_engine(self.url)
        try:
            async with Database(engine).read() as s:
                accepted = (
                    await s.exec(
                        select(func.count())
                        .select_from(Message)
                        .where(
                            Message.batch_id == batch_id,
                            Message.state == "accepted",
                            col(Message.provider_ref).is_not(None),
                        )
                    )
                ).one()
                refs = (
                    await s.exec(
                        select(func.count(func.distinct(Message.provider_ref))).where(
                            Message.batch_id == batch_id
                        )
                    )
                ).one()
        finally:
            await engine.dispose()
        return int(accepted), int(refs)
