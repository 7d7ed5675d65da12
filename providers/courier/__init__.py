"""courier (Carium's JSON:API communications service): texts, bulk messages, e-mail, multicasts.

One module per job:

- :mod:`providers.courier.facts`: name, limits, UUID ids, E.164, the multicast audience shape;
- :mod:`providers.courier.paths`: the path table (trailing slashes kept), overridable by key;
- :mod:`providers.courier.states`: status words per resource → ``DeliveryState``, and the
  ``callback-status-url`` reader;
- :mod:`providers.courier.jsonapi`: documents, answers, JSON:API errors, paging;
- :mod:`providers.courier.auth`: the identity login as an ``httpx.Auth`` (Bearer token);
- :mod:`providers.courier.models`: the typed resources;
- :mod:`providers.courier.client`: :class:`CourierClient`, one method per call;
- :mod:`providers.courier.recipients`: bulk and e-mail recipients typed in the chat;
- :mod:`providers.courier.adapter`: :class:`Courier`, behind :class:`providers.base.Provider`.
"""

from __future__ import annotations

from providers.courier.adapter import Courier, CourierSettings, build_courier
from providers.courier.auth import CourierLogin
from providers.courier.client import CourierClient
from providers.courier.facts import MAX_BULK_RECIPIENTS, MAX_TEXT, NAME
from providers.courier.recipients import (
    RECIPIENT_KINDS,
    read_bulk_recipient,
    read_email_recipient,
)
from providers.courier.states import read_status

__all__ = [
    "MAX_BULK_RECIPIENTS",
    "MAX_TEXT",
    "NAME",
    "RECIPIENT_KINDS",
    "Courier",
    "CourierClient",
    "CourierLogin",
    "CourierSettings",
    "build_courier",
    "read_bulk_recipient",
    "read_email_recipient",
    "read_status",
]
