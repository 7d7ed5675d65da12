"""The explicit registry of providers and the route syntax ``<provider>[:<channel>]``.

A :class:`ProviderSpec` holds a provider's fixed facts (channels, text limits, credential
fields) and builds an adapter from stored credentials. The registry is a plain dict so what is
supported is readable in one place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from i18n import N_, _
from providers import nusasms_receipts
from providers.base import Capabilities, CredentialField, Provider
from providers.courier import states as courier_states
from providers.courier.adapter import Courier, CourierSettings, build_courier
from providers.courier.facts import MAX_CHANNEL_TEXT
from providers.courier.facts import MAX_TEXT as COURIER_MAX_TEXT
from providers.courier.recipients import (
    RECIPIENT_KINDS as COURIER_RECIPIENTS,
)
from providers.courier.recipients import read_bulk_recipient, read_email_recipient
from providers.nusasms import WA_MEDIA_LIMITS, NusaSmsSettings
from providers.nusasms_adapter import NusaSms, build_nusasms
from providers.parrotica.adapter import (
    RECIPIENT_KINDS as PARROTICA_RECIPIENTS,
)
from providers.parrotica.adapter import (
    Parrotica,
    ParroticaSettings,
    build_parrotica,
)
from providers.parrotica.adapter import read_recipient as parrotica_recipient
from providers.parrotica.paths import resolve_paths
from providers.ratelimit import AccountLimiters, SharedPace
from providers.receipts import InvalidCallback, ReceiptReader, Receipts

# (provider, callback kind) → the reader of its pushed receipts; a provider that pushes
# receipts adds its line here. The webhook server routes and validates exactly these.
RECEIPT_READERS: dict[tuple[str, str], ReceiptReader] = {
    ("nusasms", "status"): nusasms_receipts.read_status,
    ("courier", "status"): courier_states.read_status,
}


def read_receipts(provider: str, kind: str, body: Any) -> Receipts:
    """Reports from one callback.

    Raises:
        InvalidCallback: when no reader knows this callback or the body has no receipt.

    """
    reader = RECEIPT_READERS.get((provider, kind))
    if reader is None:
        raise InvalidCallback(f"no receipt reader for {provider}/{kind}")  # i18n: not shown
    return reader(body)


@dataclass(frozen=True, slots=True)
class ProviderEnvironment:
    """What adapters are built from besides credentials: the shared client and settings."""

    http: httpx.AsyncClient
    limiters: AccountLimiters
    nusasms: NusaSmsSettings = field(default_factory=NusaSmsSettings)
    parrotica: ParroticaSettings = field(default_factory=ParroticaSettings)
    courier: CourierSettings = field(default_factory=CourierSettings)


def provider_environment(
    http: httpx.AsyncClient, settings: Mapping[str, Any], *, shared: SharedPace | None = None
) -> ProviderEnvironment:
    """Every vendor's settings, read from the bot's settings by their COMMANDS.md names.

    ``settings`` is the bot's configuration as a mapping (``Settings.model_dump()``); keys a
    vendor does not find keep that vendor's defaults. ``shared``: the provider accounts'
    pace shared with other replicas (None: this process alone).
    """
    nusasms = NusaSmsSettings()
    parrotica = ParroticaSettings()
    courier = CourierSettings()
    return ProviderEnvironment(
        http=http,
        limiters=AccountLimiters(shared),
        nusasms=NusaSmsSettings(
            base_url=settings.get("nusasms_base_url", nusasms.base_url),
            sms_base_url=settings.get("nusasms_sms_base_url", nusasms.sms_base_url),
            min_interval=settings.get("nusasms_min_interval", nusasms.min_interval),
            wa_sender=settings.get("nusasms_wa_sender", nusasms.wa_sender),
        ),
        parrotica=ParroticaSettings(
            base_url=settings.get("parrotica_base_url", parrotica.base_url),
            paths=resolve_paths(settings.get("parrotica_paths")),
        ),
        courier=CourierSettings(
            base_url=settings.get("courier_base_url", courier.base_url),
            identity_url=settings.get("courier_identity_url", courier.identity_url),
            min_interval=settings.get("courier_min_interval", courier.min_interval),
        ),
    )


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One way a provider sends (``wa``, ``sms`` ...)."""

    name: str
    description: str
    max_text: int
    media: bool = False
    # File extension → the largest file (bytes) the channel takes as media; empty: no media.
    media_limits: Mapping[str, int] = field(default_factory=dict)
    phone_recipients: bool = True
    # Credential keys this channel needs beyond the provider's required ones.
    credentials: tuple[str, ...] = ()
    # ``--name`` flags /send accepts on this channel (``--otp``).
    options: tuple[str, ...] = ()
    # The text goes out as SMS, so its GSM-7/UCS-2 segments are shown.
    sms: bool = False
    # The provider reports per-message delivery on this channel; when it does not (a
    # campaign), there is nothing to poll and no reason to call the message expired.
    reports_delivery: bool = True
    # Recipient kinds written ``<kind>:<id>`` besides numbers (Parrotica: contact, group).
    recipient_kinds: tuple[str, ...] = ()
    # Reads one typed recipient that is not a plain phone number: returns it as the adapter
    # takes it, None for "a phone number, read it as one", or raises ``ValueError`` whose
    # text tells the user what is wrong. Without it, a ``phone_recipients`` channel reads
    # numbers and any other channel takes the text as typed (a provider group name).
    read_recipient: Callable[[str], str | None] | None = None
    # What the recipients are, for usage lines and errors ("numbers", "e-mail addresses"):
    # marked ``N_`` here, translated where a chat is shown it.
    recipient_noun: str = N_("phone numbers")
    # The text is ``<subject> | <body>``: the subject goes out as the ``SUBJECT`` option.
    subject: bool = False
    # Reached only through this command (``multicast``), never as a /send or /use route.
    command: str = ""
    # Recipients that stand for a group the provider expands (so a send to one may reach any
    # number of people): every recipient (``recipient_groups``), or those written
    # ``<kind>:<id>`` with a kind in ``group_kinds``.
    recipient_groups: bool = False
    group_kinds: tuple[str, ...] = ()

    def names_group(self, recipient: str) -> bool:
        """Whether a recipient (as the channel reads it) is a provider-side group."""
        if self.recipient_groups:
            return True
        kind, sep, _rest = recipient.partition(":")
        return bool(sep) and kind.lower() in self.group_kinds


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider's fixed facts and how to build its adapter."""

    name: str
    display: str
    channels: tuple[ChannelSpec, ...]
    credentials: tuple[CredentialField, ...]
    build: Callable[[ProviderEnvironment, Mapping[str, str]], Provider]
    check_key: str
    capabilities: Capabilities  # the adapter class's own declaration

    @property
    def default_channel(self) -> ChannelSpec:
        """The channel a bare provider name means."""
        return self.channels[0]

    def channel(self, name: str) -> ChannelSpec | None:
        """The channel called ``name``, if the provider has one."""
        return next((c for c in self.channels if c.name == name), None)


