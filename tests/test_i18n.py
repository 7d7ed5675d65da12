"""English and Indonesian: the catalog is complete and sound, and chats are answered in theirs.

The catalog checks read the code as Babel does (``make i18n``): every wrapped string has an
Indonesian translation that keeps its ``{placeholders}`` and HTML tags (a lost placeholder
would fail at ``format``, a lost tag would make Telegram refuse the message), and no prose
reaches a user without going through the translation API (:mod:`tests.i18n_scan`).
"""

from __future__ import annotations

import asyncio
import re
import string
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from sqlmodel import select

from i18n import _, catalog_path, current_language, use_language
from storage.models import AuditEntry, Chat
from tests.conftest import GROUP, USER, Bot, make_settings, start_bot, stop_bot
from tests.fakes.nusasms import FakeNusaSms
from tests.fakes.telegram import FakeTelegram
from tests.i18n_scan import REPO, scan

TAG = re.compile(r"</?[a-z]+[^>]*>")
ADMIN, OPERATOR = 10, 11


def code_messages() -> dict[str, tuple[str, ...]]:
    """Every wrapped msgid in the code (as Babel extracts it), with its plural forms."""
    found: dict[str, tuple[str, ...]] = {}
    for root in ("bot", "providers", "i18n"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            REPO / root, keywords=DEFAULT_KEYWORDS
        ):
            forms = message if isinstance(message, tuple) else (message,)
            found[forms[0]] = tuple(forms)
    return found


def indonesian() -> Iterator[tuple[str, tuple[str, ...], tuple[str, ...], bool]]:
    """(msgid, its forms, the translations, fuzzy) for each entry of the Indonesian catalog."""
    with catalog_path("id").open("rb") as source:
        catalog = read_po(source, locale="id")
    for message in catalog:
        if not message.id:
            continue  # the header
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        yield ids[0], tuple(ids), tuple(s or "" for s in strings), message.fuzzy


def placeholders(text: str) -> set[str]:
    """The ``{names}`` ``str.format`` fills in ``text``."""
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def test_every_wrapped_string_has_an_indonesian_translation() -> None:
    translated = {
        msgid for msgid, _ids, strings, fuzzy in indonesian() if all(strings) and not fuzzy
    }
    missing = sorted(set(code_messages()) - translated)
    assert not missing, "untranslated (make i18n, then translate):\n" + "\n".join(missing)


def test_the_catalog_holds_only_strings_the_code_uses() -> None:
    used = set(code_messages())
    stale = sorted(msgid for msgid, *_rest in indonesian() if msgid not in used)
    assert not stale, "no longer in the code (make i18n drops them):\n" + "\n".join(stale)


def test_translations_keep_placeholders_and_tags() -> None:
    wrong = []
    for msgid, ids, strings, _fuzzy in indonesian():
        for text in strings:
            if not text:
                continue
            if placeholders(text) != placeholders(ids[-1]) and placeholders(text) != placeholders(
                ids[0]
            ):
                wrong.append(f"{msgid!r}: placeholders {placeholders(text)}")
            if Counter(TAG.findall(text)) != Counter(TAG.findall(ids[0])):
                wrong.append(f"{msgid!r}: tags {TAG.findall(text)}")
    assert not wrong, "\n".join(wrong)


def test_no_prose_reaches_a_user_untranslated() -> None:
    found = scan()
    assert not found, "wrap these in _() (or mark # i18n: not shown):\n" + "\n".join(
        str(f) for f in found
    )


def test_the_scanner_finds_an_unwrapped_reply(tmp_path: Path) -> None:
    module = tmp_path / "handler.py"
    module.write_text(
        'from i18n import _\nlog = None\n\ndef f(n):\n    """A docstring is fine."""\n'
        '    log.info("logs are fine too")\n'
        '    ok = _("This is wrapped.")\n'
        '    raise ValueError("a built-in error is for programmers")\n'
        '    return f"Sent to {n} numbers."\n',
        encoding="utf-8",
    )
    from tests.i18n_scan import scan_file

    assert [f.line for f in scan_file(module)] == [9]


# -- the language of each answer ----------------------------------------------------------------


async def test_concurrent_tasks_keep_their_own_language() -> None:
    seen: dict[str, list[str]] = {"en": [], "id": []}
    both_in = asyncio.Barrier(2)

    async def answer(code: str) -> None:
        with use_language(code):
            await both_in.wait()  # the other task has set its language by now
            seen[code].append(current_language())
            seen[code].append(_("I will answer in {name} in this chat."))

    await asyncio.gather(answer("en"), answer("id"))
    assert seen["en"] == ["en", "I will answer in {name} in this chat."]
    assert seen["id"] == ["id", "Saya akan menjawab dalam {name} di obrolan ini."]
    assert current_language() == "en"


async def test_lang_alone_says_the_language_and_the_choices(bot: Bot) -> None:
    reply = await bot.private("/lang")
    assert "This chat's language: English" in reply
    assert "id (Bahasa Indonesia)" in reply


async def test_lang_switches_the_chat_and_its_answers(bot: Bot) -> None:
    assert (
        await bot.private("/lang id")
        == "Saya akan menjawab dalam Bahasa Indonesia di obrolan ini."
    )
    assert (await bot.private("/lang")).startswith("Bahasa obrolan ini: Bahasa Indonesia.")
    async with bot.services.repo.db.read() as s:
        chat = await s.get(Chat, USER)
        rows = (await s.exec(select(AuditEntry).where(AuditEntry.action == "lang"))).all()
    assert chat is not None
    assert chat.language == "id"
    assert [(r.detail, r.user_id) for r in rows] == [("id", USER)]
    assert await bot.private("/lang en") == "I will answer in English in this chat."


async def test_an_unknown_language_is_refused_and_nothing_changes(bot: Bot) -> None:
    reply = await bot.private("/lang fr")
    assert "“fr” is not a language I speak" in reply
    assert "en (English), id (Bahasa Indonesia)" in reply
    async with bot.services.repo.db.read() as s:
        chat = await s.get(Chat, USER)
    assert chat is not None
    assert chat.language is None


async def test_in_a_group_only_an_admin_changes_the_language(bot: Bot) -> None:
    bot.tg.chat_admins[GROUP] = {ADMIN}
    refused = await bot.group("/lang id", user_id=OPERATOR)
    assert "needs the admin role" in refused
    assert "This chat's language: English" in await bot.group("/lang", user_id=OPERATOR)
    assert "Bahasa Indonesia" in await bot.group("/lang id", user_id=ADMIN)
    # One chat's language is not another's.
    assert "This chat's language: English" in await bot.private("/lang")


@pytest.mark.parametrize("code", ["id", "ID "])
async def test_default_language_answers_new_chats(
    tmp_path: Path, tg: FakeTelegram, nusa: FakeNusaSms, code: str
) -> None:
    started = await start_bot(make_settings(tmp_path, default_language=code), tg, nusa)
    try:
        assert (await started.private("/lang")).startswith("Bahasa obrolan ini: Bahasa Indonesia.")
    finally:
        await stop_bot(started)


def test_an_unknown_default_language_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="default_language"):
        make_settings(tmp_path, default_language="fr")
