"""The provider accounts' pace shared by several replicas: in Redis, or in PostgreSQL.

Both keep, per account key (a hash, never a credential), the moment of the last request
reserved by any replica, on the *server's* clock, and hand out the next one atomically: at
least ``interval`` after it and no earlier than the moment the asking replica chose
(:class:`providers.ratelimit.SharedPace`). Redis does it in one Lua script (``TIME``, ``GET``,
``SET``); PostgreSQL in one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on the
``rateslot`` table, on a connection of its own (it does not queue behind the process's
writers). Redis is the lighter choice when it is there (no database round trip per provider
request, no row lock); without ``REDIS_URL`` the database the replicas already share is used.
A single SQLite process paces in memory only.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Float, cast, func
from sqlalchemy.dialects import postgresql

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
    """The shared pace in the ``rateslot`` table (PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.active = True  # the bot clears it while no other replica runs

    async def reserve(self, key: str, interval: float, earliest: float) -> float:
        """See :class:`providers.ratelimit.SharedPace`."""
        now = cast(func.extract("epoch", func.statement_timestamp()), Float)
        insert = postgresql.insert(RateSlot).values(key=key, free_at=now + earliest)
        statement = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={"free_at": func.greatest(RateSlot.free_at + interval, insert.excluded.free_at)},
        ).returning(RateSlot.free_at - now)
        async with self.db.engine.begin() as conn:
            wait = (await conn.execute(statement)).scalar_one()
        return max(0.0, float(wait))

    async def close(self) -> None:
        """Nothing of its own to close (the engine is the application's)."""


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
        return max(0.0, float(wait))

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
