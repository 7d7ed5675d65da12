"""Recipient lists: a chat's named lists of numbers, loaded in chunks and published at once.

An upload never changes the list in use while it is being stored. Its numbers go into a new
:class:`~storage.models.RecipientList` row that is not ``ready``, a chunk per short write
transaction (other writers take their turn between chunks, and memory stays bounded by one
chunk); :meth:`ListStore.publish` then makes it the chat's list of that name and drops the
previous one in one small transaction. An upload that fails half-way, or a replacement
nobody confirms, leaves a row that is not ready: it is never read as a list and is deleted
by :meth:`ListStore.discard` or, once stale, :meth:`ListStore.discard_stale`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, update
from sqlmodel import col, select

from storage.db import Database
from storage.models import ListEntry, RecipientList, may_be_row_id, utcnow


@dataclass(frozen=True, slots=True)
class Entry:
    """One number of a list (E.164) and its row's other cells by column name."""

    number: str
    cells: Mapping[str, str] | None = None


class ListChanged(Exception):
    """A list was replaced or deleted while its numbers were being read."""


class ListStore:
    """Queries on recipient lists and their entries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ready(self, chat_id: int) -> list[RecipientList]:
        """The chat's lists in use, by name."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(RecipientList)
                .where(col(RecipientList.chat_id) == chat_id, col(RecipientList.ready))
                .order_by(col(RecipientList.name))
            )
            return list(rows)

    async def named(self, chat_id: int, name: str) -> RecipientList | None:
        """The chat's list in use called ``name`` (stored lower-case)."""
        async with self.db.read() as s:
            return (
                await s.exec(
                    select(RecipientList).where(
                        col(RecipientList.chat_id) == chat_id,
                        col(RecipientList.name) == name,
                        col(RecipientList.ready),
                    )
                )
            ).first()

    async def get(self, list_id: int) -> RecipientList | None:
        """One list row by id, ready or not."""
        if not may_be_row_id(list_id):
            return None
        async with self.db.read() as s:
            return await s.get(RecipientList, list_id)

    async def entries(self, row: RecipientList) -> list[Entry]:
        """Every number of a list in file order.

        Raises:
            ListChanged: the list was replaced or deleted meanwhile (fewer rows than its size).

        """
        async with self.db.read() as s:
            found = await s.exec(
                select(ListEntry.number, ListEntry.cells)
                .where(col(ListEntry.list_id) == row.id)
                .order_by(col(ListEntry.id))
            )
            entries = [Entry(number, cells) for number, cells in found]
        if len(entries) != row.size:
            raise ListChanged(row.name)
        return entries

    # -- loading -----------------------------------------------------------------------------

    async def begin(self, chat_id: int, name: str, *, file_name: str, actor: int) -> int:
        """A new, not yet ready list row for an upload; returns its id."""
        async with self.db.write() as s:
            row = RecipientList(
                chat_id=chat_id, name=name, file_name=file_name, created_by=actor, ready=False
            )
            s.add(row)
            await s.flush()
            assert row.id is not None
            return row.id

    async def add_entries(self, list_id: int, entries: Sequence[Entry]) -> None:
        """Store one chunk of an upload's numbers (one short transaction, one bulk insert)."""
        if not entries:
            return
        async with self.db.write() as s:
            await s.exec(
                insert(ListEntry),
                params=[
                    {"list_id": list_id, "number": e.number, "cells": dict(e.cells or {}) or None}
                    for e in entries
                ],
            )

    async def loaded(self, list_id: int, *, size: int, columns: Sequence[str]) -> None:
        """Record an upload's count and columns once all of its numbers are stored."""
        async with self.db.write() as s:
            await s.exec(
                update(RecipientList)
                .where(col(RecipientList.id) == list_id)
                .values(size=size, columns=list(columns), updated_at=utcnow())
            )

    async def publish(self, list_id: int) -> bool:
        """Make a loaded upload the chat's list of its name, dropping the one it replaces.

        Whether this call published it (False: it is gone, or was published already).
        """
        async with self.db.write() as s:
            row = await s.get(RecipientList, list_id, with_for_update=True)
            if row is None or row.ready:
                return False
            await s.exec(
                delete(RecipientList).where(
                    col(RecipientList.chat_id) == row.chat_id,
                    col(RecipientList.name) == row.name,
                    col(RecipientList.id) != list_id,
                    col(RecipientList.ready),
                )
            )
            row.ready, row.updated_at = True, utcnow()
            return True

    async def discard(self, list_id: int) -> None:
        """Forget an upload that will not be used (its numbers go with it)."""
        async with self.db.write() as s:
            await s.exec(
                delete(RecipientList).where(
                    col(RecipientList.id) == list_id, ~col(RecipientList.ready)
                )
            )

    async def discard_stale(self, before: datetime) -> int:
        """Forget uploads left unfinished or unconfirmed since before ``before``; how many."""
        async with self.db.write() as s:
            result = await s.exec(
                delete(RecipientList).where(
                    ~col(RecipientList.ready), col(RecipientList.created_at) < before
                )
            )
            return int(result.rowcount or 0)

    async def delete(self, chat_id: int, name: str) -> RecipientList | None:
        """Delete the chat's list called ``name``; the row it was, or None."""
        async with self.db.write() as s:
            row = (
                await s.exec(
                    select(RecipientList)
                    .where(
                        col(RecipientList.chat_id) == chat_id,
                        col(RecipientList.name) == name,
                        col(RecipientList.ready),
                    )
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None
            await s.delete(row)
            return row

    async def count(self, chat_id: int) -> int:
        """How many lists the chat has in use."""
        async with self.db.read() as s:
            found = await s.exec(
                select(func.count())
                .select_from(RecipientList)
                .where(col(RecipientList.chat_id) == chat_id, col(RecipientList.ready))
            )
            return int(found.one())
