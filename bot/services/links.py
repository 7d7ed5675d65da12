"""One-time deep links that let a group admin enter a group's credentials in private."""

from __future__ import annotations

import secrets
from datetime import timedelta

from bot.services.errors import BadInput
from i18n import N_, _
from storage.models import ConnectToken, utcnow
from storage.repo import Repository

LIFETIME = timedelta(minutes=15)
_EXPIRED = N_("This link has expired or was used already. Run /connect in the group.")


class ConnectLinks:
    """Issues and redeems the tokens behind ``/connect`` buttons in groups."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def issue(self, chat_id: int, provider: str, *, actor: int) -> str:
        """A new token for ``provider`` in the group ``chat_id``, valid once for LIFETIME."""
        token = secrets.token_urlsafe(16)
        await self._repo.add_connect_token(
            ConnectToken(
                token=token,
                chat_id=chat_id,
                provider=provider,
                created_by=actor,
                expires_at=utcnow() + LIFETIME,
            )
        )
        return token

    async def peek(self, token: str) -> ConnectToken:
        """The token, still unused and unexpired (nothing is changed), or ``BadInput``."""
        found = await self._repo.get_connect_token(token)
        if found is None or found.used_at is not None or found.expires_at <= utcnow():
            raise BadInput(_(_EXPIRED))
        return found

    async def redeem(self, token: str) -> ConnectToken:
        """Use the token once; ``BadInput`` when it was used or expired meanwhile."""
        taken = await self._repo.take_connect_token(token)
        if taken is None:
            raise BadInput(_(_EXPIRED))
        return taken
