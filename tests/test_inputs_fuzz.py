"""Property: no input breaks the bot (10,000 generated updates through the real Application).

Generated command strings (every command of the registry with random arguments, unknown
commands, unicode, control characters, invisible characters, HTML, injection attempts, long
pastes), plain and edited group messages, and button presses with random data go through
``process_update`` of the real Application, offline, with NusaSMS and Parrotica connected.
After every update:

- nothing but a :class:`UserError` or a provider's error reached the error handler, nothing
  was logged as an error, and no reply is the "something went wrong" apology;
- every text the bot sent or edited is valid Telegram HTML (only Telegram's tags, balanced,
  only the entities Telegram knows, no bare ``<``, ``>`` or ``&``) of at most 4,096
  characters, every button answer at most 200, and Telegram accepted each of them;
- every button press got exactly one answer;

and at the end of each test the database is consistent: no message without its batch, no
batch without messages, nothing left ``queued``, no role for an impossible user id, every
open schedule with recipients, text and a time after its creation.

The examples are split over four tests (private chat, group chat, group edits and plain
messages, buttons) of :data:`EXAMPLES` each; one bot serves all examples of a test, so state
built by earlier examples (sends, schedules, roles) is there for later ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.handlers import COMMANDS
from bot.services.errors import UserError
from providers.base import DeliveryState
from providers.errors import ProviderError
from storage.models import Batch, Member, Message, Schedule, ScheduleState
from tests.conftest import GROUP, NUSA_KEY, USER, Bot, make_settings, start_bot, stop_bot
from tests.databases import TEST_DATABASE_URL
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.parrotica import DEFAULT_KEY, DEFAULT_USER
from tests.fakes.telegram import (
    BOT_USERNAME,
    FakeTelegram,
    callback_query,
    edited_message,
    feed,
    group_message,
    private_message,
)
from tests.telegram_html import sent_problems

# Input handling and roles, not storage: the PostgreSQL run (CI's time) leaves them to SQLite.
pytestmark = pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="storage-agnostic: SQLite run")

EXAMPLES = 2_500  # per test; four tests make the 10,000
OPERATOR, VIEWER, STRANGER = 2, 3, 4  # group members besides USER, the group's admin
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a send through the fakes takes longer than an argument error
    database=None,  # nothing written into the worktree; a failure prints its example
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one bot for all examples, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# -- what users type -----------------------------------------------------------------------

NAMES = sorted(c.name for c in COMMANDS)
# fmt: off
TOKENS = [
    # injection and markup
    "<b>", "</b>", "<i>x", "<a href='x'>", "&", "&amp;", "&lt;", "&#0;", "&bogus;", "<", ">",
    "'; DROP TABLE message; --", '" OR 1=1 --', "${jndi:ldap://x/a}", "%s%n%x", "{0}", "{text}",
    "../../etc/passwd", "<script>alert(1)</script>", "\\", "`code`", "*bold*", "_it_",
    # numbers that are not ids
    "²", "١٢", "߁", "１２", "-1", "0", "#0", "#1", "1", "2", "3", "42", "1e3", "0x10",
    str(2**63), str(2**63 - 1), "9" * 30, "1" * 400,
    # invisible and control characters
    "\u200b", "\u200d", "\ufeff", "\u202e", "\x00", "\x07", "\x1b[31m", "\r", "\u2028",
    # recipients and routes
    "6281234567890", "+62 812 3456 7890", "0812-3456-7890", "+6281234567891,6281234567892",
    "628123", "nusasms", "nusasms:wa", "nusasms:sms", "nusasms:smsgroup", "parrotica",
    "parrotica:sms", "pigeon:post", "list:team", "contact:1", "group:1", "contact:²",
    # the words commands take
    "in", "1m", "2h", "1h30m", "99999999999999999h", "every", "day", "weekday", "mon,wed",
    "tomorrow", "today", "09:00", "25:00", "9am", "2026-12-01", "2027-12-01T09:00+07:00",
    "Asia/Jakarta", "UTC", "Mars/Olympus", "ID", "XX", "add", "del", "now", "--otp",
    "admin", "operator", "viewer", "@bob", "@", "api_key=x", "sms_user=u", "k=v", "=",
    "template:x", "route=nusasms", "state=sent", "since=2026-01-01", "skip", "-",
]
# fmt: on
# Unicode with surrogates left out (Telegram sends UTF-8) and everything else in: control,
# format, private-use and unassigned characters included.
UNICODE = st.characters(codec="utf-8")
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\t", ",", ", ", " \u200b "])


def args() -> st.SearchStrategy[str]:
    """Arguments: known words, random unicode, numbers, and now and then a long paste."""
    token = st.one_of(
        st.sampled_from(TOKENS),
        st.sampled_from(TOKENS),
        st.text(UNICODE, min_size=1, max_size=12),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
    )
    words = st.lists(st.tuples(token, SEPARATORS), max_size=8).map(
        lambda pairs: "".join(t + s for t, s in pairs)
    )
    long_paste = st.text(UNICODE, min_size=1000, max_size=3800)
    return st.one_of(words, words, words, long_paste.map(lambda t: "6281234567890 " + t))


@st.composite
def commands(draw: st.DrawFn) -> str:
    """``/name[@bot] args``, mostly a registry command, at most 4,096 characters."""
    name = draw(
        st.one_of(
            st.sampled_from(NAMES),
            st.sampled_from(NAMES),
            st.sampled_from(NAMES).map(str.upper),
            st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True),
            st.text(UNICODE, min_size=1, max_size=10),
        )
    )
    addressee = draw(st.sampled_from(["", "", "", f"@{BOT_USERNAME}", "@other_bot"]))
    text = f"/{name}{addressee} {draw(args())}".rstrip()
    return text[:4096] if text.strip() else "/"


def fill(template: str, **fields: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``template`` with each ``{field}`` drawn from its strategy."""
    return st.fixed_dictionaries(fields).map(lambda drawn: template.format(**drawn))


