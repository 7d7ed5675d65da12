"""The provider accounts' pace shared by several replicas: in Redis, or in PostgreSQL.

Both keep, per account key (a hash, never a credential), the moment of the last request
reserved by any replica, on the *server's* clock, and hand out the next one atomically: at
least ``interval`` after it and no earlier than the moment the asking replica chose
(:class:`providers.ratelimit.SharedPace`). The answer is how long until that moment, with the
server's clock read as late as it can be, so the replica counts it from the answer's arrival
and is never early. Redis does it in one Lua script (``TIME``, ``GET``, ``SET``); PostgreSQL
in one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on the ``rateslot`` table, on
connections of its own (it does not queue behind the process's writers, and its commits do
not wait for the disk). Redis is the lighter choice when it is there (no database round trip
per provider request, no row lock); without ``REDIS_URL`` the database the replicas already
share is used. A single SQLite process paces in memory only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Float, cast, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.db import Database
from storage.models import RateSlot

REDIS_PREFIX = "chatops:pace:"
KEEP_SECONDS = 3600  # an account idle this long starts afresh

# KEYS[1]: the account; ARGV: interval, earliest (seconds). Returns seconds until the slot.
RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local at = now + tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last + tonumber(ARGV[1]) > at then at = last + tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], string.format('%.6f', at), 'EX', ARGV[3])
return string.format('%.6f', at - now)
"""


class DatabasePace:
    """The shared pace in the ``rateslot`` table (PostgreSQL), on connections of its own.

    A reservation is on the way of every provider request: it does not wait for a pooled
    connection the process's writers hold, nor for the disk at its commit
    (``synchronous_commit`` off for these connections only). What a database crash can lose
    is the last moment handed out, i.e. at worst one request too early: a 429, retried.
    """

    def __init__(self, db: Database) -> None:
        self.engine: AsyncEngine = create_async_engine(
            db.engine.url,
            pool_size=2,
            # One statement, one round trip: no BEGIN and COMMIT around it, and no ping
            # before it (a connection the server closed fails one reservation, which the
            # pacer survives: see ``SlotPacer._reserve``, and is replaced).
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": {"synchronous_commit": "off"}},
        )
        self.active = True  # the bot clears it while no other replica runs

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        """See :class:`providers.ratelimit.SharedPace`."""
        # clock_timestamp(), not the statement's start: read when RETURNING is computed,
        # after any wait for the row's lock, so the wait returned is counted from the answer.
        now = cast(func.extract("epoch", func.clock_timestamp()), Float)
        insert = postgresql.insert(RateSlot).values(key=key, free_at=now + earliest)
        statement = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={"free_at": func.greatest(RateSlot.free_at + interval, insert.excluded.free_at)},
        ).returning(RateSlot.free_at - now)
        loop = asyncio.get_running_loop()
        async with self.engine.connect() as conn:
            wait = (await conn.execute(statement)).scalar_one()
            answered = loop.time()
        # Counted from now: handing the connection back took a little of the wait.
        return float(wait) - (loop.time() - answered)  # negative: the moment passed

    async def close(self) -> None:
        """Close its connections."""
        await self.engine.dispose()


class RedisPace:
    """The shared pace in Redis (``REDIS_URL``)."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.active = True  # the bot clears it while no other replica runs
        self._reserve: Any = client.register_script(RESERVE_LUA)

    @classmethod
    def from_url(cls, url: str) -> RedisPace:
        """A client for ``url`` (``redis://host:6379/0``); connects on first use."""
        return cls(Redis.from_url(url))

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        """See :class:`providers.ratelimit.SharedPace`."""
        wait = await self._reserve(
            keys=[REDIS_PREFIX + key], args=[interval, earliest, KEEP_SECONDS]
        )
        return float(wait)  # negative: the moment passed meanwhile

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
