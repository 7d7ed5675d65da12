"""Replicas: the bot processes running on one database, their heartbeats and their leftovers.

Each process is a replica with a random id (:func:`new_replica_id`), written to the
``replica`` table at start and refreshed every ``REPLICA_HEARTBEAT_SECONDS``. Work in flight
is *owned*: a message (its send and its status polls), an outbox entry (what a chat is still
told) and an inbox row (a Telegram update being handled) carry the id of the replica that
wrote them, and a schedule's claim names its replica in ``claimed_by``. A replica touches only
its own rows and the rows of replicas that are **gone** (:class:`Gone`): dead and not taken
over by a live replica yet. Dead means stopped, not seen for ``REPLICA_DEAD_SECONDS``, or a
process of this host that no longer exists (so a restart after a crash takes its leftovers at
once instead of waiting out the expiry).

SQLite is one process by definition (the embedded database): every other replica is gone.

Sweeps that look at everyone's rows (expiring messages, looking up lost sends, retention)
run on one replica at a time, the oldest live one (:meth:`Replicas.sweeps`), so a lost send
is looked up once, not once per replica.

Taking over is claimed first (:meth:`Replicas.adopt`, one conditional ``UPDATE``), so one live
replica adopts each dead one; if the adopter dies as well, its adoption no longer counts and
the next live replica adopts both.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, false, or_, update
from sqlmodel import col, select

from storage.db import Database
from storage.models import Replica, utcnow

Clock = Callable[[], datetime]


def new_replica_id() -> str:
    """A fresh id for this process: host, pid and a random part (readable in logs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 only checks)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True, slots=True)
class Gone:
    """Whose work this replica may take over: the gone replicas (and ownerless rows).

    Attributes:
        me: this replica.
        ids: replicas that are dead and not adopted by a live one.
        anyone_else: every owner but ``me`` (a single-process database).
        ownerless: rows with no owner (written before replicas existed), taken at start.

    """

    me: str
    ids: frozenset[str] = frozenset()
    anyone_else: bool = False
    ownerless: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to take over."""
        return not (self.ids or self.anyone_else or self.ownerless)

    def covers(self, owner: str | None) -> bool:
        """Whether work owned by ``owner`` may be taken over."""
        if owner is None:
            return self.ownerless or self.anyone_else
        if owner == self.me:
            return False
        return self.anyone_else or owner in self.ids

    def where(self, owner: ColumnElement[str | None] | object) -> ColumnElement[bool]:
        """The SQL condition ``owner`` (a column) names a gone replica (or none)."""
        column = col(owner)
        if self.anyone_else:
            return or_(column.is_(None), column != self.me)
        terms: list[ColumnElement[bool]] = []
        if self.ownerless:
            terms.append(column.is_(None))
        if self.ids:
            terms.append(column.in_(sorted(self.ids)))
        return or_(*terms) if terms else false()


class Replicas:
    """The heartbeat row of this replica, and what the table says about the others."""

    def __init__(
        self,
        db: Database,
        *,
        me: str,
        dead_after: timedelta,
        clock: Clock = utcnow,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.db = db
        self.me = me
        self.dead_after = dead_after
        self.clock = clock
        self.host = socket.gethostname() if host is None else host
        self.pid = os.getpid() if pid is None else pid
        # SQLite is the embedded, single-process database: nobody else can be alive on it.
        self.single_process = db.dialect == "sqlite"
        self._registered = False

    async def register(self) -> None:
        """Write this replica's row (at start, before any work is owned)."""
        now = self.clock()
        async with self.db.write() as s:
            s.add(Replica(id=self.me, host=self.host, pid=self.pid, started_at=now, seen_at=now))
        self._registered = True

    async def beat(self) -> bool:
        """Refresh the heartbeat; False when the row is gone or marked stopped."""
        async with self.db.write() as s:
            result = await s.exec(
                update(Replica)
                .where(col(Replica.id) == self.me, col(Replica.stopped_at).is_(None))
                .values(seen_at=self.clock())
            )
            return result.rowcount == 1

    async def stop(self) -> None:
        """A clean stop: the replica is dead at once, so its leftovers go without waiting."""
        async with self.db.write() as s:
            await s.exec(
                update(Replica).where(col(Replica.id) == self.me).values(stopped_at=self.clock())
            )

    async def rows(self) -> list[Replica]:
        """Every replica the table knows, oldest first."""
        async with self.db.read() as s:
            return list(await s.exec(select(Replica).order_by(col(Replica.started_at))))

    def is_dead(self, row: Replica, now: datetime) -> bool:
        """Whether ``row``'s process is over (never true of this replica)."""
        if row.id == self.me:
            return False
        if self.single_process or row.stopped_at is not None:
            return True
        if now - row.seen_at > self.dead_after:
            return True
        # A process of this host that no longer runs (or this very process, restarted in
        # place, as a container's pid 1 is) is dead without waiting for its expiry.
        if row.host != self.host:
            return False
        return (self._registered and row.pid == self.pid) or not process_alive(row.pid)

    async def live(self) -> list[Replica]:
        """The live replicas, this one included, oldest first."""
        now = self.clock()
        return [row for row in await self.rows() if not self.is_dead(row, now)]

    async def sweeps(self) -> bool:
        """Whether this replica runs the sweeps (expiry, lost-send lookups, retention) now.

        The sweeper is the oldest live replica (started first, then the lowest id): every
        replica reads the same table, so one of them sweeps at a time, and a replica started
        later never takes the job from a running sweeper. When it dies, the next oldest
        sweeps from its next round on. A single process always sweeps.
        """
        if self.single_process:
            return True
        live = await self.live()
        return bool(live) and min(live, key=lambda r: (r.started_at, r.id)).id == self.me

    async def count_live(self) -> int:
        """How many replicas are alive (``chatops_replicas_alive`` at each scrape)."""
        return len(await self.live())

    async def gone(self, *, ownerless: bool = False) -> Gone:
        """The dead replicas whose work is not in a live replica's hands."""
        if self.single_process:
            return Gone(self.me, anyone_else=True)
        now = self.clock()
        rows = await self.rows()
        dead = {row.id for row in rows if self.is_dead(row, now)}
        ids = frozenset(
            row.id
            for row in rows
            if row.id in dead and (row.adopted_by is None or row.adopted_by in dead)
        )
        return Gone(self.me, ids, ownerless=ownerless)

    async def adopt(self, replica_id: str, gone: Gone) -> bool:
        """Become the one replica taking over ``replica_id``; False when another was first."""
        adopter = col(Replica.adopted_by)
        free: ColumnElement[bool] = adopter.is_(None)
        if gone.ids:
            free = or_(free, adopter.in_(sorted(gone.ids)))
        async with self.db.write() as s:
            result = await s.exec(
                update(Replica)
                .where(and_(col(Replica.id) == replica_id, free))
                .values(adopted_by=self.me, adopted_at=self.clock())
            )
            return result.rowcount == 1