IDS = st.one_of(
    st.integers(min_value=1, max_value=30).map(str),
    st.sampled_from(["#1", "0", "-1", "²", "١٢", str(2**63), "9" * 30, "abc", "<b>"]),
)
# fmt: off
ROUTES = st.sampled_from(
    ["", "", "nusasms", "nusasms:wa", "nusasms:sms", "nusasms:smsgroup", "parrotica",
     "parrotica:sms", "pigeon:post", "nusasms:fax", "nusasms\u200b:wa", "<b>:x"]
)
RECIPIENTS = st.sampled_from(
    ["6281234567890", "+62 812 3456 7891", "0812-3456-7892", "6281234567893,6281234567894",
     "62812\u200b34567895", "628123", "+1 202 555 0100", "list:team", "contact:1",
     "group:2", "contact:²", "Sales", '"Sales Team"', "<b>", "١٢٣٤٥٦٧٨٩٠١٢"]
)
WHEN = st.sampled_from(
    ["in 1m", "in 2h", "in 1h30m", "in 2 hours", "tomorrow 09:00", "today 23:59",
     "every day 09:00", "every 2h", "every mon,wed 17:30", "2027-12-01 09:00",
     "2027-12-01T09:00+07:00", "in ١٢h", "in ² h", "in 99999999999999999h", "yesterday",
     "in 0m", "13pm", "every 1m", "2020-01-01 09:00"]
)
# fmt: on
BODIES = st.one_of(
    st.text(UNICODE, min_size=1, max_size=60),
    st.sampled_from(TOKENS),
    st.text(UNICODE, min_size=500, max_size=3000),
)
WORDS = st.sampled_from(TOKENS)
# Commands shaped like the contract, with each argument now valid, now not: these get past
# the argument checks into sends, schedules, roles and cards.
SHAPED = st.one_of(
    fill("/send {route} {to} {text}", route=ROUTES, to=RECIPIENTS, text=BODIES),
    fill("/send {route} --otp {to} {text}", route=ROUTES, to=RECIPIENTS, text=BODIES),
    fill(
        "/schedule {when} {route} {to} {text}", when=WHEN, route=ROUTES, to=RECIPIENTS, text=BODIES
    ),
    fill("/cancel {id}", id=IDS),
    fill("/reschedule {id} {when}", id=IDS, when=WHEN),
    fill("/status {id}", id=IDS),
    fill("/history {n}", n=IDS),
    fill(
        "/role {user} {role}",
        user=st.sampled_from(["2", "3", "@alice", "@bob", "-5", "²"]),
        role=st.sampled_from(["admin", "operator", "viewer", "boss", "<b>"]),
    ),
    fill("/use {route}", route=ROUTES),
    fill("/timezone {zone}", zone=st.sampled_from(["Asia/Jakarta", "UTC", "Mars/Olympus", "<b>"])),
    fill("/country {code}", code=st.sampled_from(["ID", "us", "XX", "١٢"])),
    fill("/contacts add {name} {to}", name=WORDS, to=RECIPIENTS),
    fill("/contacts {args}", args=st.sampled_from(["", "2", "del 1", "del ²,3", "del 0"])),
    fill("/check {to}", to=RECIPIENTS),
    fill("/{name}", name=st.sampled_from(NAMES)),
    fill("/{name} {arg}", name=st.sampled_from(NAMES), arg=WORDS),
)


