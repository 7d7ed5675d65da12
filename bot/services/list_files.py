"""Reading a recipient list from an uploaded .csv or .txt file, a chunk at a time.

Two layouts, told apart by the first line that is not blank:

- one number a line (a ``.txt``, or a one-column file; a first line ``number`` / ``phone`` is
  its header);
- a CSV whose first line is a header naming a ``number`` or ``phone`` column (any case),
  separated by ``;``, ``,`` or a tab (whichever the header uses most); the other named columns
  are kept with each number, for a template's placeholders.

The file must be UTF-8, with or without a byte-order mark; anything else is refused with the
line of the first byte that is not. Numbers are read with the chat's ``/country``
(:func:`bot.services.phones.normalise`) and stored as E.164; a number seen before is a
duplicate line, reported with the line it repeats. Memory stays bounded by the file (at most
Telegram's 20 MB) plus one set of the numbers seen: entries are handed out in chunks.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape

from bot.services.errors import BadInput, echo
from bot.services.phones import normalise
from bot.services.templates import field_key
from i18n import N_, _
from storage.lists import Entry

MAX_LINES = 100_000
MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download from Telegram
MAX_COLUMNS = 30
CHUNK = 2_000
SHOWN = 5
EXTENSIONS = (".csv", ".txt")
TEXT_TYPES = ("text/csv", "text/plain", "text/comma-separated-values", "application/csv")
NUMBER_COLUMNS = ("number", "phone")
DELIMITERS = (";", ",", "\t")
_PEEK = 64 * 1024
_COUNTRY_HINT = "/country"  # every language's refusal of a national number names it
TOO_LONG = N_(
    "The file has more than {limit:,} lines, the most one list holds. Split it into "
    "several lists; nothing was stored."
)


def size_text(size: int) -> str:
    """``20 MB``, ``512 KB``: a size as people say it."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 ", " ")
    return f"{max(1, size // 1024)} KB"


def check_file(file_name: str | None, mime_type: str | None, size: int | None) -> None:
    """Refuse a document that cannot be a list before it is downloaded.

    Raises:
        BadInput: not a .csv / .txt file, or larger than Telegram lets a bot download.

    """
    name = (file_name or "").lower()
    typed = (mime_type or "").lower()
    if not (name.endswith(EXTENSIONS) or (not name and typed in TEXT_TYPES)):
        if file_name:
            refusal = _(
                "“{name}” is not a .csv or .txt file. A list is a text file with one number a "
                "line, or a CSV with a number (or phone) column; save it as CSV UTF-8 and "
                "upload that."
            ).format(name=echo(file_name))
        else:
            refusal = _(
                "That document is not a .csv or .txt file. A list is a text file with one "
                "number a line, or a CSV with a number (or phone) column; save it as CSV UTF-8 "
                "and upload that."
            )
        raise BadInput(refusal)
    if size is not None and size > MAX_FILE_BYTES:
        raise BadInput(
            _(
                "The file is {size}; a bot can download at most {most} from Telegram, and a "
                "list holds at most {lines:,} lines. Split it into smaller lists."
            ).format(size=size_text(size), most=size_text(MAX_FILE_BYTES), lines=MAX_LINES)
        )


