"""Taking updates from Telegram without losing one to a crash: polling, webhooks and replay.

Telegram forgets an update once the bot confirms it: in polling mode the next ``getUpdates``
with a higher offset confirms everything before it, in webhook mode the 200 answer does. A
process killed after that but before a ``/send`` stored its batch would lose the command
without a word. So every update goes into the inbox (:mod:`storage.inbox`) first:

- :class:`Poller` (polling mode, instead of PTB's ``Updater``) stores each ``getUpdates``
  batch in one transaction before the next ``getUpdates`` call, and only then hands the
  updates to ``application.update_queue``; while the database cannot store them it takes no
  more, so Telegram keeps them;
- the webhook (:mod:`bot.webhooks`) stores an update before answering 200, and answers 500
  (Telegram sends it again) when it cannot;
- :class:`bot.context.BotApplication` deletes an update's row once it was handled;
- :func:`replay` puts the rows left by a crash or a stop back on the update queue at start,
  before new updates are taken. Handling an update twice is safe where it matters: ``/send``
  and ``/schedule`` find the batch their message already stored (its origin is the chat and
  message id) and the outbox gives it one card; other commands at worst answer twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta

from telegram import Update
from telegram.constants import ChatType
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.context import BotApplication
from bot.handlers.connect import carries_credentials
from bot.tracking.updater import retry_seconds
from storage.inbox import Inbox

log = logging.getLogger(__name__)

POLL_TIMEOUT = timedelta(seconds=10)  # how long Telegram holds a getUpdates open when idle
MAX_QUEUED = 500  # updates waiting for a handler before polling pauses (Telegram keeps them)
RETRY_FIRST = 1.0  # seconds before the first retry after a network or database error
RETRY_MAX = 30.0


def may_store(update: Update) -> bool:
    """Whether an update may be copied into the inbox: never one that may hold a credential.

    A message carrying credentials (``/connect <provider> k=v``, ``api_key=…`` anywhere) and a
    plain text in a private chat (it may answer a credential prompt of the guided /connect,
    whose dialogue lives in memory and would not survive a crash anyway) are handed on
    without a copy: the database never sees them, and a crash loses them as before.
    """
    if update.inline_query is not None:
        return False  # its answer is only wanted now: a replay would answer an expired query
    message = update.message or update.edited_message
    if message is None:
        return True
    text = message.text or message.caption or ""
    if carries_credentials(text):
        return False
    return not (message.chat.type == ChatType.PRIVATE and text and not text.startswith("/"))


def stored_form(update: Update) -> tuple[int, str]:
    """What the inbox keeps of an update: its id and its JSON."""
    return update.update_id, update.to_json()


def inbox_of(app: BotApplication) -> Inbox:
    """The application's inbox (available once ``post_init`` ran)."""
    services = app.bot_data.services
    if services is None:
        raise RuntimeError("the inbox is not open: post_init has not run")
    return services.repo.inbox


async def hand_on(app: BotApplication, update: Update) -> None:
    """Give an update to the application's handlers, as PTB's own updater would."""
    if isinstance(app.bot, ExtBot):
        app.bot.insert_callback_data(update)  # arbitrary callback data, when switched on
    await app.update_queue.put(update)


async def replay(app: BotApplication) -> int | None:
    """At start: queue the updates a crash or a stop left unhandled, oldest first.

    Returns the highest update id replayed (None: there were none), so polling can confirm
    them to Telegram instead of taking them a second time.
    """
    inbox = inbox_of(app)
    rows = await inbox.pending()
    for row in rows:
        try:
            update = Update.de_json(json.loads(row.data), app.bot)
        except (ValueError, TypeError, KeyError):  # never handled, so never forgotten: drop it
            log.warning("dropped the unreadable stored update %s", row.update_id)
            await inbox.done(row.update_id)
            continue
        await hand_on(app, update)
    if rows:
        log.warning("replaying %d updates a stop or a crash left unhandled", len(rows))
        return rows[-1].update_id
    return None


class Poller:
    """Polling mode: ``getUpdates`` in a loop, each batch stored before it is confirmed."""

    def __init__(
        self,
        app: BotApplication,
        *,
        timeout: timedelta | None = None,
        max_queued: int = MAX_QUEUED,
        last_update_id: int | None = None,
    ) -> None:
        self._app = app
        self._timeout = timeout or POLL_TIMEOUT
        self._max_queued = max_queued
        # The next getUpdates' offset: one past the last update stored (None: whatever
        # Telegram has). Starting past the replayed ones confirms them without a second copy.
        self.offset = None if last_update_id is None else last_update_id + 1

    async def run(self) -> None:
        """Take updates until cancelled; Telegram refusing the token or a second poller ends it.

        Raises ``InvalidToken`` or ``Conflict`` (another process polls with this token): the
        bot cannot work on, and ``python -m bot`` exits with the reason.
        """
        delay = 0.0
        while True:
            # Bounded: what the handlers have not caught up with stays at Telegram.
            # (asyncio.Queue has no "fewer than n" event to wait on; a pause is rare.)
            while self._app.update_queue.qsize() >= self._max_queued:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            try:
                updates = await self._app.bot.get_updates(
                    offset=self.offset, timeout=self._timeout, allowed_updates=Update.ALL_TYPES
                )
            except (InvalidToken, Conflict):
                raise
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except TimedOut:  # a long poll that outlived its read timeout: ask again
                continue
            except Exception as exc:  # the network, or an answer PTB could not read
                delay = min(RETRY_MAX, delay * 2 or RETRY_FIRST)
                reason = exc.message if isinstance(exc, TelegramError) else type(exc).__name__
                log.warning("could not get updates (%s); retrying in %.0f s", reason, delay)
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            if not updates:
                continue
            kept = [update for update in updates if may_store(update)]
            fresh = set(await self._store(kept))
            self.offset = updates[-1].update_id + 1  # stored: the next call may confirm them
            for update in updates:
                # One already stored is being handled, or was replayed at start.
                if update.update_id in fresh or not may_store(update):
                    await hand_on(self._app, update)

    async def _store(self, updates: list[Update]) -> list[int]:
        """Store a batch, however long the database takes: nothing is confirmed before."""
        inbox = inbox_of(self._app)
        delay = RETRY_FIRST
        while True:
            try:
                return await inbox.add([stored_form(update) for update in updates])
            except Exception:
                log.exception(
                    "could not store %d updates; taking no more until the database "
                    "answers (retrying in %.0f s)",
                    len(updates),
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    async def confirm(self) -> None:
        """At a clean stop: tell Telegram every stored update arrived (no long poll).

        Without it, the next start would take the handled ones again from Telegram.
        """
        if self.offset is None:
            return
        with contextlib.suppress(TelegramError):
            await self._app.bot.get_updates(
                offset=self.offset,
                timeout=timedelta(0),
                limit=1,  # the answer is not needed, only the offset
                allowed_updates=Update.ALL_TYPES,
            )
