"""Guided ``/connect`` dialogues in progress, kept in the database so any replica continues them.

A user answering the bot's prompt may reach another replica than the one that asked, so the
dialogue (the chat it is for, the fields still to ask, the values typed so far) is stored, not
kept in a process's memory. The values are secrets: the row is encrypted with the credential
cipher, like stored credentials, and deleted as soon as the dialogue ends, is cancelled or
times out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from providers.base import CredentialField
from providers.registry import REGISTRY
from storage.crypto import CredentialCipher, UndecryptableSecret
from storage.models import utcnow
from storage.repo import Repository


@dataclass(slots=True)
class PendingConnect:
    """A guided /connect in progress for one user (stored encrypted between its steps)."""

    chat_id: int
    chat_title: str
    provider: str
    fields: list[CredentialField]
    values: dict[str, str] = field(default_factory=dict)
    started: datetime = field(default_factory=utcnow)

    @property
    def current(self) -> CredentialField:
        """The field the bot is asking for."""
        return self.fields[0]


class Dialogues:
    """Stores, reads and ends users' guided dialogues."""

    def __init__(self, repo: Repository, cipher: CredentialCipher) -> None:
        self._repo = repo
        self._cipher = cipher

    async def put(self, user_id: int, pending: PendingConnect) -> None:
        """Store the dialogue as it is now (encrypted)."""
        data = self._cipher.encrypt(
            {
                "chat_id": str(pending.chat_id),
                "chat_title": pending.chat_title,
                "provider": pending.provider,
                "fields": json.dumps([f.key for f in pending.fields]),
                "values": json.dumps(pending.values),
            }
        )
        await self._repo.put_dialogue(user_id, data, started_at=pending.started)

    async def get(self, user_id: int) -> PendingConnect | None:
        """The user's dialogue in progress (None: none, or one no key can read any more)."""
        row = await self._repo.get_dialogue(user_id)
        if row is None:
            return None
        try:
            plain = self._cipher.decrypt(row.data)
        except UndecryptableSecret:
            await self._repo.drop_dialogue(user_id)
            return None
        spec = REGISTRY.get(plain["provider"])
        if spec is None:
            await self._repo.drop_dialogue(user_id)
            return None
        by_key = {f.key: f for f in spec.credentials}
        keys = json.loads(plain["fields"])
        return PendingConnect(
            int(plain["chat_id"]),
            plain["chat_title"],
            spec.name,
            [by_key[k] for k in keys if k in by_key],
            dict(json.loads(plain["values"])),
            row.started_at,
        )

    async def drop(self, user_id: int) -> bool:
        """End the user's dialogue; whether one was running."""
        return await self._repo.drop_dialogue(user_id)