@dataclass(frozen=True, slots=True)
class Route:
    """A resolved ``<provider>:<channel>``."""

    provider: ProviderSpec
    channel: ChannelSpec

    def __str__(self) -> str:
        return f"{self.provider.name}:{self.channel.name}"


class UnknownRoute(ValueError):
    """The text is not a route this bot knows; the message lists what is."""


def _build_nusasms(env: ProviderEnvironment, creds: Mapping[str, str]) -> Provider:
    return build_nusasms(env.http, creds, limiters=env.limiters, settings=env.nusasms)


_SMS_LOGIN = ("sms_user", "sms_password")
# One SMS part is 153 GSM-7 characters; /send refuses more than 10 parts (see segments).
_SMS_MAX_TEXT = 1530


NUSASMS = ProviderSpec(
    name="nusasms",
    display="NusaSMS",
    channels=(
        ChannelSpec(
            "wa",
            N_("WhatsApp message, or media when replying to a file"),
            4096,
            True,
            media_limits=WA_MEDIA_LIMITS,
        ),
        ChannelSpec(
            "sms",
            N_("SMS v3 plain"),
            _SMS_MAX_TEXT,
            credentials=_SMS_LOGIN,
            options=("otp",),
            sms=True,
        ),
        ChannelSpec(
            "smsgroup",
            N_("SMS v3 to an address-book group (the recipient is the group's name)"),
            _SMS_MAX_TEXT,
            phone_recipients=False,
            credentials=_SMS_LOGIN,
            options=("otp",),
            sms=True,
            reports_delivery=False,
            recipient_noun=N_("group names"),
            recipient_groups=True,
        ),
    ),
    credentials=(
        CredentialField("api_key", N_("the NusaSMS API key (app.nusasms.com → Account → User)")),
        CredentialField("sms_user", N_("the SMS v3 API user name"), required=False, secret=False),
        CredentialField("sms_password", N_("the SMS v3 API password"), required=False),
    ),
    build=_build_nusasms,
    check_key="api_key",
    capabilities=NusaSms.capabilities,
)


def _build_parrotica(env: ProviderEnvironment, creds: Mapping[str, str]) -> Provider:
    return build_parrotica(env.http, creds, settings=env.parrotica)


