"""A small in-memory copy of rows read on every update (chats, credentials).

Kept by a single process (SQLite), which owns the database: every write of these rows goes
through :class:`storage.repo.Repository`, which forgets the copy it changes. On PostgreSQL
another replica may write them, so the size is 0 there and nothing is kept. A read that was already
under way when a write forgot its key must not put the old row back: every ``forget`` moves a
generation counter on, and :meth:`RowCache.put` only keeps a value read in the current
generation.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_MISSING = object()


class RowCache(Generic[K, V]):
    """At most ``size`` rows by key, oldest dropped first; ``None`` is a cached "no row"."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._rows: dict[K, V | None] = {}
        self._generation = 0

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, row)`` when the key is cached (row may be None), else ``(False, None)``."""
        row = self._rows.get(key, _MISSING)
        if row is _MISSING:
            return False, None
        return True, row  # type: ignore[return-value]

    def generation(self) -> int:
        """Take this before reading the database; pass it to :meth:`put`."""
        return self._generation

    def put(self, key: K, row: V | None, generation: int) -> None:
        """Keep ``row`` unless something was forgotten since ``generation`` was taken."""
        if generation != self._generation or self._size <= 0:
            return
        if key not in self._rows and len(self._rows) >= self._size:
            self._rows.pop(next(iter(self._rows)))
        self._rows[key] = row

    def forget(self, key: K) -> None:
        """Drop one key (its row is being written)."""
        self._generation += 1
        self._rows.pop(key, None)

    def clear(self) -> None:
        """Drop everything."""
        self._generation += 1
        self._rows.clear()
