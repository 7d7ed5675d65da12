"""Killing the real bot process (``python -m bot``) at random points, and restarting it.

:class:`BotProcess` starts the bot against the fake servers and waits until it is ready.
:class:`Killer` decides, from a seeded random generator, when each life of the process ends:
at the n-th provider send request (before the provider acts, or after it acted and before
the answer), at the n-th card post or edit reaching the fake Bot API (before Telegram saw it),
or a random 0–250 ms after one of those. It then SIGKILLs the process and starts a new one.

One window is never chosen, and it is the one a bot cannot close: Telegram accepted a new
message (a card) and the bot has not yet committed its message id (``set_card``, about a
millisecond). The Bot API has no idempotent send, so a kill there makes the restarted bot post
that card again; ``bot/tracking/updater.py`` documents it. To keep random kills out of it, a
kill first holds every new ``sendMessage`` at the fake's door and waits until every card and
notice Telegram accepted is recorded in the database (``Killer.placed`` counts kills that had
to wait, ``unplaced`` those that gave up waiting); everything else in the bot keeps running
meanwhile, so the kill still lands at a random point of the send path.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlmodel import col, select

from storage.db import Database
from storage.models import Batch, OutboxEntry
from tests.e2e_support import spawn_bot
from tests.fakes.bot_api_server import BotApiServer
from tests.fakes.telegram import Call

# A new chat message the outbox owes (a card, a failure notice, a text about a schedule).
OWED = re.compile(r"(?m)^Send \d+ via |ended without delivery|^(?:⚠️|⌛) Scheduled send #")
MODES = ("provider-before", "provider-after", "telegram-before", "delayed")
POSTS = ("sendMessage", "editMessageText")


class BotProcess:
    """``python -m bot`` in ``cwd`` with ``env``; its output appended to ``log_path``."""

    def __init__(
        self, server: BotApiServer, env: dict[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.server = server
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a deadline
        """Start a new process; returns once it published its commands (it is polling)."""
        mark = self.server.state.mark()
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = await spawn_bot(self.cwd, self.env, self._log)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while len([c for c in self.server.state.calls[mark:] if c.method == "setMyCommands"]) < 2:
            if not self.alive:
                raise AssertionError(f"the bot exited at start:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot was not ready within {timeout} s:\n{self.tail()}")
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind; returns once the process is gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int:
        """SIGINT (a clean stop); the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        self.close_log()
        return code

    def close_log(self) -> None:
        """Close the log file (the process is gone; a later start opens it again)."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True, slots=True)
class Kill:
    """One kill: what triggered it, and whether it had to wait to stay out of the window."""

    trigger: str
    waited: float  # seconds the kill waited for accepted cards to be recorded
    placed: bool


class Killer:
    """Ends each life of the bot at a random point (seeded), then starts the next one."""

    def __init__(
        self,
        bot: BotProcess,
        db: Database,
        *,
        seed: int,
        kills: int,
        events: tuple[int, int] = (3, 30),
    ) -> None:
        self.bot = bot
        self.db = db
        self.rng = random.Random(seed)
        self.target = kills
        self.events = events
        self.kills: list[Kill] = []
        self.last_kill = 0.0  # time.monotonic(): calls that arrived before are the dead's
        self._gate = asyncio.Event()
        self._gate.set()
        self._armed = False
        self._mode = ""
        self._countdown = 0
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._owed: set[tuple[int, int]] = set()
        self._scanned = 0

    @property
    def done(self) -> bool:
        return len(self.kills) >= self.target and not self._busy

    def arm(self) -> None:
        """Plan the end of the current life."""
        if len(self.kills) >= self.target:
            self._armed = False
            return
        self._mode = self.rng.choice(MODES)
        self._countdown = self.rng.randint(*self.events)
        self._armed = True

    async def settle(self) -> None:
        """Wait for the restart a kill started."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # -- hooks of the fake servers -------------------------------------------------------------

    async def provider_send(self, *, acted: bool) -> bool:
        """A send request is at the provider (``acted``: carried out). True: hang up, killed."""
        return await self._event("provider-after" if acted else "provider-before")

    async def before_call(self, method: str, params: dict[str, Any], arrived: float) -> bool:
        """The fake Bot API's hook: False hangs up (the call never reached Telegram)."""
        if method == "getUpdates":
            return True
        if arrived < self.last_kill:
            return False  # sent by a process that is dead now: nobody reads the answer
        if method == "sendMessage":
            await self._gate.wait()
            if arrived < self.last_kill:
                return False
        return not (method in POSTS and await self._event("telegram-before"))

    # -- internals ---------------------------------------------------------------------------

    async def _event(self, kind: str) -> bool:
        if not self._armed or self._busy or not self.bot.alive:
            return False
        if self._mode not in (kind, "delayed"):
            return False
        self._countdown -= 1
        if self._countdown > 0:
            return False
        if self._mode == "delayed":
            self._armed = False
            self._spawn(self._kill_later(self.rng.uniform(0.0, 0.25)))
            return False
        await self._kill(kind)
        return True

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _kill_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._kill(f"delayed {delay * 1000:.0f} ms")

    async def _kill(self, trigger: str) -> None:
        if self._busy or not self.bot.alive:
            return
        self._busy, self._armed = True, False
        self._gate.clear()  # no new message reaches Telegram while the kill is placed
        try:
            waited, placed = await self._wait_recorded()
            await self.bot.kill()
            self.last_kill = time.monotonic()
            self.kills.append(Kill(trigger, waited, placed))
        finally:
            self._gate.set()
        self._spawn(self._restart())

    async def _restart(self) -> None:
        try:
            await self.bot.start()
        finally:
            self._busy = False
        self.arm()

    async def _wait_recorded(self, timeout: float = 5.0) -> tuple[float, bool]:  # noqa: ASYNC109
        """Wait until every card or notice Telegram accepted has its message id stored."""
        start = time.monotonic()
        while True:
            self._scan(self.bot.server.state.calls)
            if self._owed:
                await self._forget_recorded()
            waited = time.monotonic() - start
            if not self._owed:
                return waited, True
            if waited > timeout:
                return waited, False
            await asyncio.sleep(0.002)

    def _scan(self, calls: list[Call]) -> None:
        for call in calls[self._scanned :]:
            if call.method == "sendMessage" and call.ok and OWED.search(call.result["text"]):
                self._owed.add((call.result["chat"]["id"], call.result["message_id"]))
        self._scanned = len(calls)

    async def _forget_recorded(self) -> None:
        async with self.db.read() as s:
            cards = await s.exec(
                select(Batch.chat_id, Batch.card_message_id).where(
                    col(Batch.card_message_id).is_not(None)
                )
            )
            told = await s.exec(
                select(OutboxEntry.chat_id, OutboxEntry.message_id).where(
                    col(OutboxEntry.message_id).is_not(None)
                )
            )
            found = {(int(c), int(m)) for c, m in cards if m is not None}
            found |= {(int(c), int(m)) for c, m in told if m is not None}
        self._owed -= found
