"""Splitting command text into arguments without losing the message's own layout.

``context.args`` splits on every space and drops newlines; a message body must keep them, so
commands take their leading arguments here and keep the rest as typed. Invisible characters
that come with pasted text (zero-width spaces, byte-order marks, bidi marks) are dropped here,
once, so a route or a number with a zero-width space inside reads as the one the user sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from providers.registry import RECIPIENT_PREFIXES

_TOKEN = re.compile(r"\S+")
# NUL (which PostgreSQL cannot store in text), zero-width space, word joiner, byte-order mark,
# and the bidi marks, embeddings, overrides and isolates: never part of what the user meant.
_INVISIBLE = re.compile(r"[\x00\u200b\u2060\ufeff\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
# Zero-width (non-)joiners join emoji sequences and some scripts' letters, so they stay between
# two non-ASCII characters (the message text) and go anywhere else (routes, numbers, ids).
_STRAY_JOINER = re.compile(r"(?<![^\x00-\x7f])[\u200c\u200d]|[\u200c\u200d](?![^\x00-\x7f])")
_PHONE_PIECE = re.compile(r"^[+\d()\-.,]+$")
MAX_PIECES_PER_NUMBER = 6
# A recipient written ``<kind>:<id>`` (``list:customers``, ``contact:12``) in a list of them.
_KINDS = "|".join(sorted(RECIPIENT_PREFIXES | {"list"}))
_NAMED = re.compile(rf"^(?:{_KINDS}):\S+$", re.IGNORECASE)


def command_body(text: str) -> str:
    """The text after ``/command`` (or ``/command@bot``), leading spaces and invisibles removed."""
    visible = _STRAY_JOINER.sub("", _INVISIBLE.sub("", text))
    match = re.match(r"^/\S+", visible)
    return visible[match.end() :].lstrip() if match else visible.strip()


def take_token(body: str) -> tuple[str, str]:
    """The first whitespace-separated token and the rest, as typed (newlines kept)."""
    match = _TOKEN.search(body)
    if match is None:
        return "", ""
    return match.group(), body[match.end() :].lstrip()


def take_recipients(body: str, is_complete: Callable[[str], bool]) -> tuple[list[str], str]:
    """Read ``<to>[,<to>...]`` from the start of ``body``; return recipients and the text.

    A number may be written with spaces (``+62 812 3456 7890``): pieces are joined while the
    number so far is not complete (``is_complete``) and the next piece looks like part of a
    number; a comma starts the next recipient.
    """
    recipients: list[str] = []
    current = ""
    rest = body
    pieces = 0
    while True:
        token, after = take_token(rest)
        if not token or not _PHONE_PIECE.match(token):
            named = token and (not current or current.endswith(",")) and _named(token)
            if named and (token.endswith(",") or take_token(after)[0].startswith(",")):
                # "list:a, 628…" / "628…, list:a, 628…": the list goes on after the comma.
                current, rest, pieces = current + token, after, 0
                continue
            if named and current:  # "628…, list:a Hi": the last recipient
                current, rest = current + token, after
                break
            if not current and not recipients and token:
                # Not a number at all (a name, a contact:id): one token is the recipient list.
                recipients.extend(t for t in token.split(",") if t)
                return recipients, after
            break
        complete = is_complete(current.rsplit(",", 1)[-1]) or pieces >= MAX_PIECES_PER_NUMBER
        if current and complete and not current.endswith(",") and not token.startswith(","):
            break
        current = (
            f"{current} {token}".strip()
            if current and not current.endswith(",")
            else (current + token)
        )
        pieces += 1
        rest = after
        if current.endswith(","):
            pieces = 0
            continue
        last = current.rsplit(",", 1)[-1]
        if "," in token:
            pieces = 1
        if is_complete(last) and not token.endswith(","):
            # Lookahead: a following token that starts with ',' continues the list.
            nxt, _ = take_token(rest)
            if not nxt.startswith(","):
                break
    recipients.extend(p.strip() for p in current.split(",") if p.strip())
    return recipients, rest


def _named(token: str) -> bool:
    """Whether every comma-separated part of ``token`` is a ``kind:id`` or number piece."""
    parts = [p for p in token.split(",") if p]
    return bool(parts) and all(_NAMED.match(p) or _PHONE_PIECE.match(p) for p in parts)


def parse_pairs(body: str) -> dict[str, str]:
    """``k=v k2=v2`` into a dict; raises ``ValueError`` for a token without ``=``.

    The error does not name the token: it may be a secret typed without its key.
    """
    values: dict[str, str] = {}
    for token in body.split():
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ValueError("a value is not key=value")
        values[key.strip().lower()] = value
    return values
