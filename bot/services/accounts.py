"""Connecting providers: verify credentials, store them encrypted, build adapters from them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.services.errors import BadInput, NotConnected, echo
from i18n import _
from providers.base import AccountInfo, Balance, BalanceKind, Provider
from providers.errors import AuthError, ProviderError
from providers.registry import (
    REGISTRY,
    AdapterPool,
    ChannelSpec,
    ProviderEnvironment,
    ProviderSpec,
    provider_names,
)
from storage.crypto import CredentialCipher, UndecryptableSecret
from storage.models import Credential
from storage.repo import Repository

log = logging.getLogger(__name__)

PLAIN_CACHE = 1024  # decrypted credentials kept per ciphertext (a send decrypts every time)


@dataclass(frozen=True, slots=True)
class BalanceReport:
    """The balances of one provider, or why they could not be read."""

    provider: ProviderSpec
    balances: list[Balance]
    error: str = ""


def provider_spec(name: str) -> ProviderSpec:
    """The registry entry for a provider name typed by a user.

    Raises:
        BadInput: naming the providers that exist.

    """
    spec = REGISTRY.get(name.strip().lower())
    if spec is None:
        raise BadInput(
            _("Unknown provider “{name}”. Known providers: {known}.").format(
                name=echo(name), known=", ".join(REGISTRY)
            )
        )
    return spec


def check_fields(spec: ProviderSpec, values: Mapping[str, str]) -> None:
    """Refuse unknown keys and empty values before anything is sent anywhere."""
    known = {f.key for f in spec.credentials}
    if set(values) - known:
        # Not named: a key typed without "=" (a base64 key ending in "==") is the secret.
        raise BadInput(
            _("{provider} does not take one of these keys. Its keys are: {keys}.").format(
                provider=spec.display, keys=", ".join(f.key for f in spec.credentials)
            )
        )
    empty = sorted(k for k, v in values.items() if not v.strip())
    if empty:
        raise BadInput(_("These keys have no value: {keys}.").format(keys=", ".join(empty)))


class Accounts:
    """Credential use-cases for every provider."""

    def __init__(
        self, repo: Repository, cipher: CredentialCipher, env: ProviderEnvironment
    ) -> None:
        self._repo = repo
        self._cipher = cipher
        self._adapters = AdapterPool(env)
        self._plain: dict[bytes, dict[str, str]] = {}

    async def connect(
        self, chat_id: int, provider: str, values: Mapping[str, str], *, actor: int
    ) -> AccountInfo:
        """Verify credentials with the provider, then store them encrypted for the chat.

        Values given here are merged over the ones already stored, so the optional keys can be
        added later. Nothing is stored when the provider refuses them.
        """
        spec = provider_spec(provider)
        check_fields(spec, values)
        merged = dict(await self.stored_values(chat_id, spec))
        merged.update({k: v.strip() for k, v in values.items()})
        missing = [f.key for f in spec.credentials if f.required and not merged.get(f.key)]
        if missing:
            raise BadInput(
                _("{provider} needs {keys}.").format(
                    provider=spec.display, keys=", ".join(missing)
                )
            )
        adapter = await self._adapters.get(spec, merged)
        try:
            info = await adapter.verify()
        except ProviderError as exc:
            await self._adapters.forget(spec, merged)
            if not isinstance(exc, AuthError):
                raise
            raise AuthError(
                _(
                    "{provider} refused these credentials, so nothing was stored. ({reason})"
                ).format(provider=spec.display, reason=exc.message),
                provider=spec.display,
            ) from exc
        await self._repo.save_credential(
            chat_id,
            spec.name,
            secret=self._cipher.encrypt(merged),
            account=info.account,
            actor=actor,
        )
        chat = await self._repo.get_chat(chat_id)
        if chat is not None and not chat.default_route:
            await self._repo.update_chat(
                chat_id, default_route=f"{spec.name}:{spec.default_channel.name}"
            )
        await self._repo.audit(chat_id, actor, "connect", spec.name)
        return info

    async def disconnect(self, chat_id: int, provider: str, *, actor: int) -> ProviderSpec:
        """Forget a provider's credentials in this chat."""
        spec = provider_spec(provider)
        try:
            values = await self.stored_values(chat_id, spec)
        except NotConnected:  # undecryptable: no adapter was built from it; the row still goes
            values = {}
        if not await self._repo.delete_credential(chat_id, spec.name):
            raise NotConnected(
                _("{provider} is not connected in this chat.").format(provider=spec.display)
            )
        if values:  # built again on next use should another chat share the account
            await self._adapters.forget(spec, values)
        chat = await self._repo.get_chat(chat_id)
        if chat is not None and chat.default_route:
            # Its routes leave the chain; the others keep their order.
            kept = [r for r in chat.default_route.split(",") if r.split(":")[0] != spec.name]
            if len(kept) != len(chat.default_route.split(",")):
                await self._repo.update_chat(chat_id, default_route=",".join(kept) or None)
        await self._repo.audit(chat_id, actor, "disconnect", spec.name)
        return spec

    async def is_connected(self, chat_id: int, provider: str) -> bool:
        """Whether the chat has stored credentials for this provider."""
        return await self._repo.get_credential(chat_id, provider) is not None

    async def connected(self, chat_id: int) -> list[Credential]:
        """The chat's connected providers with their last check."""
        return await self._repo.list_credentials(chat_id)

    async def stored_values(self, chat_id: int, spec: ProviderSpec) -> dict[str, str]:
        """Decrypted credentials, or an empty dict when none are stored."""
        cred = await self._repo.get_credential(chat_id, spec.name)
        if cred is None:
            return {}
        known = self._plain.get(cred.secret)
        if known is not None:
            return dict(known)
        try:
            values = self._cipher.decrypt(cred.secret)
        except UndecryptableSecret as exc:
            raise NotConnected(
                _(
                    "The stored {provider} credentials cannot be decrypted (was SECRET_KEY "
                    "changed?). Connect again with /connect {name}."
                ).format(provider=spec.display, name=spec.name)
            ) from exc
        # Keyed by the ciphertext: new credentials (or a rotated key) are a new entry.
        if len(self._plain) >= PLAIN_CACHE:
            self._plain.pop(next(iter(self._plain)))
        self._plain[cred.secret] = values
        return dict(values)

    async def adapter(
        self, chat_id: int, spec: ProviderSpec, *, channel: ChannelSpec | None = None
    ) -> Provider:
        """A ready adapter with this chat's credentials (one read, one decryption).

        Raises:
            NotConnected: when the chat has none, or lacks the extra credentials ``channel``
                needs, saying how to add them.

        """
        values = await self.stored_values(chat_id, spec)
        if not values:
            raise NotConnected(
                _(
                    "{provider} is not connected in this chat. "
                    "An admin can connect it with /connect {name}."
                ).format(provider=spec.display, name=spec.name)
            )
        missing = [k for k in channel.credentials if not values.get(k)] if channel else []
        if missing:
            pairs = " ".join(f"{k}=…" for k in missing)
            raise NotConnected(
                _(
                    "{route} needs {keys}, which this chat has not stored. An admin can add "
                    "them with /connect {name} {pairs} (keys already stored are kept)."
                ).format(
                    route=f"{spec.name}:{channel.name if channel else ''}",
                    keys=", ".join(missing),
                    name=spec.name,
                    pairs=pairs,
                )
            )
        return await self._adapters.get(spec, values)

    async def balances(self, chat_id: int, provider: str | None) -> list[BalanceReport]:
        """Balances of one provider, or of every connected one (failures reported inline)."""
        if provider:
            specs = [provider_spec(provider)]
        else:
            specs = [
                REGISTRY[c.provider]
                for c in await self.connected(chat_id)
                if c.provider in REGISTRY
            ]
            if not specs:
                raise NotConnected(
                    _(
                        "No provider is connected in this chat. Connect one with "
                        "/connect &lt;provider&gt; ({names})."
                    ).format(names=provider_names())
                )
        reports = []
        for spec in specs:
            if spec.capabilities.balance == BalanceKind.NONE:  # nothing to ask
                reports.append(BalanceReport(spec, []))
                continue
            adapter = await self.adapter(chat_id, spec)
            try:
                reports.append(BalanceReport(spec, await adapter.balances()))
            except ProviderError as exc:
                if provider:
                    raise
                reports.append(BalanceReport(spec, [], error=exc.message))
            await self._repo.record_check(
                chat_id, spec.name, ok=not reports[-1].error, detail=reports[-1].error
            )
        return reports

    async def close(self) -> None:
        """Close every account's adapter (at shutdown)."""
        await self._adapters.close()

    async def rotate_keys(self) -> int:
        """Re-encrypt every stored credential under the newest key; returns the count."""
        return (await rotate_credentials(self._repo, self._cipher)).rotated


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What a key rotation did: credentials re-encrypted, and those no configured key reads."""

    rotated: int
    unreadable: int


async def rotate_credentials(repo: Repository, cipher: CredentialCipher) -> KeyRotation:
    """Re-encrypt every stored credential under the cipher's newest key, in one transaction.

    Run at every start and by ``chatops-bridge rotate-keys``. Credentials no configured key
    can read are left as they are (and logged): dropping an old key too early loses nothing.
    """
    rotated: dict[int, bytes] = {}
    unreadable = 0
    for cred in await repo.all_credentials():
        try:
            new = cipher.rotated(cred.secret)
        except UndecryptableSecret:
            log.warning("credentials %s of chat %s cannot be decrypted", cred.id, cred.chat_id)
            unreadable += 1
            continue
        if cred.id is not None and new is not None:
            rotated[cred.id] = new
    if rotated:
        await repo.replace_secrets(rotated)
    return KeyRotation(len(rotated), unreadable)
