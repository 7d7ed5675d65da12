"""The role matrix of COMMANDS.md: every command × admin / operator / viewer, group and private.

One table: each row is a command as a member would type it and the least role that may run
it. In a group of three members (a Telegram admin, an operator by default, a viewer set with
/role) a member below that role is refused with a reply naming the role it needs; one at or
above it is not refused (whatever the command then says about its arguments). In a private
chat the user is the chat's admin and nothing is refused. /help lists exactly what the
caller may run.
"""

from __future__ import annotations

import re

import pytest

from bot.handlers import COMMANDS
from storage.models import Role
from tests.conftest import GROUP, NUSA_KEY, Bot
from tests.databases import TEST_DATABASE_URL

# Input handling and roles, not storage: the PostgreSQL run (CI's time) leaves them to SQLite.
pytestmark = pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="storage-agnostic: SQLite run")

ADMIN, OPERATOR, VIEWER = 10, 11, 12
MEMBERS = {Role.ADMIN: ADMIN, Role.OPERATOR: OPERATOR, Role.VIEWER: VIEWER}

# (what a member types, the least role that may run it). Arguments are chosen so an allowed
# run changes nothing later rows depend on.
MATRIX: list[tuple[str, Role]] = [
    ("/start", Role.VIEWER),
    ("/help", Role.VIEWER),
    ("/status", Role.VIEWER),
    ("/history", Role.VIEWER),
    ("/export state=bogus", Role.VIEWER),
    ("/stats", Role.VIEWER),
    ("/balance nusasms", Role.VIEWER),
    ("/scheduled", Role.VIEWER),
    ("/providers", Role.VIEWER),
    ("/templates", Role.VIEWER),
    ("/lists", Role.VIEWER),
    ("/stoplist", Role.VIEWER),
    ("/contacts", Role.VIEWER),
    ("/groups", Role.VIEWER),
    ("/activity", Role.VIEWER),
    ("/approvals", Role.VIEWER),
    ("/senders", Role.VIEWER),
    ("/send +6281234567890 Hi", Role.OPERATOR),
    ("/send now +6281234567890 Hi", Role.OPERATOR),
    ("/schedule in 2h +6281234567890 Later", Role.OPERATOR),
    ("/multicast 0b6f5c2e-6a43-4d7e-9b8e-3f1f2d7c9a10", Role.OPERATOR),
    ("/check +6281234567890", Role.OPERATOR),
    ("/cancel 999", Role.OPERATOR),
    ("/reschedule 999 in 3h", Role.OPERATOR),
    ("/stop +6289999999999", Role.OPERATOR),
    ("/unstop +6289999999999", Role.OPERATOR),
    ("/connect nope", Role.ADMIN),
    ("/disconnect nope", Role.ADMIN),
    ("/use nusasms:wa", Role.ADMIN),
    ("/contacts add Ann +6281234567890", Role.ADMIN),
    ("/contacts del 999", Role.ADMIN),
    ("/list add customers", Role.ADMIN),
    ("/list del nope", Role.ADMIN),
    ("/template add promo Hi {name}", Role.ADMIN),
    ("/template del nope", Role.ADMIN),
    ("/quiet off", Role.ADMIN),
    ("/role", Role.ADMIN),
    ("/audit", Role.ADMIN),
    ("/approval", Role.ADMIN),
    ("/timezone Asia/Jakarta", Role.ADMIN),
    ("/country ID", Role.ADMIN),
    ("/lang", Role.VIEWER),
    ("/lang en", Role.ADMIN),
]


def refused_role(reply: str) -> str | None:
    """The role a refusal names ("… needs the operator role …"), or None."""
    match = re.search(r"needs the (admin|operator|viewer) role", reply)
    return match.group(1) if match else None


@pytest.fixture
async def team(bot: Bot) -> Bot:
    """A group with a Telegram admin, an operator (the default) and a viewer; NusaSMS on."""
    bot.tg.chat_admins[GROUP] = {ADMIN}
    bot.tg.chat_members[GROUP] = {ADMIN, OPERATOR, VIEWER}
    assert "viewer" in await bot.group(f"/role {VIEWER} viewer", user_id=ADMIN)
    await bot.services.accounts.connect(GROUP, "nusasms", {"api_key": NUSA_KEY}, actor=ADMIN)
    await bot.connect()  # the private chat's user (USER)
    return bot


def test_the_matrix_names_every_command() -> None:
    typed = {text.split()[0].removeprefix("/") for text, _ in MATRIX}
    assert typed == {c.name for c in COMMANDS}


@pytest.mark.parametrize(("text", "least"), MATRIX, ids=[t for t, _ in MATRIX])
async def test_each_role_in_a_group(team: Bot, text: str, least: Role) -> None:
    for role, user_id in MEMBERS.items():
        reply = await team.group(text, user_id=user_id, username=f"user{user_id}")
        assert reply, f"{text} as {role.value}: no reply"
        if role.rank < least.rank:
            assert refused_role(reply) == least.value, f"{text} as {role.value}: {reply}"
        else:
            assert refused_role(reply) is None, f"{text} as {role.value}: {reply}"


@pytest.mark.parametrize(("text", "least"), MATRIX, ids=[t for t, _ in MATRIX])
async def test_a_private_chats_user_may_run_everything(team: Bot, text: str, least: Role) -> None:
    reply = await team.private(text)
    assert reply, f"{text}: no reply"
    assert refused_role(reply) is None, f"{text} ({least.value}): {reply}"


async def test_help_lists_exactly_what_each_role_may_run(team: Bot) -> None:
    for role, user_id in MEMBERS.items():
        listed = set(re.findall(r"^/(\w+)", await team.group("/help", user_id=user_id), re.M))
        may = {c.name for c in COMMANDS if c.role.rank <= role.rank}
        assert listed == may, role
