"""Parrotica (SMS): the HTTP client, its vendor facts and status table.

- :mod:`providers.parrotica.paths`: the *inferred* endpoint table and ``PARROTICA_PATHS``;
- :mod:`providers.parrotica.facts`: envelope rule, ids, times, recipients per request;
- :mod:`providers.parrotica.states`: ``state``/``status`` words → ``DeliveryState``;
- :mod:`providers.parrotica.models`: the typed results;
- :mod:`providers.parrotica.answers`: ``x-api-key`` auth, envelope reading, error mapping;
- :mod:`providers.parrotica.client`: :class:`ParroticaClient`.

The bot does not use it yet: an adapter behind :class:`providers.base.Provider` comes next.
"""

from __future__ import annotations

from providers.parrotica.answers import ApiKeyAuth
from providers.parrotica.client import ParroticaClient
from providers.parrotica.facts import MAX_RECIPIENTS_PER_REQUEST, NAME, Recipients
from providers.parrotica.models import (
    Ack,
    Activity,
    Contact,
    ContactSummary,
    Group,
    IdSource,
    Message,
    Page,
    SenderId,
    SendOutcome,
    Transaction,
)
from providers.parrotica.paths import DEFAULT_PATHS, resolve_paths
from providers.parrotica.states import MESSAGE_STATES, StateReading, read_state

__all__ = [
    "DEFAULT_PATHS",
    "MAX_RECIPIENTS_PER_REQUEST",
    "MESSAGE_STATES",
    "NAME",
    "Ack",
    "Activity",
    "ApiKeyAuth",
    "Contact",
    "ContactSummary",
    "Group",
    "IdSource",
    "Message",
    "Page",
    "ParroticaClient",
    "Recipients",
    "SendOutcome",
    "SenderId",
    "StateReading",
    "Transaction",
    "read_state",
    "resolve_paths",
]
