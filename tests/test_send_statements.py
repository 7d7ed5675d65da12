"""A large send costs database statements per chunk, never per recipient.

A 1,000-number list sent to Parrotica (100 numbers a request: 10 chunks) through the real
Application: every statement the Send press makes is counted with SQLAlchemy's
``before_cursor_execute`` event. Storing the rows and their history, handing each chunk over
and recording the outcomes are a few statements each (executemany), so the count stays a
small multiple of the chunks; one statement per recipient (the ORM's row-at-a-time INSERT on
SQLite) would make it thousands. Counting, not timing: the same on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlmodel import col, func, select

from storage.models import Message, StatusEvent
from tests.confirm_support import confirm
from tests.conftest import Bot
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.lists_support import upload

RECIPIENTS = 1_000
CHUNKS = 10  # Parrotica takes 100 numbers a request
# A chunk: its hand-over, and at most one commit of outcomes (a few statements each); the
# send: storing the batch and its rows, the end of the send, its card. Per recipient: none.
PER_CHUNK = 12
PER_SEND = 60


@contextmanager
def counted(bot: Bot) -> Iterator[list[str]]:
    """Every SQL statement the bot's engine sends to the database meanwhile."""
    engine = bot.services.repo.db.engine.sync_engine
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def starting(statements: list[str], prefix: str) -> int:
    """How many of ``statements`` begin with ``prefix``."""
    return sum(s.lstrip().upper().startswith(prefix) for s in statements)


async def test_a_thousand_recipient_send_costs_statements_per_chunk(bot: Bot) -> None:
    assert "connected" in await bot.private(
        f"/connect parrotica api_key={DEFAULT_KEY} user_id={DEFAULT_USER}"
    )
    numbers = [f"62812{i:08d}" for i in range(RECIPIENTS)]
    assert "1,000" in await upload(bot, "all", "\n".join(["number", *numbers]).encode())
    assert "Send to 1,000 recipients?" in await bot.private("/send parrotica list:all Promo")

    with counted(bot) as statements:
        await confirm(bot)

    assert len(bot.parrotica.requests_to("messages", "POST")) == CHUNKS
    async with bot.services.repo.db.read() as s:
        accepted = await s.exec(
            select(func.count()).where(
                col(Message.state) == "accepted", col(Message.provider_ref).is_not(None)
            )
        )
        history = await s.exec(select(func.count()).select_from(StatusEvent))
        assert accepted.one() == RECIPIENTS
        assert history.one() == 2 * RECIPIENTS  # queued, then accepted: one row per change
    # The rows, their history rows and the outcomes' history rows: one executemany each
    # (a page of a multi-row INSERT counts once), never an INSERT per recipient.
    assert starting(statements, "INSERT INTO MESSAGE") <= 2
    assert starting(statements, "INSERT INTO STATUSEVENT") <= 2 + CHUNKS
    assert starting(statements, "UPDATE MESSAGE") <= 2 * CHUNKS + 2
    assert len(statements) <= PER_SEND + PER_CHUNK * CHUNKS, len(statements)
