"""/export: a chat's messages as a CSV file, written page by page into a temporary file.

Pages come from :meth:`storage.history.History.export_pages` (keyset pages, a short session
each) and go straight into a :class:`tempfile.SpooledTemporaryFile` (memory up to
:data:`SPOOL_BYTES`, then disk), so memory stays bounded by one page however many messages
the chat has: 100,000 rows stay under 30 MB of peak allocation (tests/test_export.py).

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) get a leading apostrophe (OWASP's advice for CSV injection): a
message text or a provider's detail must never become a formula in someone's spreadsheet.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from bot.services.errors import BadInput
from i18n import _
from storage.history import MessageFilter
from storage.repo import Repository

SPOOL_BYTES = 1024 * 1024
# Telegram takes documents of up to 50 MB from a bot.
MAX_BYTES = 50 * 1000 * 1000
HEADER = (
    "id",
    "created_at_utc",
    "route",
    "recipient",
    "state",
    "provider_ref",
    "provider_status",
    "detail",
    "text",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_row(m: Any) -> list[object]:
    """One message (a row of ``EXPORT_COLUMNS``, by name) as a CSV row, in :data:`HEADER` order."""
    return [
        m.id,
        m.created_at.isoformat(),
        neutralise(f"{m.provider}:{m.channel}"),
        neutralise(m.recipient),
        neutralise(m.state),
        neutralise(m.provider_ref or ""),
        neutralise(m.provider_status),
        neutralise(m.detail),
        neutralise(m.text),
    ]


@dataclass(slots=True)
class Export:
    """A finished export: the file (at its start) and how many messages it holds."""

    file: IO[bytes]
    rows: int

    def close(self) -> None:
        """Remove the temporary file."""
        self.file.close()


async def export_csv(repo: Repository, chat_id: int, where: MessageFilter) -> Export:
    """Write the chat's filtered messages, oldest first, as UTF-8 CSV (with a BOM).

    An export of no rows holds only the header (the caller says so instead of sending it).

    Raises:
        BadInput: the file outgrows what Telegram takes from a bot.

    """
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
    try:
        out.write("\ufeff".encode())  # spreadsheets then read UTF-8 right
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(HEADER)
        rows = 0
        async for page in repo.history.export_pages(chat_id, where):
            writer.writerows(csv_row(m) for m in page)
            rows += len(page)
            out.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
            if out.tell() > MAX_BYTES:
                raise BadInput(
                    _(
                        "The export is larger than the 50 MB Telegram lets a bot send. Narrow it "
                        "with since=YYYY-MM-DD, state= or route=."
                    )
                )
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return Export(out, rows)
