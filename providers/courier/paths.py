"""courier's endpoint paths: one table, relative to ``COURIER_BASE_URL``, trailing slashes kept.

Every path but two is printed in ``courier.txt``. The rendering dropped the headings of the
single-item reads, so ``text`` (``GET /v1/texts/{id}/``, named by the api-docs README) and
``organization`` (``GET /v1/organizations/{id}/``, whose 200 sample follows the list's) are
*inferred*; :func:`resolve_paths` lets a deployment replace any entry by key
(``CourierSettings.paths``). The documented paths end in ``/`` and the shared client follows
no redirects, so the slashes are kept exactly as printed.

The login is not courier's: it lives on the identity service (``COURIER_IDENTITY_URL``) at
:data:`LOGIN_PATH`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import quote

LOGIN_PATH = "/v1/login/"

# Key → path; keys with ``{id}`` take one item's id.
DEFAULT_PATHS: Mapping[str, str] = MappingProxyType(
    {
        "organizations": "/v1/organizations/",
        "organization": "/v1/organizations/{id}/",
        "text_accounts": "/v1/text-accounts/",
        "text_numbers": "/v1/text-account-numbers/",
        "texts": "/v1/texts/",
        "text": "/v1/texts/{id}/",
        "bulk_messages": "/v1/messaging-bulk-messages/",
        "bulk_message": "/v1/messaging-bulk-messages/{id}/",
        "multicasts": "/v1/multicasts/",
        "multicast": "/v1/multicasts/{id}/",
        "emails": "/v1/user-emails/",
        "email_send": "/v1/user-emails/{id}/send/",
    }
)

ITEM = "{id}"


def resolve_paths(overrides: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The path table with ``overrides`` applied by key.

    Raises:
        ValueError: an unknown key, a path not starting with ``/``, or one that gains or
            loses the ``{id}`` placeholder of its key. The message names the key.

    """
    if not overrides:
        return DEFAULT_PATHS
    table = dict(DEFAULT_PATHS)
    for key, path in overrides.items():
        if key not in DEFAULT_PATHS:
            raise ValueError(f"unknown courier path key {key!r} (known: {', '.join(table)})")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"courier path {key!r} must start with '/': {path!r}")
        if (ITEM in path) != (ITEM in DEFAULT_PATHS[key]):
            # A start-up error in COURIER_PATHS, for whoever runs the bot.
            needs = "needs" if ITEM in DEFAULT_PATHS[key] else "may not contain"  # i18n: not shown
            raise ValueError(f"courier path {key!r} {needs} {ITEM}: {path!r}")
        table[key] = path
    return MappingProxyType(table)


def fill(path: str, item_id: str | None = None) -> str:
    """A path from the table with its (URL-quoted) item id put in."""
    if item_id is None:
        return path
    return path.replace(ITEM, quote(item_id, safe=""))
