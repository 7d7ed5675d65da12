"""Chats, their settings, credentials, members, deep-link tokens and the audit log.

One short session per unit of work (:class:`storage.db.Database`), never held across a
provider call. Sends and messages live in :mod:`storage.messages` (``Repository.messages``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.audit import AuditLog
from storage.cache import RowCache
from storage.db import Database
from storage.history import History
from storage.inbox import Inbox
from storage.large_sends import LargeSends
from storage.messages import Messages
from storage.models import (
    AuditOutcome,
    Chat,
    ConnectToken,
    Credential,
    Dialogue,
    Member,
    Role,
    utcnow,
)
from storage.stoplist import StopList

CHAT_CACHE = 4096  # chats whose row is kept in memory (read on every update)


class Repository:
    """Every query the services run."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.messages = Messages(db)
        self.large_sends = LargeSends(db, self.messages.outbox)
        self.inbox = Inbox(db)  # Telegram updates taken but not yet handled
        self.audit_log = AuditLog(db)
        self.history = History(db)  # bulk reads: filtered lists, export pages, statistics
        self.stoplist = StopList(db)
        # Read on every update / every send. A single SQLite process owns its database, and
        # every write of these rows goes through this class, which keeps the copies current.
        # On PostgreSQL another replica may change a chat or its credentials: no copies.
        size = CHAT_CACHE if db.dialect == "sqlite" else 0
        self._chats: RowCache[int, Chat] = RowCache(size)
        self._credentials: RowCache[tuple[int, str], Credential] = RowCache(size)

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
        try:
            async with self.db.write() as s:
                chat = await s.get(Chat, chat_id)
                if chat is None:
                    chat = Chat(id=chat_id, kind=kind, title=title)
                    s.add(chat)
                elif chat.title != title or chat.kind != kind:
                    chat.title, chat.kind = title, kind
            return chat
        except IntegrityError:  # created meanwhile by another process
            async with self.db.read() as s:
                found = await s.get(Chat, chat_id)
            assert found is not None
            return found

    async def get_chat(self, chat_id: int) -> Chat | None:
        """The chat's row, if the bot has seen the chat."""
        _known, cached = self._chats.lookup(chat_id)
        if cached is not None:
            return cached
        async with self.db.read() as s:
            return await s.get(Chat, chat_id)

    async def update_chat(self, chat_id: int, **values: object) -> None:
        """Set chat settings (default route, time zone, country)."""
        self._chats.forget(chat_id)
        async with self.db.write() as s:
            await s.exec(update(Chat).where(col(Chat.id) == chat_id).values(**values))
        self._chats.forget(chat_id)

    # -- credentials -------------------------------------------------------------------------

    async def save_credential(
        self, chat_id: int, provider: str, *, secret: bytes, account: str, actor: int
    ) -> None:
        """Store (or replace) a chat's encrypted credentials for a provider."""
        self._credentials.forget((chat_id, provider))
        async with self.db.write() as s:
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
        self._credentials.forget((chat_id, provider))

    async def get_credential(self, chat_id: int, provider: str) -> Credential | None:
        """A chat's stored credentials for one provider (cached: read on every send)."""
        key = (chat_id, provider)
        known, cached = self._credentials.lookup(key)
        if known:
            return cached
        generation = self._credentials.generation()
        async with self.db.read() as s:
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
        async with self.db.read() as s:
            rows = await s.exec(
                select(Credential)
                .where(Credential.chat_id == chat_id)
                .order_by(col(Credential.provider))
            )
            return list(rows)

    async def all_credentials(self) -> list[Credential]:
        """Every stored credential (for key rotation at start)."""
        async with self.db.read() as s:
            return list(await s.exec(select(Credential)))

    async def replace_secrets(self, secrets: dict[int, bytes]) -> None:
        """Write re-encrypted secrets back (key rotation)."""
        self._credentials.clear()
        async with self.db.write() as s:
            for cred_id, secret in secrets.items():
                await s.exec(
                    update(Credential).where(col(Credential.id) == cred_id).values(secret=secret)
                )
        self._credentials.clear()

    async def delete_credential(self, chat_id: int, provider: str) -> bool:
        """Forget a chat's credentials; whether there were any."""
        self._credentials.forget((chat_id, provider))
        async with self.db.write() as s:
            result = await s.exec(
                delete(Credential).where(
                    col(Credential.chat_id) == chat_id, col(Credential.provider) == provider
                )
            )
        self._credentials.forget((chat_id, provider))
        return bool(result.rowcount)

    async def record_check(self, chat_id: int, provider: str, *, ok: bool, detail: str) -> None:
        """Remember the last credential check's outcome for /providers."""
        self._credentials.forget((chat_id, provider))
        async with self.db.write() as s:
            await s.exec(
                update(Credential)
                .where(col(Credential.chat_id) == chat_id, col(Credential.provider) == provider)
                .values(checked_at=utcnow(), check_ok=ok, check_detail=detail[:300])
            )
        self._credentials.forget((chat_id, provider))

    # -- guided dialogues (encrypted by the caller) --------------------------------------------

    async def put_dialogue(self, user_id: int, data: bytes, *, started_at: datetime) -> None:
        """Store (or replace) a user's dialogue in progress."""
        async with self.db.write() as s:
            row = await s.get(Dialogue, user_id)
            if row is None:
                s.add(Dialogue(user_id=user_id, data=data, started_at=started_at))
            else:
                row.data, row.started_at = data, started_at

    async def get_dialogue(self, user_id: int) -> Dialogue | None:
        """A user's dialogue in progress, if any."""
        async with self.db.read() as s:
            return await s.get(Dialogue, user_id)

    async def drop_dialogue(self, user_id: int) -> bool:
        """End a user's dialogue; whether there was one."""
        async with self.db.write() as s:
            result = await s.exec(delete(Dialogue).where(col(Dialogue.user_id) == user_id))
        return bool(result.rowcount)

    # -- members and roles -------------------------------------------------------------------

    async def get_role(self, chat_id: int, user_id: int) -> Role | None:
        """The role /role gave this user in this chat, if any."""
        async with self.db.read() as s:
            member = await s.get(Member, (chat_id, user_id))
            return Role(member.role) if member else None

    async def set_role(
        self, chat_id: int, user_id: int, *, role: Role, username: str, actor: int
    ) -> None:
        """Give a user a role in a chat."""
        async with self.db.write() as s:
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

    async def find_member(self, chat_id: int, username: str) -> Member | None:
        """A member this chat knows by @username (case-insensitive)."""
        async with self.db.read() as s:
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
        async with self.db.read() as s:
            return list(await s.exec(select(Member).where(Member.chat_id == chat_id)))

    # -- deep-link tokens --------------------------------------------------------------------

    async def add_connect_token(self, token: ConnectToken) -> None:
        """Store a one-time token for /connect from a group."""
        async with self.db.write() as s:
            s.add(token)

    async def get_connect_token(self, token: str) -> ConnectToken | None:
        """A deep-link token as stored, used or not."""
        async with self.db.read() as s:
            return await s.get(ConnectToken, token)

    async def take_connect_token(self, token: str) -> ConnectToken | None:
        """Use a token once; None when unknown, used or expired."""
        async with self.db.write() as s:
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
            if not result.rowcount:
                return None
            return await s.get(ConnectToken, token)

    # -- audit -------------------------------------------------------------------------------

    async def audit(
        self,
        chat_id: int,
        user_id: int,
        action: str,
        detail: str = "",
        outcome: AuditOutcome | str = AuditOutcome.OK,
    ) -> None:
        """Record who did what (never a secret), in a transaction of its own."""
        await self.audit_log.write(chat_id, user_id, action, detail, outcome)
