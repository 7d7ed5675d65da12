"""Message templates: a chat's named texts with placeholders (``/template add``)."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.db import Database
from storage.models import Template, utcnow


class TemplateStore:
    """Queries on templates."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self, chat_id: int) -> list[Template]:
        """The chat's templates by name."""
        async with self.db.read() as s:
            rows = await s.exec(
                select(Template)
                .where(col(Template.chat_id) == chat_id)
                .order_by(col(Template.name))
            )
            return list(rows)

    async def named(self, chat_id: int, name: str) -> Template | None:
        """The chat's template called ``name`` (stored lower-case)."""
        async with self.db.read() as s:
            return (
                await s.exec(
                    select(Template).where(
                        col(Template.chat_id) == chat_id, col(Template.name) == name
                    )
                )
            ).first()

    async def save(self, chat_id: int, name: str, text: str, *, actor: int) -> str | None:
        """Store a template, replacing one of the same name; returns the text it replaced."""
        for _ in range(2):  # a second try when the same name was added meanwhile
            try:
                async with self.db.write() as s:
                    row = (
                        await s.exec(
                            select(Template)
                            .where(col(Template.chat_id) == chat_id, col(Template.name) == name)
                            .with_for_update()
                        )
                    ).first()
                    if row is None:
                        s.add(Template(chat_id=chat_id, name=name, text=text, created_by=actor))
                        return None
                    old = row.text
                    row.text, row.created_by, row.updated_at = text, actor, utcnow()
                    return old
            except IntegrityError:
                continue
        raise RuntimeError(f"template {name!r} kept changing")

    async def delete(self, chat_id: int, name: str) -> bool:
        """Delete the chat's template called ``name``; whether there was one."""
        async with self.db.write() as s:
            result = await s.exec(
                delete(Template).where(
                    col(Template.chat_id) == chat_id, col(Template.name) == name
                )
            )
            return bool(result.rowcount)

    async def count(self, chat_id: int) -> int:
        """How many templates the chat has."""
        async with self.db.read() as s:
            found = await s.exec(
                select(func.count()).select_from(Template).where(col(Template.chat_id) == chat_id)
            )
            return int(found.one())
