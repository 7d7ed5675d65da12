"""Parrotica's endpoint paths: one table of *inferred* defaults, overridable by key.

The rendered docs print only ``GET /api/v1/activity/{userId}``; every other path is a best
guess (``shared/api-docs/README.md``), so an operator can replace any of them with the
``PARROTICA_PATHS`` JSON object, e.g. ``{"messages": "/api/v2/message/{userId}"}``.

Placeholders: ``{userId}`` (the account's User ID) is required in every path; ``{id}`` (a
contact or message id) is required in ``contact`` and ``message`` and allowed nowhere else.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import quote

USER_ID = "userId"
ITEM_ID = "id"

# Key → default path (the methods each key serves are in the api-docs README).
DEFAULT_PATHS: Mapping[str, str] = MappingProxyType(
    {
        "activity": "/api/v1/activity/{userId}",
        "contacts": "/api/v1/contact/{userId}",
        "contact": "/api/v1/contact/{userId}/{id}",
        "contact_summary": "/api/v1/contact/{userId}/summary",
        "groups": "/api/v1/group/{userId}",
        "messages": "/api/v1/message/{userId}",
        "message": "/api/v1/message/{userId}/{id}",
        "reschedule": "/api/v1/message/{userId}/reschedule",
        "senderids": "/api/v1/senderid/{userId}",
        "transactions": "/api/v1/transaction/{userId}",
    }
)

_WITH_ITEM_ID = frozenset({"contact", "message"})


def placeholders(key: str) -> frozenset[str]:
    """The placeholders the path ``key`` must contain (and the only ones it may contain)."""
    return frozenset({USER_ID, ITEM_ID}) if key in _WITH_ITEM_ID else frozenset({USER_ID})


def resolve_paths(overrides: Mapping[str, object] | str | None = None) -> Mapping[str, str]:
    """The full path table: the defaults with ``overrides`` applied by key.

    Args:
        overrides: the ``PARROTICA_PATHS`` JSON object, either as its raw text or already
            parsed; ``None`` or an empty string keeps every default.

    Returns:
        A read-only mapping with every key of :data:`DEFAULT_PATHS`.

    Raises:
        ValueError: the text is not a JSON object, or a key is unknown, or a path is not a
            string starting with ``/``, or it lacks a required placeholder or has a foreign
            one. The message names the key.

    """
    if overrides is None or (isinstance(overrides, str) and not overrides.strip()):
        return DEFAULT_PATHS
    if isinstance(overrides, str):
        try:
            parsed = json.loads(overrides)
        except ValueError as exc:
            raise ValueError(f"PARROTICA_PATHS is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValueError("PARROTICA_PATHS must be a JSON object of key → path.")
        overrides = parsed
    table = dict(DEFAULT_PATHS)
    for key, path in overrides.items():
        table[key] = _checked(key, path)
    return MappingProxyType(table)


def _checked(key: object, path: object) -> str:
    if not isinstance(key, str) or key not in DEFAULT_PATHS:
        known = ", ".join(DEFAULT_PATHS)
        raise ValueError(f"PARROTICA_PATHS: unknown key {key!r} (known keys: {known}).")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"PARROTICA_PATHS[{key!r}] must be a path starting with '/'.")
    try:
        found = {name for _, name, _, _ in string.Formatter().parse(path) if name is not None}
    except ValueError as exc:
        raise ValueError(f"PARROTICA_PATHS[{key!r}] has unbalanced braces: {path!r}.") from exc
    needed = placeholders(key)
    missing = needed - found
    if missing:
        names = ", ".join("{" + name + "}" for name in sorted(missing))
        raise ValueError(f"PARROTICA_PATHS[{key!r}] lacks the placeholder {names}: {path!r}.")
    foreign = found - needed
    if foreign:
        names = ", ".join("{" + name + "}" for name in sorted(foreign))
        raise ValueError(f"PARROTICA_PATHS[{key!r}] may not contain {names}: {path!r}.")
    return path


def fill(path: str, *, user_id: str, item_id: int | None = None) -> str:
    """Put the (URL-quoted) user id and the item id into a path from the table."""
    filled = path.replace("{" + USER_ID + "}", quote(user_id, safe=""))
    if item_id is not None:
        filled = filled.replace("{" + ITEM_ID + "}", str(item_id))
    return filled
