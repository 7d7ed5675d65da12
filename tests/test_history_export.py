"""/history and /export: filters, bad filter input, the CSV, and a 100,000-row export.

Filters are route=, state=, to=, since=; the CSV neutralises spreadsheet formulas; the large
export is streamed in keyset pages within bounded memory (tracemalloc).
"""

from __future__ import annotations

import csv
import io
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from bot.services.export import export_csv
from storage.history import MessageFilter
from tests.conftest import USER, Bot
from tests.history_support import Row, seed
from tests.tracking_support import statements

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
A, B, C, D = "6281234567890", "6281234567891", "6281234567892", "6281234567893"


def day(n: int) -> datetime:
    """``n`` days before NOW."""
    return NOW - timedelta(days=n)


async def seeded(bot: Bot) -> None:
    bot.services.reports.clock = lambda: NOW
    await bot.private("/start")
    await seed(bot, [Row(day(9), "delivered", "nusasms:wa", A)])
    await seed(bot, [Row(day(5), "failed", "nusasms:sms", B, detail="no credit")])
    await seed(bot, [Row(day(1), "accepted", "parrotica:sms", C)])
    await seed(bot, [Row(day(1) + timedelta(hours=1), "failed", "courier:sms", D)])


def exported(bot: Bot) -> tuple[list[list[str]], str]:
    """The last CSV document the bot sent (rows, header first) and its caption."""
    upload = bot.tg.calls_to("sendDocument")[-1]
    text = upload.params["document"].content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text))), str(upload.params.get("caption", ""))


@pytest.mark.parametrize(
    ("filters", "shown", "hidden"),
    [
        ("state=failed", [B, D], [A, C]),
        ("state=FAILED", [B, D], [A, C]),
        ("route=nusasms", [A, B], [C, D]),
        ("route=nusasms:sms", [B], [A, C, D]),
        ("to=+62 812-3456-7890", [A], [B, C, D]),
        (f"to={C}", [C], [A, B, D]),
        ("since=2026-12-05", [B, C, D], [A]),
        ("1 state=failed", [D], [A, B, C]),
        ("state=failed since=2026-12-08 route=courier", [D], [A, B, C]),
    ],
)
async def test_history_filters(
    bot: Bot, filters: str, shown: list[str], hidden: list[str]
) -> None:
    await seeded(bot)
    text = await bot.private(f"/history {filters}")
    assert "Latest messages matching" in text
    assert all(n in text for n in shown), text
    assert not any(n in text for n in hidden), text


async def test_history_without_filters_and_with_no_match(bot: Bot) -> None:
    await seeded(bot)
    text = await bot.private("/history")
    assert text.startswith("Latest messages\n")
    assert all(n in text for n in (A, B, C, D))
    assert "No message of this chat matches state=read route=parrotica." in await bot.private(
        "/history state=read route=parrotica"
    )


BAD = [
    ("state=bogus", "Unknown state “bogus”: use one of queued, unknown, accepted"),
    ("since=2026-13-40", "“2026-13-40” is not a date: since= takes YYYY-MM-DD"),
    ("since=yesterday", "“yesterday” is not a date"),
    ("since=2027-01-01", "since=2027-01-01 is in the future"),
    ("colour=red", "Unknown filter “colour=”. Filters are route=<route>, state=<state>"),
    ("route=pigeon:post", "pigeon"),
    ("state=", "state= needs a value"),
    ("state=failed state=sent", "state= is given twice"),
    ("failed", "“failed” is not a filter"),
]


@pytest.mark.parametrize(("filters", "expected"), BAD)
async def test_bad_filters_get_specific_replies(bot: Bot, filters: str, expected: str) -> None:
    await seeded(bot)
    mark = bot.tg.mark()
    assert expected in await bot.private(f"/export {filters}")
    assert not bot.tg.calls_to("sendDocument")
    if filters != "failed":  # /history reads a leading word as its count
        assert expected in await bot.private(f"/history 5 {filters}")
    assert len(bot.replies_since(mark, USER)) == (1 if filters == "failed" else 2)