def messages() -> st.SearchStrategy[str]:
    """What a chat member types: commands shaped or not, and sometimes plain text."""
    plain = st.one_of(args(), st.text(UNICODE, min_size=1, max_size=200))
    return st.one_of(SHAPED, SHAPED, commands(), commands(), plain).filter(
        lambda t: t.strip() != ""
    )


def button_data() -> st.SearchStrategy[str]:
    """Callback data: the bot's own formats with random ids, and anything up to 64 bytes."""
    ids = st.one_of(
        st.integers(min_value=-5, max_value=50).map(str),
        st.sampled_from(["", "²", "١٢", str(2**63), "9" * 40, "1 ", "\n1", "#1"]),
        st.text(UNICODE, max_size=6),
    )
    prefixes = st.sampled_from(
        ["sched:cancel:", "card:refresh:", "card:details:", "card:other:", "snd:nusasms:",
         "snd:parrotica:", "snd:pigeon:", "refresh:", ""]
    )  # fmt: skip
    made = st.tuples(prefixes, ids).map("".join)
    return st.one_of(made, made, st.text(UNICODE, min_size=1, max_size=64)).filter(
        lambda d: 0 < len(d.encode("utf-8")) <= 64
    )


# -- the bot under test --------------------------------------------------------------------


class Harness:
    """One offline bot with both providers connected, recording what goes wrong."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.errors: list[BaseException] = []
        self.logged: list[str] = []

    async def record_error(self, update: object, context: Any) -> None:
        """A second error handler: every error the bot's own handler also sees."""
        error = context.error
        if error is not None and not isinstance(error, UserError | ProviderError):
            self.errors.append(error)

    async def connect(self) -> None:
        """NusaSMS (default route) and Parrotica in the private chat, NusaSMS in the group."""
        accounts = self.bot.services.accounts
        if not await accounts.is_connected(USER, "nusasms"):
            await accounts.connect(USER, "nusasms", {"api_key": NUSA_KEY}, actor=USER)
        if not await accounts.is_connected(USER, "parrotica"):
            parrotica = {"api_key": DEFAULT_KEY, "user_id": DEFAULT_USER}
            await accounts.connect(USER, "parrotica", parrotica, actor=USER)
        if not await accounts.is_connected(GROUP, "nusasms"):
            await accounts.connect(GROUP, "nusasms", {"api_key": NUSA_KEY}, actor=USER)

    async def feed(self, update: dict[str, Any]) -> None:
        """Process one update and check everything the bot did in answer to it."""
        self.errors.clear()  # a failure found earlier must not be blamed on this update
        self.logged.clear()
        mark = self.bot.tg.mark()
        await feed(self.bot.app, update)
        calls = self.bot.tg.calls[mark:]
        what = json.dumps(update, ensure_ascii=True)[:600]
        assert self.errors == [], f"{self.errors!r} for {what}"
        assert self.logged == [], f"{self.logged} for {what}"
        for call in calls:
            problems = sent_problems(call)
            assert problems == [], f"{call.method} {call.params} {problems} for {what}"
            assert "Something went wrong" not in str(call.params.get("text", "")), what
        if "callback_query" in update:
            query_id = update["callback_query"]["id"]
            answers = [
                c
                for c in calls
                if c.method == "answerCallbackQuery"
                and c.params.get("callback_query_id") == query_id
            ]
            assert len(answers) == 1, f"{len(answers)} answers for {what}"
        await self.connect()  # a generated /disconnect must not starve the later examples

    async def check_database(self) -> None:
        """The database after all examples: consistent, nothing half-done."""
        async with self.bot.services.repo.db.read() as s:
            batches = {b.id: b for b in await s.exec(select(Batch))}
            messages = list(await s.exec(select(Message)))
            schedules = list(await s.exec(select(Schedule)))
            members = list(await s.exec(select(Member)))
        assert [m.id for m in messages if m.batch_id not in batches] == []
        assert set(batches) == {m.batch_id for m in messages}, "a batch without messages"
        states = {s.value for s in DeliveryState} - {DeliveryState.QUEUED.value}
        assert [(m.id, m.state) for m in messages if m.state not in states] == []
        assert [m.user_id for m in members if not 1 <= m.user_id < 2**63] == []
        open_states = (ScheduleState.PENDING.value, ScheduleState.CLAIMED.value)
        for row in (r for r in schedules if r.state in open_states):
            assert json.loads(row.recipients), row
            assert row.text.strip(), row
            assert row.next_run_at > row.created_at, row


