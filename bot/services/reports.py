"""Reading what a chat did: filtered history, the CSV export, statistics and the audit log.

The handlers of /history, /export, /stats and /audit call these; nothing here imports
telegram. Filters are read by :mod:`bot.services.filters`, the export is written by
:mod:`bot.services.export`, statistics are counted by :mod:`bot.services.stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.services.errors import BadInput
from bot.services.export import Export, export_csv
from bot.services.filters import Filters, read_filters
from bot.services.stats import MAX_DAYS, Stats, chat_stats, read_days
from i18n import _
from storage.models import AuditEntry, Chat, Message, utcnow
from storage.repo import Repository

AUDIT_DEFAULT = 20
AUDIT_MAX = 100


@dataclass(frozen=True, slots=True)
class AuditPage:
    """The newest audit rows of a chat, and the @usernames /role knows for their users."""

    entries: list[AuditEntry]
    names: dict[int, str]


class Reports:
    """History, export, statistics and audit use-cases; ``clock`` is injectable for tests."""

    def __init__(self, repo: Repository, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._repo = repo
        self.clock = clock

    def filters(self, chat: Chat, tokens: Sequence[str]) -> Filters:
        """Read ``key=value`` filters in the chat's zone and country (see ``read_filters``)."""
        today = self.clock().astimezone(ZoneInfo(chat.timezone)).date()
        return read_filters(tokens, zone=chat.timezone, country=chat.country, today=today)

    async def history(self, chat: Chat, filters: Filters, limit: int) -> list[Message]:
        """The chat's newest ``limit`` messages that pass the filters, newest first."""
        return await self._repo.history.latest(chat.id, filters.where, limit)

    async def export(self, chat: Chat, filters: Filters) -> Export:
        """The chat's filtered messages as a CSV file (the caller closes it).

        Raises:
            BadInput: no message matches (naming the filters), or the file is too large.

        """
        export = await export_csv(self._repo, chat.id, filters.where)
        if export.rows:
            return export
        export.close()
        if filters.described:
            raise BadInput(
                _("Nothing to export: no message of this chat matches {filters}.").format(
                    filters=filters.described
                )
            )
        raise BadInput(_("There is nothing to export yet: this chat has sent no messages."))

    async def stats(self, chat: Chat, days: int | None) -> Stats:
        """The chat's statistics over ``days`` local days (default 7).

        Raises:
            BadInput: a period outside 1 … 90 days.

        """
        try:
            period = read_days(days)
        except ValueError:
            raise BadInput(
                _("/stats takes a number of days from 1 to {limit}.").format(limit=MAX_DAYS)
            ) from None
        return await chat_stats(
            self._repo, chat.id, days=period, zone=chat.timezone, now=self.clock()
        )

    async def audit(self, chat_id: int, count: int | None) -> AuditPage:
        """The chat's newest ``count`` audit rows (default 20).

        Raises:
            BadInput: a count outside 1 … 100.

        """
        limit = AUDIT_DEFAULT if count is None else count
        if not 1 <= limit <= AUDIT_MAX:
            raise BadInput(
                _("/audit takes a number of entries from 1 to {limit}.").format(limit=AUDIT_MAX)
            )
        entries = await self._repo.audit_log.latest(chat_id, limit)
        names = {
            m.user_id: m.username for m in await self._repo.list_members(chat_id) if m.username
        }
        return AuditPage(entries, names)
