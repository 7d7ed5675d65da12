"""Pure units: phone numbers, argument parsing, routes, delivery states, encryption."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.parsing import command_body, parse_pairs, take_recipients, take_token
from bot.services.errors import BadInput
from bot.services.phones import normalise, valid_country
from providers.base import DeliveryState as S
from providers.registry import (
    REGISTRY,
    UnknownRoute,
    example_route,
    looks_like_route,
    media_route,
    parse_route,
)
from storage.crypto import (
    CredentialCipher,
    SecretKeyError,
    UndecryptableSecret,
    load_or_create_keys,
)


@pytest.mark.parametrize(
    ("raw", "country", "digits"),
    [
        ("6281234567890", None, "6281234567890"),
        ("+62 812-3456-7890", None, "6281234567890"),
        ("081234567890", "ID", "6281234567890"),
        ("(0812) 3456.7890", "ID", "6281234567890"),
        ("+1 415 555 2671", "ID", "14155552671"),
    ],
)
def test_numbers_normalise_to_international_digits(
    raw: str, country: str | None, digits: str
) -> None:
    assert normalise(raw, country=country).digits == digits


@pytest.mark.parametrize(
    ("raw", "country", "reason"),
    [
        ("081234567890", None, "national number"),
        ("12345", None, "not a valid phone number"),
        ("hello", None, "not a phone number"),
        ("+62 812", None, "not a valid phone number"),
        ("", None, "not a phone number"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw: str, country: str | None, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        normalise(raw, country=country)


def test_whatsapp_group_ids_pass_only_where_allowed() -> None:
    group = "628123456789-1234567890"
    assert normalise(group, country=None, allow_wa_group=True).digits == group
    with pytest.raises(BadInput):
        normalise(group, country=None)


def test_country_codes_are_checked() -> None:
    assert valid_country("id") == "ID"
    with pytest.raises(BadInput, match="ISO 3166"):
        valid_country("XX")


def _complete(text: str) -> bool:
    try:
        normalise(text, country="ID")
    except BadInput:
        return False
    return True


@pytest.mark.parametrize(
    ("body", "recipients", "text"),
    [
        ("6281234567890 Hello", ["6281234567890"], "Hello"),
        ("+62 812 3456 7890 Hi\nsecond line", ["+62 812 3456 7890"], "Hi\nsecond line"),
        ("6281234567890, 6281234567891 Hi", ["6281234567890", "6281234567891"], "Hi"),
        ("6281234567890,6281234567891 Hi", ["6281234567890", "6281234567891"], "Hi"),
        ("6281234567890 123 is your code", ["6281234567890"], "123 is your code"),
        ("contact:12 Hi", ["contact:12"], "Hi"),
    ],
)
def test_recipients_are_split_from_the_text(body: str, recipients: list[str], text: str) -> None:
    assert take_recipients(body, _complete) == (recipients, text)


def test_command_body_keeps_layout() -> None:
    assert command_body("/send@chatops_bot  a b\n c") == "a b\n c"
    assert take_token("nusasms:wa 628 Hi\nthere") == ("nusasms:wa", "628 Hi\nthere")


def test_pairs() -> None:
    assert parse_pairs("api_key=abc== sms_user=u") == {"api_key": "abc==", "sms_user": "u"}
    with pytest.raises(ValueError, match="not key=value") as caught:
        parse_pairs("api_key=abc oops")
    assert "oops" not in str(caught.value)  # it may be a secret typed without its key


def test_routes() -> None:
    assert str(parse_route("NusaSMS")) == "nusasms:wa"
    assert str(parse_route("nusasms:wa")) == "nusasms:wa"
    with pytest.raises(UnknownRoute, match="Known routes"):
        parse_route("twilio:sms")
    with pytest.raises(UnknownRoute, match="no channel"):
        parse_route("nusasms:fax")
    assert looks_like_route("nusasms")
    assert looks_like_route("twilio:sms")
    assert not looks_like_route("contact:12")
    assert not looks_like_route("+6281234567890")


def test_media_limits_are_on_the_channels_that_carry_media() -> None:
    for spec in REGISTRY.values():
        for channel in spec.channels:
            assert bool(channel.media_limits) == channel.media, f"{spec.name}:{channel.name}"
    assert str(media_route()) == "nusasms:wa"
    assert str(example_route()) == "nusasms:wa"


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (S.QUEUED, S.ACCEPTED, True),
        (S.ACCEPTED, S.SENT, True),
        (S.SENT, S.ACCEPTED, False),
        (S.DELIVERED, S.SENT, False),
        (S.DELIVERED, S.READ, True),
        (S.DELIVERED, S.FAILED, False),
        (S.READ, S.DELIVERED, False),
        (S.SENT, S.SENT, False),
        (S.UNKNOWN, S.DELIVERED, True),
        (S.SENT, S.FAILED, True),
        (S.FAILED, S.DELIVERED, False),
        (S.ACCEPTED, S.EXPIRED, True),
    ],
)
def test_states_only_move_forward(old: S, new: S, allowed: bool) -> None:
    assert old.can_become(new) is allowed


def test_cipher_round_trip_and_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = CredentialCipher([old]).encrypt({"api_key": "s3cret"})
    assert b"s3cret" not in token
    rotated = CredentialCipher([new, old])
    assert rotated.decrypt(token) == {"api_key": "s3cret"}
    fresh = rotated.rotated(token)
    assert fresh is not None
    assert CredentialCipher([new]).decrypt(fresh) == {"api_key": "s3cret"}
    assert rotated.rotated(fresh) is None
    with pytest.raises(UndecryptableSecret):
        CredentialCipher([new]).decrypt(token)


def test_bad_secret_key_is_refused() -> None:
    with pytest.raises(SecretKeyError, match="Fernet"):
        CredentialCipher(["not-a-key"])


def test_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_keys(None, tmp_path / "data")
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_keys(None, tmp_path / "data") == first
    assert load_or_create_keys("a,b", tmp_path / "data") == ["a", "b"]