class ErrorLog(logging.Handler):
    """Collects every ERROR record (the error handler logs unexpected errors that way)."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
async def harness(tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms) -> AsyncIterator[Harness]:
    """A running bot for every example of one test; its database is checked at the end."""
    bot = await start_bot(make_settings(tmp_path), tg, nusa)
    harness = Harness(bot)
    bot.app.add_error_handler(harness.record_error)
    errors = ErrorLog(harness.logged)
    logging.getLogger().addHandler(errors)
    try:
        await bot.services.chats.register(USER, kind="private", title="")
        await bot.services.chats.register(GROUP, kind="supergroup", title="Team")
        await harness.connect()
        tg.chat_admins[GROUP] = {USER}
        await harness.feed(group_message(f"/role {VIEWER} viewer"))
        yield harness
        await harness.check_database()
    finally:
        logging.getLogger().removeHandler(errors)
        await stop_bot(bot)


@FUZZ
@given(text=messages())
async def test_private_chat_survives_any_input(harness: Harness, text: str) -> None:
    await harness.feed(private_message(text))


@FUZZ
@given(text=messages(), user=st.sampled_from([USER, OPERATOR, VIEWER, STRANGER]))
async def test_group_chat_survives_any_input(harness: Harness, text: str, user: int) -> None:
    await harness.feed(group_message(text, user_id=user))


@FUZZ
@given(first=messages(), edit=messages(), user=st.sampled_from([USER, OPERATOR]))
async def test_group_edits_survive_any_input(
    harness: Harness, first: str, edit: str, user: int
) -> None:
    original = group_message(first, user_id=user)
    await harness.feed(original)
    await harness.feed(edited_message(original, edit))


@FUZZ
@given(
    data=button_data(),
    chat=st.sampled_from([USER, GROUP]),
    user=st.sampled_from([USER, OPERATOR, VIEWER]),
    message_id=st.integers(min_value=1, max_value=40),
)
async def test_any_button_press_is_answered(
    harness: Harness, data: str, chat: int, user: int, message_id: int
) -> None:
    user = USER if chat == USER else user
    await harness.feed(
        callback_query(data, message_chat_id=chat, message_id=message_id, user_id=user)
    )
