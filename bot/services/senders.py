"""/senders: the sender identities of a provider account, and which one this chat sends from.

Only providers whose adapter declares ``capabilities.senders`` have them; the choice is stored
as credentials the identity names (``SenderIdentity.stores``), so it travels with the account's
credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from bot.services.accounts import Accounts, provider_spec
from bot.services.errors import BadInput, NotConnected
from i18n import _
from providers.base import SenderDirectory, SenderIdentity
from providers.registry import REGISTRY, ProviderSpec


@dataclass(frozen=True, slots=True)
class SenderChoice:
    """A provider's sender identities and the one the chat sends from now."""

    provider: ProviderSpec
    identities: list[SenderIdentity]
    current: str


def _with_senders() -> list[ProviderSpec]:
    return [spec for spec in REGISTRY.values() if spec.capabilities.senders]


class Senders:
    """Listing and choosing sender identities."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def list(self, chat_id: int, provider: str | None) -> SenderChoice:
        """The identities of the named provider, or of the one connected provider with them.

        Raises:
            BadInput: the provider has no sender identities, or several connected ones do
                and none was named.
            NotConnected: no connected provider has them.

        """
        spec = await self._provider(chat_id, provider)
        directory = await self._directory(chat_id, spec)
        return SenderChoice(spec, await directory.senders(), await directory.sender_id())

    async def choose(self, chat_id: int, provider: str, index: int, *, actor: int) -> SenderChoice:
        """Make identity number ``index`` (of :meth:`list`) the chat's sender; the new state.

        Raises:
            BadInput: the list changed meanwhile, or the identity cannot send (not approved).

        """
        choice = await self.list(chat_id, provider)
        if not 0 <= index < len(choice.identities):
            raise BadInput(_("The list of senders changed; run /senders again."))
        picked = choice.identities[index]
        if not picked.usable:
            raise BadInput(
                _(
                    "{provider} has not approved “{sender}” yet ({status}); pick an approved one."
                ).format(
                    provider=choice.provider.display,
                    sender=escape(picked.value),
                    status=escape(picked.status or _("not usable")),
                )
            )
        spec = choice.provider
        await self._accounts.connect(chat_id, spec.name, picked.stores, actor=actor)
        return SenderChoice(spec, choice.identities, picked.value)

    async def _provider(self, chat_id: int, name: str | None) -> ProviderSpec:
        offering = ", ".join(spec.name for spec in _with_senders())
        if name:
            spec = provider_spec(name)
            if not spec.capabilities.senders:
                raise BadInput(
                    _(
                        "{provider} has no sender identities to pick from "
                        "(providers that do: {offering})."
                    ).format(provider=spec.display, offering=offering)
                )
            return spec
        connected = {c.provider for c in await self._accounts.connected(chat_id)}
        candidates = [spec for spec in _with_senders() if spec.name in connected]
        if not candidates:
            raise NotConnected(
                _(
                    "No connected provider here has sender identities (those that do: {offering})."
                ).format(offering=offering)
            )
        if len(candidates) > 1:
            names = ", ".join(spec.name for spec in candidates)
            raise BadInput(
                _("Name the provider: /senders &lt;provider&gt; ({names}).").format(names=names)
            )
        return candidates[0]

    async def _directory(self, chat_id: int, spec: ProviderSpec) -> SenderDirectory:
        adapter = await self._accounts.adapter(chat_id, spec)
        if not isinstance(adapter, SenderDirectory):  # declared but not built: a bug
            raise BadInput(
                _("{provider} cannot list its senders in this version.").format(
                    provider=spec.display
                )
            )
        return adapter
