"""Recipient lists: ``/list add`` from a file, replacing with a confirmation, ``/lists``, delete.

A list belongs to its chat and is named ``[a-z0-9_-]`` (case-insensitive). An upload is read
with :class:`~bot.services.list_files.ListReader` and stored chunk by chunk into a row that is
not in use yet (:mod:`storage.lists`). A new name is published at once; a name in use is
replaced only after a Replace press: until then the upload waits, stored, behind a
:class:`~storage.models.Confirmation` of kind :data:`KIND`, so the question survives a
restart and a double press publishes it once. Keep (or no answer within :data:`REPLACE_TTL`)
drops it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from html import escape

from bot.services.errors import BadInput, echo
from bot.services.list_files import ListReader, Problems, check_file
from bot.services.names import read_name
from i18n import N_, _
from storage.confirmations import Confirmations
from storage.lists import Entry, ListChanged, ListStore
from storage.models import Chat, ConfirmationState, RecipientList, utcnow
from storage.repo import Repository

KIND = "list-replace"
REPLACE_TTL = timedelta(hours=1)
# An upload neither published nor discarded (the bot stopped while storing it) is dropped
# once it is older than this; an unanswered replacement never lasts this long.
STALE_AFTER = REPLACE_TTL + timedelta(hours=1)
MAX_LISTS = 50  # per chat


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What an upload found: numbers stored, columns kept, invalid and duplicate lines."""

    name: str
    stored: int
    lines: int
    columns: tuple[str, ...]
    invalid: Problems
    duplicates: Problems
    needs_country: bool


@dataclass(frozen=True, slots=True)
class Upload:
    """A stored upload: in use (``replaces`` None), or waiting for Replace / Keep."""

    report: UploadReport
    replaces: RecipientList | None = None
    confirmation_id: int | None = None


class Decision(StrEnum):
    """What a Replace / Keep press did."""

    REPLACED = "replaced"
    KEPT = "kept"
    ALREADY_REPLACED = "already replaced"  # i18n: not shown
    ALREADY_KEPT = "already kept"  # i18n: not shown


@dataclass(frozen=True, slots=True)
class Decided:
    """The outcome of a press, with the list's name and sizes for the reply."""

    decision: Decision
    name: str
    size: int
    old_size: int


