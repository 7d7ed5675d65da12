"""Placeholders, filling and key=value pairs, without the bot."""

from __future__ import annotations

import pytest

from bot.services.addressing import read_pairs
from bot.services.errors import BadInput
from bot.services.templates import field_key, fill, placeholders


def test_placeholders_are_named_once_in_order_and_braces_doubled_are_literal() -> None:
    text = "Hi {First Name}, {{not one}} {city} {first_name} {CITY}"
    assert placeholders(text) == ["First Name", "city"]
    values = {"first_name": "Budi", "city": "Bali {x}"}
    assert fill(text, values) == "Hi Budi, {not one} Bali {x} Budi Bali {x}"


def test_names_match_across_case_spaces_and_hyphens() -> None:
    assert field_key(" First Name ") == field_key("first_name") == field_key("FIRST-name")


def test_pairs_take_quotes_and_refuse_what_is_not_a_pair() -> None:
    pairs = read_pairs(' name="Pak Budi" City=“Jakarta Selatan” code=A=B empty= ')
    assert pairs == {"name": "Pak Budi", "city": "Jakarta Selatan", "code": "A=B", "empty": ""}
    for bad in ("hello", 'name="open', "=x", 'a="b"c'):
        with pytest.raises(BadInput, match="is not key=value"):
            read_pairs(bad)
