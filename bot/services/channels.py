"""Checks a channel needs before a send: its extra credentials and its ``--flag`` options.

Both come from the registry's :class:`providers.registry.ChannelSpec`, so a channel that needs
a second login (an SMS channel's ``sms_user`` / ``sms_password``) or takes ``--otp`` says so in one
place, and a send that cannot work is refused before any message is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.services.accounts import Accounts
from bot.services.errors import BadInput, echo
from i18n import _
from providers.registry import REGISTRY, Route

FLAG_VALUES = {"otp": "Y"}


def channel_options(route: Route, flags: Sequence[str]) -> dict[str, str]:
    """Turn ``--otp``-style flags into provider options, refusing what the route lacks."""
    options: dict[str, str] = {}
    for flag in flags:
        name = flag.removeprefix("--").lower()
        if name not in FLAG_VALUES:
            known = ", ".join(f"--{n}" for n in FLAG_VALUES)
            raise BadInput(
                _("Unknown option {flag}. Options: {known} (SMS routes only).").format(
                    flag=echo(flag), known=known
                )
            )
        if name not in route.channel.options:
            raise BadInput(
                _("--{name} does not apply to {route}; it works on {routes}.").format(
                    name=name, route=route, routes=routes_with(name)
                )
            )
        options[name] = FLAG_VALUES[name]
    return options


def routes_with(option: str) -> str:
    """The routes that take ``--option``, for messages."""
    return ", ".join(
        f"{p.name}:{c.name}" for p in REGISTRY.values() for c in p.channels if option in c.options
    )


async def require_channel_credentials(accounts: Accounts, chat_id: int, route: Route) -> None:
    """Refuse a send when the provider, or the channel's extra credentials, are not stored.

    Raises:
        NotConnected: naming what is missing and how to add it.

    """
    await accounts.adapter(chat_id, route.provider, channel=route.channel)
