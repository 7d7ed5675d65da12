"""Data access: one short session per unit of work, never held across a provider call.

Writes that come in bulk (a send to many recipients, a batch of receipts) take a list and
commit once, so a large fan-out costs a few transactions rather than one per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from providers.base import DeliveryState
from storage import sends
from storage.cache import RowCache
from storage.db import SessionFactory
from storage.models import (
    AuditEntry,
    Batch,
    Chat,
    ConnectToken,
    Credential,
    Member,
    Message,
    Role,
    StatusEvent,
    utcnow,
)
from storage.sends import NotQueued, StateChange, StoredSend
from storage.units import Units

__all__ = ["Repository", "StateChange", "StoredSend"]

CHAT_CACHE = 4096  # chats whose row is kept in memory (read on every update)


class Repository:
    """Every query the services run."""

    def __init__(self, sessions: SessionFactory, units: Units | None = None) -> None:
        self.sessions = sessions
        self.units = units if units is not None else Units(sessions)
        # Read on every update / every send; this process owns the database, and every
        # write of these rows goes through this class, which keeps the copies current.
        self._chats: RowCache[int, Chat] = RowCache(CHAT_CACHE)
        self._credentials: RowCache[tuple[int, str], Credential] = RowCache(CHAT_CACHE)

    # -- chats -------------------------------------------------------------------------------

    async def ensure_chat(self, chat_id: int, *, kind: str, title: str) -> Chat:
        """The chat's row, created on first contact and kept up to date (cached)."""
        _known, cached = self._chats.lookup(chat_id)
        if cached is not None and cached.title == title and cached.kind == kind:
            return cached
        generation = self._chats.generation()
        chat = await self._ensure_chat(chat_id, kind=kind, title=title)
        self._chats.put(chat_id, chat, generation)
        return chat

    async def _ensure_chat(self, chat_id: int, *, kind: str, title: str) -> Chat:
        async with self.sessions() as s:
            chat = await s.get(Chat, chat_id)
            if chat is None:
                chat = Chat(id=chat_id, kind=kind, title=title)
                s.add(chat)
                try:
                    await s.commit()
                except IntegrityError:  # created concurrently by another update
                    await s.rollback()
                    found = await s.get(Chat, chat_id)
                    assert found is not None
                    return found
            elif chat.title != title or chat.kind != kind:
                chat.title, chat.kind = title, kind
                await s.commit()
            return chat

    async def get_chat(self, chat_id: int) -> Chat | None:
        """The chat's row, if the bot has seen the chat."""
        _known, cached = self._chats.lookup(chat_id)
        if cached is not None:
            return cached
        async with self.sessions() as s:
            return await s.get(Chat, chat_id)

    async def update_chat(self, chat_id: int, **values: object) -> None:
        """Set chat settings (default route, time zone, country)."""
        self._chats.forget(chat_id)
        async with self.sessions() as s:
            await s.exec(update(Chat).where(col(Chat.id) == chat_id).values(**values))
            await s.commit()
        self._chats.forget(chat_id)

    # -- credentials -------------------------------------------------------------------------

    async def save_credential(
        self, chat_id: int, provider: str, *, secret: bytes, account: str, actor: int
    ) -> None:
        """Store (or replace) a chat's encrypted credentials for a provider."""
        self._credentials.forget((chat_id, provider))
        async with self.sessions() as s:
            existing = (
                await s.exec(
                    select(Credential).where(
                        Credential.chat_id == chat_id, Credential.provider == provider
                    )
                )
            ).first()
            now = utcnow()
            if existing is None:
                s.add(
                    Credential(
                        chat_id=chat_id,
                        provider=provider,
                        secret=secret,
                        account=account,
                        created_by=actor,
                        checked_at=now,
                    )
                )
            else:
                existing.secret, existing.account, existing.created_by = secret, account, actor
                existing.checked_at, existing.check_ok, existing.check_detail = now, True, ""
            await s.commit()
        self._credentials.forget((chat_id, provider))

    async def get_credential(self, chat_id: int, provider: str) -> Credential | None:
        """A chat's stored credentials for one provider (cached: read on every send)."""
        key = (chat_id, provider)
        known, cached = self._credentials.lookup(key)
        if known:
            return cached
        generation = self._credentials.generation()
        async with self.sessions() as s:
            found = (
                await s.exec(
                    select(Credential).where(
                        Credential.chat_id == chat_id, Credential.provider == provider
                    )
                )
            ).first()
        self._credentials.put(key, found, generation)
        return found

    async def list_credentials(self, chat_id: int) -> list[Credential]:
        """Every provider connected in a chat."""
        async with self.sessions() as s:
            rows = await s.exec(
                select(Credential)
                .where(Credential.chat_id == chat_id)
                .order_by(col(Credential.provider))
            )
            return list(rows)

    async def all_credentials(self) -> list[Credential]:
        """Every stored credential (for key rotation at start)."""
        async with self.sessions() as s:
            return list(await s.exec(select(Credential)))

    async def replace_secrets(self, secrets: dict[int, bytes]) -> None:
        """Write re-encrypted secrets back (key rotation)."""
        self._credentials.clear()
        async with self.sessions() as s:
            for cred_id, secret in secrets.items():
                await s.exec(
                    update(Credential).where(col(Credential.id) == cred_id).values(secret=secret)
                )
            await s.commit()
        self._credentials.clear()

    async def delete_credential(self, chat_id: int, provider: str) -> bool:
        """Forget a chat's credentials; whether there were any."""
        self._credentials.forget((chat_id, provider))
        async with self.sessions() as s:
            result = await s.exec(
                delete(Credential).where(
                    col(Credential.chat_id) == chat_id, col(Credential.provider) == provider
                )
            )
            await s.commit()
        self._credentials.forget((chat_id, provider))
        return bool(result.rowcount)

    async def record_check(self, chat_id: int, provider: str, *, ok: bool, detail: str) -> None:
        """Remember the last credential check's outcome for /providers."""
        self._credentials.forget((chat_id, provider))
        async with self.sessions() as s:
            await s.exec(
                update(Credential)
                .where(col(Credential.chat_id) == chat_id, col(Credential.provider) == provider)
                .values(checked_at=utcnow(), check_ok=ok, check_detail=detail[:300])
            )
            await s.commit()
        self._credentials.forget((chat_id, provider))

    # -- members and roles -------------------------------------------------------------------

    async def get_role(self, chat_id: int, user_id: int) -> Role | None:
        """The role /role gave this user in this chat, if any."""
        async with self.sessions() as s:
            member = await s.get(Member, (chat_id, user_id))
            return Role(member.role) if member else None

    async def set_role(
        self, chat_id: int, user_id: int, *, role: Role, username: str, actor: int
    ) -> None:
        """Give a user a role in a chat."""
        async with self.sessions() as s:
            member = await s.get(Member, (chat_id, user_id))
            if member is None:
                s.add(
                    Member(
                        chat_id=chat_id,
                        user_id=user_id,
                        username=username,
                        role=role.value,
                        set_by=actor,
                    )
                )
            else:
                member.role, member.set_by, member.set_at = role.value, actor, utcnow()
                if username:
                    member.username = username
            await s.commit()

    async def find_member(self, chat_id: int, username: str) -> Member | None:
        """A member this chat knows by @username (case-insensitive)."""
        async with self.sessions() as s:
            return (
                await s.exec(
                    select(Member).where(
                        Member.chat_id == chat_id,
                        func.lower(Member.username) == username.lower(),
                    )
                )
            ).first()

    async def list_members(self, chat_id: int) -> list[Member]:
        """Every explicit role in a chat."""
        async with self.sessions() as s:
            return list(await s.exec(select(Member).where(Member.chat_id == chat_id)))

    # -- deep-link tokens --------------------------------------------------------------------

    async def add_connect_token(self, token: ConnectToken) -> None:
        """Store a one-time token for /connect from a group."""
        async with self.sessions() as s:
            s.add(token)
            await s.commit()

    async def get_connect_token(self, token: str) -> ConnectToken | None:
        """A deep-link token as stored, used or not."""
        async with self.sessions() as s:
            return await s.get(ConnectToken, token)

    async def take_connect_token(self, token: str) -> ConnectToken | None:
        """Use a token once; None when unknown, used or expired."""
        async with self.sessions() as s:
            now = utcnow()
            result = await s.exec(
                update(ConnectToken)
                .where(
                    col(ConnectToken.token) == token,
                    col(ConnectToken.used_at).is_(None),
                    col(ConnectToken.expires_at) > now,
                )
                .values(used_at=now)
            )
            await s.commit()
            if not result.rowcount:
                return None
            return await s.get(ConnectToken, token)

    # -- messages ----------------------------------------------------------------------------

    async def create_batch(self, batch: Batch, messages: Sequence[Message]) -> tuple[Batch, bool]:
        """Store a send and its queued messages in one transaction (see :meth:`store_send`)."""
        stored = await self.store_send(batch, messages)
        return stored.batch, stored.new

    async def store_send(self, batch: Batch, messages: Sequence[Message]) -> StoredSend:
        """Store a send, its queued messages, their history and the audit row in one unit.

        The batch's ``origin`` is unique: the same Telegram update delivered twice finds the
        first batch (``new`` False) instead of sending again. Each given message gets its
        ``id``, ``batch_id``, ``chat_id`` and times set.
        """
        now = utcnow()
        try:
            return await self.units.run_core(lambda c: sends.store_send(c, batch, messages, now))
        except IntegrityError:  # this origin is stored already: a replay
            found = await self.units.run(
                lambda s: s.scalars(select(Batch).where(Batch.origin == batch.origin)).one(),
                write=False,
            )
            return StoredSend(found, False, 0)

    async def record_outcomes(self, outcomes: Sequence[tuple[Message, StateChange]]) -> int:
        """Record a send's provider answers on its own still-``queued`` messages.

        One unit with no read (the objects take the new values); should a row have moved on
        meanwhile, the changes are applied the general, forward-only way instead. Returns the
        newest history row's id, which the status card shows up to.
        """
        if not outcomes:
            return 0
        now = utcnow()
        try:
            last = await self.units.run_core(lambda c: sends.record_outcomes(c, outcomes, now))
        except NotQueued:
            # Something moved a row first (it cannot, short of a bug): forward-only, then
            # give the objects what the database now holds.
            _moved, last = await self._apply([change for _m, change in outcomes])
            await self.units.run(lambda s: sends.refresh(s, [m for m, _c in outcomes]))
            return last
        sends.take_outcomes(outcomes, now)
        return last

    async def apply_changes(self, changes: Iterable[StateChange]) -> list[Message]:
        """Apply state changes in one transaction; returns the messages that really moved.

        Forward only: a change that would move a state backwards, or repeats the current
        state, is ignored (receipts arrive twice, late and out of order); each real change adds
        one history row, and a message whose columns did not change is not written at all.
        The read and the writes are one unit (under ``BEGIN IMMEDIATE`` on SQLite), so two
        receipts racing cannot both pass the check against the same old state.
        """
        moved, _last = await self._apply(list(changes))
        return moved

    async def _apply(self, changes: list[StateChange]) -> tuple[list[Message], int]:
        if not changes:
            return [], 0
        now = utcnow()
        return await self.units.run(lambda s: sends.apply_changes(s, changes, now))

    async def get_message(self, chat_id: int, message_id: int) -> Message | None:
        """A message of this chat by its id."""
        async with self.sessions() as s:
            message = await s.get(Message, message_id)
            return message if message is not None and message.chat_id == chat_id else None

    async def history(self, message_id: int) -> list[StatusEvent]:
        """A message's state changes, oldest first."""
        async with self.sessions() as s:
            rows = await s.exec(
                select(StatusEvent)
                .where(StatusEvent.message_id == message_id)
                .order_by(col(StatusEvent.id))
            )
            return list(rows)

    async def latest_messages(self, chat_id: int, limit: int) -> list[Message]:
        """The chat's most recent messages, newest first."""
        async with self.sessions() as s:
            rows = await s.exec(
                select(Message)
                .where(Message.chat_id == chat_id)
                .order_by(col(Message.id).desc())
                .limit(limit)
            )
            return list(rows)

    async def batch_messages(self, batch_id: int) -> list[Message]:
        """The messages of one send, in recipient order."""
        async with self.sessions() as s:
            rows = await s.exec(
                select(Message).where(Message.batch_id == batch_id).order_by(col(Message.id))
            )
            return list(rows)

    async def get_batch(self, batch_id: int) -> Batch | None:
        """One send by id."""
        async with self.sessions() as s:
            return await s.get(Batch, batch_id)

    async def mark_interrupted_sends(self) -> int:
        """At start: messages still ``queued`` were interrupted mid-send by a stop.

        Their provider call may or may not have happened, so they become ``unknown`` (never
        resent blindly). Returns how many were found.
        """
        async with self.sessions() as s:
            rows = list(
                await s.exec(select(Message).where(Message.state == DeliveryState.QUEUED.value))
            )
            now = utcnow()
            for message in rows:
                message.state = DeliveryState.UNKNOWN.value
                message.detail = "the bot stopped while sending; check before resending"
                message.updated_at = now
                s.add(message)
                assert message.id is not None
                s.add(
                    StatusEvent(
                        message_id=message.id,
                        state=message.state,
                        detail=message.detail,
                        source="restart",
                        at=now,
                    )
                )
            await s.commit()
            return len(rows)

    # -- audit -------------------------------------------------------------------------------

    async def audit(self, chat_id: int, user_id: int, action: str, detail: str = "") -> None:
        """Record who did what (never a secret)."""
        async with self.sessions() as s:
            s.add(AuditEntry(chat_id=chat_id, user_id=user_id, action=action, detail=detail))
            await s.commit()