async def test_history_count_is_checked(bot: Bot) -> None:
    for bad in ("/history 0", "/history 101", "/history many"):
        assert "/history takes a number from 1 to 100" in await bot.private(bad)


async def test_export_takes_the_filters_and_names_them(bot: Bot) -> None:
    await seeded(bot)
    await bot.private("/export state=failed")
    rows, caption = exported(bot)
    assert rows[0] == [
        "id",
        "created_at_utc",
        "route",
        "recipient",
        "state",
        "provider_ref",
        "provider_status",
        "detail",
        "text",
    ]
    assert [(r[2], r[3], r[4], r[7]) for r in rows[1:]] == [
        ("nusasms:sms", B, "failed", "no credit"),
        ("courier:sms", D, "failed", ""),
    ]
    assert caption == "2 messages matching state=failed"
    await bot.private("/export")
    rows, caption = exported(bot)
    assert [r[3] for r in rows[1:]] == [A, B, C, D]  # oldest first
    assert caption == "4 messages"
    assert "Nothing to export: no message of this chat matches to=+6281234567899." in (
        await bot.private("/export to=+6281234567899")
    )


async def test_export_cells_never_become_spreadsheet_formulas(bot: Bot) -> None:
    await bot.private("/start")
    nasty = [
        Row(day(1), text='=HYPERLINK("http://x.test","click")', detail="+SUM(A1)"),
        Row(day(1), text="-2+3", detail="@cmd", recipient="@group"),
        Row(day(1), text="\t=1", detail="plain = fine"),
    ]
    await seed(bot, nasty)
    await bot.private("/export")
    rows, _ = exported(bot)
    cells = [(r[3], r[7], r[8]) for r in rows[1:]]
    assert cells == [
        (A, "'+SUM(A1)", '\'=HYPERLINK("http://x.test","click")'),
        ("'@group", "'@cmd", "'-2+3"),
        (A, "plain = fine", "'\t=1"),
    ]


async def test_a_100000_row_export_is_streamed_in_pages_within_bounded_memory(
    bot: Bot,
) -> None:
    count = 100_000
    await bot.private("/start")
    base = day(3)
    await seed(
        bot,
        [
            Row(base + timedelta(seconds=i), recipient=f"62812{i:08d}", text=f"Message {i}")
            for i in range(count)
        ],
    )
    repo = bot.services.repo

    async def measured(where: MessageFilter) -> tuple[int, bytes, float]:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            export = await export_csv(repo, USER, where)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        took = time.perf_counter() - started
        try:
            assert export.rows == len(export.file.read().splitlines()) - 1
            export.file.seek(0)
            return peak, export.file.read(), took
        finally:
            export.close()

    # Baseline from the same run: the last fifth of the rows.
    part_peak, part, _ = await measured(MessageFilter(since=base + timedelta(seconds=80_000)))
    with statements(bot) as sql:
        peak, data, took = await measured(MessageFilter())
    pages = [s for s in sql.sql if s.upper().startswith("SELECT") and "FROM MESSAGE" in s.upper()]
    print(  # figures for the record, not timed assertions
        f"\nexport of {count:,} rows: {len(data) / 1e6:.1f} MB CSV, peak {peak / 1e6:.1f} MB "
        f"traced ({len(part.splitlines()) - 1:,} rows: {part_peak / 1e6:.1f} MB), "
        f"{len(pages)} page queries, {took:.1f} s under tracemalloc"
    )
    lines = data.decode("utf-8-sig").splitlines()
    assert len(lines) == count + 1
    assert lines[1].endswith(",Message 0")
    assert lines[-1].endswith(f",Message {count - 1}")
    assert peak < 30_000_000, f"peak {peak / 1e6:.1f} MB"
    # Five times the rows, about the same peak: memory follows the page, not the export.
    assert peak < 1.5 * part_peak, (peak, part_peak)
    assert len(pages) == count // 2000 + 1  # keyset pages of 2,000, and one finding the end