class RecipientLists:
    """The list use-cases of a chat."""

    def __init__(self, store: ListStore, confirmations: Confirmations, repo: Repository) -> None:
        self.store = store
        self._confirmations = confirmations
        self._repo = repo

    async def check_upload(
        self,
        chat_id: int,
        raw_name: str,
        *,
        file_name: str | None,
        mime_type: str | None,
        size: int | None,
    ) -> str:
        """Everything that can be refused before the download; returns the list's name.

        Raises:
            BadInput: a bad name, a file that is not a list, or too many lists.

        """
        name = read_name(raw_name, what="list")
        check_file(file_name, mime_type, size)
        new = await self.store.named(chat_id, name) is None
        if new and await self.store.count(chat_id) >= MAX_LISTS:
            raise BadInput(
                _(
                    "This chat has {limit} lists, the most it may keep; delete one with "
                    "/list del &lt;name&gt; first."
                ).format(limit=MAX_LISTS)
            )
        return name

    async def upload(
        self, chat: Chat, name: str, *, file_name: str, data: bytes, actor: int
    ) -> Upload:
        """Store a file's numbers as the list ``name`` (or as its replacement, to confirm).

        Raises:
            BadInput: the file cannot be read as a list, or holds no valid number.

        """
        await self.store.discard_stale(utcnow() - STALE_AFTER)
        reader = ListReader(data, country=chat.country)
        shown_name = file_name.replace("\x00", "")[:255]  # kept for the record only
        list_id = await self.store.begin(chat.id, name, file_name=shown_name, actor=actor)
        try:
            for chunk in reader.chunks():
                await self.store.add_entries(list_id, chunk)
            report = UploadReport(
                name,
                reader.stored,
                reader.lines,
                tuple(reader.columns),
                reader.invalid,
                reader.duplicates,
                reader.needs_country,
            )
            if not reader.stored:
                raise BadInput(no_numbers(report))
            await self.store.loaded(list_id, size=reader.stored, columns=reader.columns)
        except Exception:
            await self.store.discard(list_id)
            raise
        existing = await self.store.named(chat.id, name)
        if existing is None:  # a new name: in use at once
            await self.store.publish(list_id)
            await self._repo.audit(
                chat.id,
                actor,
                "list add",  # i18n: not shown (an audit action)
                f"{name}: {reader.stored}",
            )
            return Upload(report)
        payload = json.dumps({"list_id": list_id, "name": name, "old_size": existing.size})
        asked = await self._confirmations.ask(chat.id, actor, KIND, payload, ttl=REPLACE_TTL)
        assert asked.id is not None
        return Upload(report, existing, asked.id)

    async def decide(
        self, chat_id: int, confirmation_id: int, *, replace: bool, actor: int
    ) -> Decided:
        """Replace or Keep: publish the waiting upload, or drop it. A second press does nothing.

        Raises:
            BadInput: the question is unknown here, or waited longer than :data:`REPLACE_TTL`.

        """
        row = await self._confirmations.get(confirmation_id)
        if row is None or row.chat_id != chat_id or row.kind != KIND:
            raise BadInput(_("This upload is not known any more; upload the file again."))
        payload = json.loads(row.payload)
        list_id, name = int(payload["list_id"]), str(payload["name"])
        old = int(payload["old_size"])
        upload = await self.store.get(list_id)
        size = upload.size if upload is not None else 0
        if await self._confirmations.decide(confirmation_id, confirm=replace, by=actor):
            if not replace:
                await self.store.discard(list_id)
                return Decided(Decision.KEPT, name, size, old)
            if not await self.store.publish(list_id):
                raise BadInput(
                    _("The upload for “{name}” is gone; upload the file again.").format(
                        name=escape(name)
                    )
                )
            await self._repo.audit(
                chat_id,
                actor,
                "list replace",  # i18n: not shown (an audit action)
                f"{name}: {size}",
            )
            return Decided(Decision.REPLACED, name, size, old)
        row = await self._confirmations.get(confirmation_id)
        assert row is not None
        if row.state == ConfirmationState.CONFIRMED:
            # Confirmed before; publish again in case the bot stopped between the two.
            await self.store.publish(list_id)
            return Decided(Decision.ALREADY_REPLACED, name, size, old)
        if row.state == ConfirmationState.CANCELLED:
            return Decided(Decision.ALREADY_KEPT, name, size, old)
        await self._confirmations.decide(confirmation_id, confirm=False, by=actor)
        await self.store.discard(list_id)
        raise BadInput(
            _(
                "This question waited longer than {minutes} minutes; the list “{name}” was kept "
                "as it was. Upload the file again to replace it."
            ).format(minutes=int(REPLACE_TTL.total_seconds() // 60), name=escape(name))
        )

    async def all(self, chat_id: int) -> list[RecipientList]:
        """The chat's lists by name."""
        return await self.store.ready(chat_id)

    async def delete(self, chat_id: int, raw_name: str, *, actor: int) -> RecipientList:
        """Delete one of the chat's lists; ``BadInput`` naming the lists when unknown."""
        name = read_name(raw_name, what="list")
        row = await self.store.delete(chat_id, name)
        if row is None:
            raise BadInput(await self.unknown(chat_id, name))
        await self._repo.audit(
            chat_id,
            actor,
            "list del",  # i18n: not shown (an audit action)
            f"{name}: {row.size}",
        )
        return row

    async def find(self, chat_id: int, raw_name: str) -> RecipientList:
        """One of the chat's lists by name; ``BadInput`` naming the lists when unknown."""
        name = read_name(raw_name, what="list")
        row = await self.store.named(chat_id, name)
        if row is None:
            raise BadInput(await self.unknown(chat_id, name))
        return row

    async def entries(self, row: RecipientList) -> list[Entry]:
        """A list's numbers with their cells, in file order, for a send."""
        try:
            return await self.store.entries(row)
        except ListChanged:
            raise BadInput(
                _("The list “{name}” changed while it was being read; try again.").format(
                    name=escape(row.name)
                )
            ) from None

    async def unknown(self, chat_id: int, name: str) -> str:
        """Why ``list:<name>`` names nothing, with the lists that exist (HTML)."""
        names = [r.name for r in await self.store.ready(chat_id)]
        if not names:
            return _(
                "There is no list “{name}”: this chat has no lists yet. Reply to a .csv "
                "or .txt file of numbers with /list add &lt;name&gt; to make one."
            ).format(name=echo(name))
        return _("There is no list “{name}” in this chat. Lists here: {names} (/lists).").format(
            name=echo(name), names=escape(", ".join(names))
        )


def no_numbers(report: UploadReport) -> str:
    """Why an upload stored nothing (HTML)."""
    if not report.lines:
        return _("The file has no numbers, only a header or blank lines. Nothing was stored.")
    head = _(
        "None of the file's {count:,} lines holds a valid number; nothing was stored."
    ).format(count=report.lines)
    lines = [head, *report.invalid.shown]
    if report.invalid.count > len(report.invalid.shown):
        lines.append(
            _("…and {count:,} more.").format(
                count=report.invalid.count - len(report.invalid.shown)
            )
        )
    if report.needs_country:
        lines.append(_(COUNTRY_HINT))
    return "\n".join(lines)


COUNTRY_HINT = N_(
    "Numbers written without a country code need the chat's country: set it with /country "
    "(e.g. /country ID), then upload the file again."
)