PARROTICA = ProviderSpec(
    name="parrotica",
    display="Parrotica",
    channels=(
        ChannelSpec(
            "sms",
            N_("SMS to numbers, contact:<id> and group:<id> (address book)"),
            _SMS_MAX_TEXT,
            sms=True,
            recipient_kinds=PARROTICA_RECIPIENTS,
            read_recipient=parrotica_recipient,
            group_kinds=("group",),
        ),
    ),
    credentials=(
        CredentialField("api_key", N_("the Parrotica API key (x-api-key)")),
        CredentialField("user_id", N_("the account's User ID"), secret=False),
        CredentialField(
            "sender_id", N_("the sender ID to send from (/senders)"), required=False, secret=False
        ),
    ),
    build=_build_parrotica,
    check_key="api_key",
    capabilities=Parrotica.capabilities,
)


def _build_courier(env: ProviderEnvironment, creds: Mapping[str, str]) -> Provider:
    return build_courier(env.http, creds, settings=env.courier, limiters=env.limiters)


COURIER = ProviderSpec(
    name="courier",
    display="courier",
    channels=(
        ChannelSpec(
            "sms", N_("SMS (courier texts) from the account's number"), COURIER_MAX_TEXT, sms=True
        ),
        ChannelSpec(
            "bulk",
            N_("one message to individual:<id> and group:<id> channels (a bare id: individual)"),
            MAX_CHANNEL_TEXT,
            phone_recipients=False,
            # Its GET says only "posted": no per-recipient delivery to poll for.
            reports_delivery=False,
            recipient_kinds=COURIER_RECIPIENTS,
            read_recipient=read_bulk_recipient,
            recipient_noun=N_("individual or group ids"),
            group_kinds=("group",),
        ),
        ChannelSpec(
            "email",
            N_("e-mail: <address> <subject> | <body>"),
            MAX_CHANNEL_TEXT,
            phone_recipients=False,
            # courier has no GET for one e-mail: nothing to poll.
            reports_delivery=False,
            read_recipient=read_email_recipient,
            recipient_noun=N_("e-mail addresses"),
            subject=True,
        ),
        ChannelSpec(
            "multicast",
            N_("template broadcast to an audience (/multicast)"),
            MAX_CHANNEL_TEXT,
            phone_recipients=False,
            # A broadcast's status is the job's; it reports no recipient's delivery.
            reports_delivery=False,
            command="multicast",
        ),
    ),
    credentials=(
        CredentialField("username", N_("the courier (Carium) user name"), secret=False),
        CredentialField("password", N_("the courier user's password")),
        CredentialField(
            "organization_id", N_("the organization id (a UUID) to send for"), secret=False
        ),
        CredentialField(
            "account_id",
            N_("the text account id (found for you when left out)"),
            required=False,
            secret=False,
        ),
        CredentialField(
            "number_id",
            N_("the number id to text from (/senders courier)"),
            required=False,
            secret=False,
        ),
    ),
    build=_build_courier,
    check_key="password",
    capabilities=Courier.capabilities,
)

REGISTRY: dict[str, ProviderSpec] = {
    NUSASMS.name: NUSASMS,
    PARROTICA.name: PARROTICA,
    COURIER.name: COURIER,
}

OTHER_PROVIDER = "other"  # a URL no provider's base matches (a metrics label)


def provider_of_url(env: ProviderEnvironment) -> Callable[[httpx.URL], str]:
    """The registry name of the provider a request goes to, from the configured base URLs.

    For labels (metrics): the shared client serves every provider, and a request knows only
    its URL. The longest matching base wins; a URL under none is :data:`OTHER_PROVIDER`.
    """
    bases = [
        (env.nusasms.base_url, NUSASMS.name),
        (env.nusasms.sms_base_url, NUSASMS.name),
        (env.parrotica.base_url, PARROTICA.name),
        (env.courier.base_url, COURIER.name),
        (env.courier.identity_url, COURIER.name),
    ]
    ordered = sorted(((b.rstrip("/"), n) for b, n in bases), key=lambda b: -len(b[0]))

    def provider_of(url: httpx.URL) -> str:
        text = str(url)
        for base, name in ordered:
            if text.startswith(base):
                return name
        return OTHER_PROVIDER

    return provider_of


