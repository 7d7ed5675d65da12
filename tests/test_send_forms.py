"""What /send and /multicast read from their text: e-mail subjects, audiences, template data.

Tables of good and bad input; the chat flows through the real Application are in
tests/test_courier_chat.py.
"""

from __future__ import annotations

import pytest

from bot.handlers.multicast import template_pairs
from bot.services.errors import BadInput
from bot.services.multicasts import DEFAULT_AUDIENCE, describe, read_multicast
from bot.services.sending import split_subject


@pytest.mark.parametrize(
    ("text", "subject", "body"),
    [
        ("Hello | Body", "Hello", "Body"),
        (
            "  Visit reminder |  See you at 9\nBring your card ",
            "Visit reminder",
            "See you at 9\nBring your card",
        ),
        ("A | b | c", "A", "b | c"),  # only the first bar separates
    ],
)
def test_subject_and_body(text: str, subject: str, body: str) -> None:
    assert split_subject(text) == (subject, body)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("No separator at all", "subject, then “|”"),
        (" | body only", "subject, then “|”"),
        ("Subject only |   ", "subject, then “|”"),
        ("Two\nlines | body", "one line"),
    ],
)
def test_bad_subject_forms_are_refused(text: str, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        split_subject(text)
    assert says in caught.value.message


def test_a_multicast_defaults_to_all_participants() -> None:
    request = read_multicast("welcome-1", None, {})
    assert (request.template_id, request.audience, request.audience_value) == (
        "welcome-1",
        DEFAULT_AUDIENCE,
        None,
    )
    assert describe(request) == (DEFAULT_AUDIENCE, "template welcome-1")


def test_a_multicast_audience_with_value_and_data() -> None:
    request = read_multicast("t", "group:1111", {"firstName": "Ana", "clinic": "North"})
    assert (request.audience, request.audience_value) == ("group", "1111")
    assert dict(request.data) == {"firstName": "Ana", "clinic": "North"}
    assert describe(request) == ("group:1111", "template t · firstName=Ana clinic=North")


@pytest.mark.parametrize(
    ("template", "audience", "pairs", "says"),
    [
        ("", None, {}, "template id"),
        ("x" * 256, None, {}, "template id"),
        ("t", "ALL PEOPLE", {}, "not an audience type"),
        ("t", "<b>", {}, "&lt;b&gt;"),
        ("t", None, {"bad key!": "1"}, "not a template field name"),
    ],
)
def test_bad_multicasts_are_refused(
    template: str, audience: str | None, pairs: dict[str, str], says: str
) -> None:
    with pytest.raises(BadInput) as caught:
        read_multicast(template, audience, pairs)
    assert says in caught.value.message


def test_template_pairs_keep_case_and_quoted_values() -> None:
    assert template_pairs('firstName=Ana note="see you soon" audience=all-participants') == {
        "firstName": "Ana",
        "note": "see you soon",
        "audience": "all-participants",
    }


@pytest.mark.parametrize(("text", "says"), [("lonely", "is not key=value"), ('a="open', "quote")])
def test_bad_template_pairs(text: str, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        template_pairs(text)
    assert says in caught.value.message
