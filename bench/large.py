"""Large sends: a 10,000-number list on a list-taking API, and a paced single-recipient API.

Both run through the real send path (``Services.build`` with ``CONFIRM_ABOVE``, so they are
large sends: every chunk is marked handed over in its own transaction before its request) and
the real delivery tracker, whose card loop posts the progress card and edits it while the
send runs, on an offline Telegram (``tests/fakes/telegram.py``) that records when each call
arrived.

1. **List-taking API.** 10,000 numbers stored as a recipient list, sent as ``list:big`` to
   Parrotica (100 numbers a request) served in-process on 127.0.0.1 by the test fake, which
   takes ``--latency`` per send request (Parrotica documents no rate; it stands for the
   provider's own time). Baseline of the same run: ``⌈requests / concurrency⌉ × latency``.
   Checked: requests = ⌈10,000 / 100⌉, every message stored ``accepted`` with a ref.
2. **Single-recipient API at its documented rate.** ``--count`` numbers (default 1,000) to
   NusaSMS WhatsApp served by ``bench/servers.py`` with its documented one request per 50 ms
   (a request closer than that gets 429). Baseline: ``count × 50 ms``; target ≤ 1.05× with
   zero 429s.
3. **Card edits** of both: how many, and the smallest gap between two (target ≥ 3 s).

Bounded: each send has a deadline of 3× its ideal plus a minute; the list part seeds 10,000
rows. The database is a SQLite file or a fresh PostgreSQL one (``--database``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlmodel import col, select
from telegram import Bot

from bench.common import (
    BenchDatabase,
    FakeServer,
    Report,
    add_database_option,
    expect,
    header,
    on_each_database,
)
from bench.stack import API_KEY, CHAT, TEXT, recipients
from bot.cards import post_card
from bot.config import Settings
from bot.services import Services
from bot.services.sending import Sender, SendOutcome, SendRequest
from bot.tracking.tracker import Tracker, build_tracker
from providers.http import make_http_client
from providers.registry import parse_route, provider_environment
from storage.crypto import CredentialCipher, load_or_create_keys
from storage.db import Database, create_engine, migrate
from storage.lists import Entry, ListStore
from storage.models import Message
from storage.repo import Repository
from tests.fakes.httpserver import serve
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER, FakeParrotica
from tests.fakes.telegram import FakeTelegram, OfflineRequest

TOKEN = "123:BENCH"  # noqa: S105 - the offline Telegram's, not a secret
PARROTICA_CHUNK = 100  # numbers a Parrotica request takes (its adapter's capability)
EDIT_INTERVAL = 3.0  # the target: at most one edit of a card every 3 s
SETTLE = 4.0  # seconds after a send for the card's last edit


@asynccontextmanager
async def stack(
    url: str, folder: Path, *, nusasms: str, parrotica: str, concurrency: int, confirm_above: int
) -> AsyncIterator[tuple[Services, Tracker, FakeTelegram]]:
    """The services over a migrated database, both providers connected, a running tracker."""
    engine = create_engine(url)
    await migrate(engine)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        telegram_bot_token=TOKEN,
        database_url=url,
        nusasms_base_url=nusasms,
        nusasms_min_interval=0.05,
        parrotica_base_url=parrotica,
        send_concurrency=concurrency,
        confirm_above=confirm_above,
        # No status polls during the run: they share the account's 50 ms pacing with the
        # measured send (the baseline's 1,000 messages would be polled during the large one).
        status_poll_seconds=3600.0,
    )
    http = make_http_client(timeout=20.0, max_connections=max(concurrency * 2, 20))
    repo = Repository(Database(engine))
    cipher = CredentialCipher(load_or_create_keys(Fernet.generate_key().decode(), folder))
    services = Services.build(
        repo,
        cipher,
        provider_environment(http, settings.model_dump()),
        send_concurrency=concurrency,
        first_poll=settings.status_poll_seconds,
        large_above=settings.confirm_above,
    )
    await repo.ensure_chat(CHAT, kind="private", title="bench")
    await repo.save_credential(
        CHAT, "nusasms", secret=cipher.encrypt({"api_key": API_KEY}), account="n", actor=1
    )
    await repo.save_credential(
        CHAT,
        "parrotica",
        secret=cipher.encrypt({"api_key": DEFAULT_KEY, "user_id": DEFAULT_USER}),
        account="p",
        actor=1,
    )
    tg = FakeTelegram()
    bot = Bot(TOKEN, request=OfflineRequest(tg))
    await bot.initialize()
    tracker = build_tracker(bot, services, settings)
    services.card_events = tracker
    tracker.start()
    try:
        yield services, tracker, tg
    finally:
        await tracker.stop()
        await services.accounts.close()
        await http.aclose()
        await bot.shutdown()
        await engine.dispose()


def card_figures(report: Report, tg: FakeTelegram, since: int) -> None:
    """The card's post and edits since ``since``: count, smallest gap, the target."""
    posts = [c for c in tg.calls[since:] if c.method == "sendMessage" and c.ok]
    card = next((c for c in posts if str(c.result["text"]).startswith("Send ")), None)
    expect(card is not None, "the large send got no card")
    assert card is not None
    edits = [
        c
        for c in tg.calls[since:]
        if c.method == "editMessageText"
        and c.params.get("message_id") == card.result["message_id"]
    ]
    times = [card.at, *(c.at for c in edits)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    smallest = min(gaps, default=math.inf)
    span = times[-1] - times[0]
    report.figure("card: edits (bound: 1 + span / 3 s)", f"{len(edits)} ({1 + span / 3:.1f})")
    report.figure("card: smallest gap post/edit → edit", f"{smallest:.2f} s")
    last = str(edits[-1].params.get("text", "")) if edits else ""
    report.figure("card: last edit shows the summary", "yes" if "Finished" in last else "no")
    report.budget(smallest >= EDIT_INTERVAL - 0.05, f"≤ 1 edit / 3 s (got {smallest:.2f} s)")


async def stored_accepted(services: Services, batch_id: int) -> tuple[int, int]:
    """Messages of the send stored ``accepted`` with a ref, and all of them."""
    async with services.repo.db.read() as s:
        accepted = await s.exec(
            select(func.count()).where(
                Message.batch_id == batch_id,
                Message.state == "accepted",
                col(Message.provider_ref).is_not(None),
            )
        )
        total = await s.exec(select(func.count()).where(Message.batch_id == batch_id))
        return int(accepted.one()), int(total.one())


async def timed_send(
    services: Services, request: SendRequest, *, large: bool, deadline: float
) -> tuple[float, SendOutcome]:
    """Send as a large send, or as a plain one (the baseline: no hand-over, no progress)."""
    sender = services.sender
    kept, sender.large_above = sender.large_above, (kept_above(sender) if large else None)
    try:
        start = time.perf_counter()
        outcome = await asyncio.wait_for(sender.send(request), deadline)
        return time.perf_counter() - start, outcome
    finally:
        sender.large_above = kept


def kept_above(sender: Sender) -> int:
    """The CONFIRM_ABOVE the sender was built with."""
    assert sender.large_above is not None
    return sender.large_above


async def list_part(
    report: Report, services: Services, tg: FakeTelegram, fake: FakeParrotica, args: Any
) -> None:
    """10,000 numbers from a list to the list-taking API: plain send, then large send."""
    count, latency, concurrency = args.list_count, args.latency, args.concurrency
    store = ListStore(services.repo.db)
    list_id = await store.begin(CHAT, "big", file_name="big.csv", actor=1)
    numbers = [f"+{n}" for n in recipients(count, offset=50_000_000)]
    for i in range(0, count, 2_000):
        await store.add_entries(list_id, [Entry(n) for n in numbers[i : i + 2_000]])
    await store.loaded(list_id, size=count, columns=[])
    await store.publish(list_id)
    chat = await services.repo.ensure_chat(CHAT, kind="private", title="bench")
    route = parse_route("parrotica:sms")
    requests = math.ceil(count / PARROTICA_CHUNK)
    ideal = math.ceil(requests / concurrency) * latency
    report.figure("list: provider time ⌈requests / workers⌉ × latency", f"{ideal:.2f} s")
    plain = elapsed = 0.0
    for large in (False, True):
        what = "large send" if large else "baseline: plain send"
        mark, sends_before = tg.mark(), len(fake.messages)
        start = time.perf_counter()
        addressed = await services.addressing.prepare(chat, route, ["list:big"], TEXT)
        expanded = time.perf_counter() - start
        request = SendRequest(
            chat_id=CHAT,
            actor_id=1,
            actor_name="bench",
            route=route,
            recipients=addressed.recipients,
            text=addressed.text,
            origin=f"bench:list:{large}",
        )
        elapsed, outcome = await timed_send(
            services, request, large=large, deadline=ideal * 3 + 120
        )
        await post_card(services, outcome)
        await asyncio.sleep(SETTLE)
        assert outcome.batch.id is not None
        accepted, total = await stored_accepted(services, outcome.batch.id)
        made = len(fake.messages) - sends_before
        report.figure(f"list, {what}: expand the list", f"{expanded:.2f} s")
        report.figure(f"list, {what}: store + send", f"{elapsed:.2f} s")
        report.figure(f"list, {what}: requests (⌈n / 100⌉)", f"{made} ({requests})")
        report.figure(f"list, {what}: stored accepted with a ref", f"{accepted:,} / {total:,}")
        expect(made == requests, f"{made} requests, expected {requests}")
        expect(accepted == count == total, f"{accepted} accepted of {total}, {count} sent")
        if large:
            card_figures(report, tg, mark)
        else:
            plain = elapsed
    report.figure("list: large send / plain send (same run)", f"{elapsed / plain:.3f}")


async def single_part(report: Report, services: Services, tg: FakeTelegram, args: Any) -> None:
    """``--count`` numbers one request each at NusaSMS's 50 ms: plain send, then large send."""
    count, interval = args.count, 0.05
    ideal = count * interval
    report.figure("single: ideal count × 50 ms", f"{ideal:.2f} s")
    plain = 0.0
    for large in (False, True):
        what = "large send" if large else "baseline: plain send"
        mark = tg.mark()
        await asyncio.sleep(interval * 2)  # the account's pacer starts from rest
        request = SendRequest(
            chat_id=CHAT,
            actor_id=1,
            actor_name="bench",
            route=parse_route("nusasms:wa"),
            recipients=recipients(count, offset=10_000_000 * large),
            text=TEXT,
            origin=f"bench:single:{large}",
        )
        elapsed, outcome = await timed_send(
            services, request, large=large, deadline=ideal * 3 + 60
        )
        await post_card(services, outcome)
        await asyncio.sleep(SETTLE)
        assert outcome.batch.id is not None
        accepted, total = await stored_accepted(services, outcome.batch.id)
        report.figure(
            f"single, {what}: elapsed / ideal", f"{elapsed:.2f} s / {elapsed / ideal:.3f}"
        )
        report.figure(f"single, {what}: stored accepted", f"{accepted:,} / {total:,}")
        expect(accepted == count == total, f"{accepted} accepted of {total}, {count} sent")
        if not large:
            plain = elapsed
            continue
        report.figure("single: large send / plain send (same run)", f"{elapsed / plain:.3f}")
        card_figures(report, tg, mark)
        report.budget(elapsed <= 1.05 * ideal, f"≤ 1.05 × ideal (got {elapsed / ideal:.3f})")


async def run(args: Any) -> int:
    """Both parts on one database."""
    report = header(
        "large",
        f"{args.list_count:,} from a list (100 a request), {args.count:,} at 50 ms, "
        f"{args.database}",
    )
    fake = FakeParrotica()
    latency = args.latency

    async def parrotica(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/message/" in request.url.path:
            await asyncio.sleep(latency)  # the provider's own time per request
        return fake(request)

    async with FakeServer(interval=0.05, nice=-10) as server, serve(parrotica) as parrotica_url:
        with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
            db = BenchDatabase(args.database, Path(tmp))
            async with db:
                async with stack(
                    db.url,
                    Path(tmp),
                    nusasms=server.base_url,
                    parrotica=parrotica_url,
                    concurrency=args.concurrency,
                    confirm_above=args.confirm_above,
                ) as (services, _tracker, tg):
                    await list_part(report, services, tg, fake, args)
                    await server.reset()
                    await single_part(report, services, tg, args)
                    stats = await server.stats()
                report.figure("single: requests the server saw", str(stats["requests"]))
                report.figure("single: 429 answers", str(stats["rejected_429"]))
                report.budget(
                    stats["rejected_429"] == 0, f"zero 429s (got {stats['rejected_429']})"
                )
                report.figure("database", db.describe())
    return report.exit_code()


def main(argv: list[str]) -> int:
    """``python -m bench large [--list-count N] [--count N] [--latency S] [--concurrency C]``."""
    defaults = Settings.model_fields
    parser = argparse.ArgumentParser(prog="python -m bench large", description=__doc__)
    parser.add_argument("--list-count", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=defaults["send_concurrency"].default)
    parser.add_argument(
        "--confirm-above",
        type=int,
        default=defaults["confirm_above"].default,
        help="CONFIRM_ABOVE; above the counts: plain sends, for comparison",
    )
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.database is None:
        return on_each_database("large", argv, timeout=600)
    return asyncio.run(run(args))
