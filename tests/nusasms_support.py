"""Helpers shared by the NusaSMS feature tests (SMS, media, /check, rate limits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlmodel import col, select

from storage.models import Message, PhoneCheck
from tests.conftest import NUSA_KEY, USER, Bot
from tests.fakes.nusasms import FakeNusaSms

SMS_LOGIN = "sms_user=sms-user sms_password=sms-password"


async def connect_sms(bot: Bot, user_id: int = USER) -> None:
    """Connect NusaSMS with the WhatsApp key and the SMS login in the user's private chat."""
    reply = await bot.private(f"/connect nusasms api_key={NUSA_KEY} {SMS_LOGIN}", user_id=user_id)
    assert "connected" in reply, reply


async def stored_messages(bot: Bot) -> list[Message]:
    """Every message row, oldest first."""
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(Message).order_by(col(Message.id))))


async def stored_checks(bot: Bot) -> list[PhoneCheck]:
    """Every phone-check row, oldest first."""
    async with bot.services.repo.db.read() as s:
        return list(await s.exec(select(PhoneCheck).order_by(col(PhoneCheck.id))))


class HookedFake(FakeNusaSms):
    """The NusaSMS fake with a hook that sees (and may answer) each request first."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hook: Callable[[httpx.Request], httpx.Response | None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.hook is not None:
            answer = self.hook(request)
            if answer is not None:
                self.requests.append(request)
                return answer
        return super().__call__(request)