@dataclass(slots=True)
class Problems:
    """Lines of one kind (invalid, duplicate): the first few as text, and how many in all."""

    shown: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, text: str) -> None:
        """Count one line; keep its text while fewer than :data:`SHOWN` are kept."""
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append(text)


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file is laid out: its separator (None: one number a line) and its columns."""

    delimiter: str | None
    header: bool
    number_column: int
    columns: tuple[tuple[int, str], ...]  # (position, name) of every other named column


class ListReader:
    """Reads one uploaded file; :meth:`chunks` gives its numbers, then the counts are final."""

    def __init__(self, data: bytes, *, country: str | None) -> None:
        self._data = data
        self._country = country
        self._seen: dict[str, int] = {}
        self.lines = 0
        self.stored = 0
        self.invalid = Problems()
        self.duplicates = Problems()
        self.needs_country = False
        _check_text(data)
        self.layout = _layout(data)
        # Refused before anything is stored when even the count of lines says so (a header
        # may come on top); a quoted cell over several lines is counted exactly below.
        if sum(1 for line in data.splitlines() if line.strip()) > MAX_LINES + 1:
            raise BadInput(_(TOO_LONG).format(limit=MAX_LINES))

    @property
    def columns(self) -> list[str]:
        """The extra columns kept with each number, as the header names them."""
        return [name for _position, name in self.layout.columns]

    def chunks(self, size: int = CHUNK) -> Iterator[list[Entry]]:
        """The file's valid, first-seen numbers, ``size`` at a time, in file order.

        Raises:
            BadInput: more than :data:`MAX_LINES` lines, or a line that is not CSV.

        """
        chunk: list[Entry] = []
        for line, cells in self._rows():
            entry = self._entry(line, cells)
            if entry is not None:
                chunk.append(entry)
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of every line that is not blank, the header left out."""
        stream = io.TextIOWrapper(io.BytesIO(self._data), encoding="utf-8-sig", newline="")
        delimiter = self.layout.delimiter
        header_left = self.layout.header
        if delimiter is None:
            for number, text in enumerate(stream, 1):
                if not text.strip():
                    continue
                if header_left:
                    header_left = False
                    continue
                yield number, [text.strip()]
            return
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if header_left:
                    header_left = False
                    continue
                yield reader.line_num, cells
        except csv.Error as exc:
            raise BadInput(
                _("Line {line} could not be read as CSV ({reason}). Nothing was stored.").format(
                    line=reader.line_num + 1, reason=escape(str(exc))
                )
            ) from exc

    def _entry(self, line: int, cells: list[str]) -> Entry | None:
        self.lines += 1
        if self.lines > MAX_LINES:
            raise BadInput(_(TOO_LONG).format(limit=MAX_LINES))
        layout = self.layout
        raw = cells[layout.number_column].strip() if layout.number_column < len(cells) else ""
        if not raw:
            self.invalid.add(_("line {line}: no number").format(line=line))
            return None
        try:
            number = normalise(raw, country=self._country).e164
        except BadInput as exc:
            if _COUNTRY_HINT in exc.message:
                self.needs_country = True
                self.invalid.add(
                    _("line {line}: “{number}” is a national number").format(
                        line=line, number=echo(raw)
                    )
                )
            else:
                self.invalid.add(_("line {line}: {reason}").format(line=line, reason=exc.message))
            return None
        first = self._seen.get(number)
        if first is not None:
            self.duplicates.add(
                _("line {line}: {number} (as line {first})").format(
                    line=line, number=escape(number), first=first
                )
            )
            return None
        self._seen[number] = line
        self.stored += 1
        values = {
            name: cells[i].strip()
            for i, name in layout.columns
            if i < len(cells) and cells[i].strip()
        }
        return Entry(number, values or None)


def _check_text(data: bytes) -> None:
    """Refuse what is not UTF-8 text, naming the line of the first byte that is not."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadInput(
            _(
                "The file is UTF-16 text; save it as UTF-8 (in Excel: “CSV UTF-8”) and upload "
                "it again. Nothing was stored."
            )
        )
    if data.startswith(b"PK\x03\x04"):
        raise BadInput(
            _(
                "The file is a workbook (e.g. .xlsx), not text: save it as CSV UTF-8 and upload "
                "that. Nothing was stored."
            )
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadInput(
            _(
                "The file is not UTF-8 text (line {line} has a byte UTF-8 does not allow). Save "
                "it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again. Nothing was stored."
            ).format(line=line)
        ) from exc


def _layout(data: bytes) -> Layout:
    """The separator and columns, from the first line that is not blank."""
    peek = data[:_PEEK].decode("utf-8-sig", errors="ignore")
    first = next((line for line in peek.splitlines() if line.strip()), None)
    if first is None:
        raise BadInput(_("The file is empty: there is no number in it. Nothing was stored."))
    counts = {d: first.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: counts[d])
    if not counts[delimiter]:
        header = first.strip().lower() in NUMBER_COLUMNS
        return Layout(None, header, 0, ())
    names = [c.strip() for c in next(csv.reader([first], delimiter=delimiter))]
    keys = [n.lower() for n in names]
    position = next((i for i, k in enumerate(keys) if k in NUMBER_COLUMNS), None)
    if position is None:
        shown = ", ".join(f"“{echo(n, limit=30)}”" for n in names[:8] if n)
        if shown:
            refusal = _(
                "The first line of a CSV names its columns, and one of them must be number or "
                "phone; this file's first line has {names}. Nothing was stored."
            ).format(names=shown)
        else:
            refusal = _(
                "The first line of a CSV names its columns, and one of them must be number or "
                "phone; this file's first line has no names. Nothing was stored."
            )
        raise BadInput(refusal)
    columns: list[tuple[int, str]] = []
    seen = {field_key(names[position])}
    for i, name in enumerate(names):
        if i == position or not name:
            continue
        key = field_key(name)
        if key in seen:
            raise BadInput(
                _("Two columns are called “{name}”; rename one. Nothing was stored.").format(
                    name=echo(name)
                )
            )
        seen.add(key)
        columns.append((i, name))
    if len(columns) > MAX_COLUMNS:
        raise BadInput(
            _(
                "The file has {count} columns besides the number; a list keeps at most "
                "{limit}. Remove the ones no template uses. Nothing was stored."
            ).format(count=len(columns), limit=MAX_COLUMNS)
        )
    return Layout(delimiter, True, position, tuple(columns))