class AdapterPool:
    """One adapter per connected account: built on first use, kept, closed at shutdown.

    Keyed by the provider and a hash of the credentials (never the credentials themselves), so
    chats sharing an account share its adapter, and new credentials get a new one.
    """

    MAX_ADAPTERS = 4096

    def __init__(self, env: ProviderEnvironment) -> None:
        self._env = env
        self._adapters: dict[str, Provider] = {}

    async def get(self, spec: ProviderSpec, credentials: Mapping[str, str]) -> Provider:
        """The account's adapter, built the first time it is asked for."""
        key = _account_key(spec, credentials)
        adapter = self._adapters.get(key)
        if adapter is None:
            if len(self._adapters) >= self.MAX_ADAPTERS:
                await self._adapters.pop(next(iter(self._adapters))).aclose()
            adapter = self._adapters[key] = spec.build(self._env, credentials)
        return adapter

    async def forget(self, spec: ProviderSpec, credentials: Mapping[str, str]) -> None:
        """Close and drop an account's adapter (its credentials were refused or removed)."""
        adapter = self._adapters.pop(_account_key(spec, credentials), None)
        if adapter is not None:
            await adapter.aclose()

    async def close(self) -> None:
        """Close every adapter (at shutdown)."""
        adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()


def _account_key(spec: ProviderSpec, credentials: Mapping[str, str]) -> str:
    blob = json.dumps(sorted(credentials.items())).encode()
    return f"{spec.name}:{hashlib.sha256(blob).hexdigest()}"


def untracked_channels() -> frozenset[tuple[str, str]]:
    """(provider, channel) pairs without per-message delivery reports: never polled."""
    return frozenset(
        (p.name, c.name) for p in REGISTRY.values() for c in p.channels if not c.reports_delivery
    )


def all_route_specs() -> list[Route]:
    """Every /send route the bot knows, in registry order (command-only channels left out)."""
    return [Route(p, c) for p in REGISTRY.values() for c in p.channels if not c.command]


def command_route(command: str) -> list[Route]:
    """The channels reached only through ``/command`` (e.g. multicast), in registry order."""
    return [Route(p, c) for p in REGISTRY.values() for c in p.channels if c.command == command]


def example_route() -> Route:
    """The first provider's default route: what usage examples in chat show."""
    spec = next(iter(REGISTRY.values()))
    return Route(spec, spec.default_channel)


def provider_names() -> str:
    """The registry's provider names as one comma-separated list, in registry order."""
    return ", ".join(REGISTRY)


def media_route() -> Route | None:
    """The first route in registry order that carries files (named when another cannot)."""
    return next(
        (Route(p, c) for p in REGISTRY.values() for c in p.channels if c.media_limits), None
    )


def all_routes() -> list[str]:
    """Every route the bot knows, in registry order."""
    return [str(r) for r in all_route_specs()]


def _typed(name: str, limit: int = 32) -> str:
    """A mistyped name as a refusal repeats it: clipped, so a long paste keeps it short."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def parse_route(text: str) -> Route:
    """Resolve ``provider`` or ``provider:channel`` (case-insensitive).

    Raises:
        UnknownRoute: with a message naming the known routes.

    """
    provider_name, _sep, channel_name = text.strip().lower().partition(":")
    spec = REGISTRY.get(provider_name)
    if spec is None:
        raise UnknownRoute(
            _("Unknown provider “{name}”. Known routes: {routes}.").format(
                name=_typed(provider_name), routes=", ".join(all_routes())
            )
        )
    if not channel_name:
        return Route(spec, spec.default_channel)
    channel = spec.channel(channel_name)
    if channel is None or channel.command:
        names = ", ".join(f"{spec.name}:{c.name}" for c in spec.channels if not c.command)
        unknown = (
            _(
                "{provider} has no channel “{channel}” ({route} is sent with /{command}). "
                "Try {names}."
            )
            if channel
            else _("{provider} has no channel “{channel}”. Try {names}.")
        )
        raise UnknownRoute(
            unknown.format(
                provider=spec.display,
                channel=_typed(channel_name),
                route=f"{spec.name}:{channel.name}" if channel else "",
                command=channel.command if channel else "",
                names=names,
            )
        )
    return Route(spec, channel)


# Recipients that carry a prefix of their own (address book ids), from every channel.
RECIPIENT_PREFIXES = frozenset(
    kind for p in REGISTRY.values() for c in p.channels for kind in c.recipient_kinds
)


def looks_like_route(text: str) -> bool:
    """Whether a /send argument names a route rather than a recipient.

    ``nusasms``, ``nusasms:wa`` and ``foo:bar`` (an unknown provider) are routes;
    ``6281...``, ``+62 ...`` and ``contact:12`` are recipients.
    """
    head, sep, _rest = text.partition(":")
    head = head.lower()
    if head in REGISTRY:
        return True
    return bool(sep) and head.isalpha() and head not in RECIPIENT_PREFIXES
