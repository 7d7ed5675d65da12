"""The NusaSMS provider adapter: one object per chat's credentials, routed by channel.

``wa`` goes to the WhatsApp/account API (:class:`providers.nusasms.NusaSmsClient`, keyed by
``api_key``); ``sms`` and ``smsgroup`` go to the SMS v3 API
(:class:`providers.nusasms_sms.NusaSmsSmsClient`, keyed by ``sms_user``). Each API has its own
login, so each has its own per-account limiter; limiters are shared by every chat and every
bulk send using the same login.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import httpx

from i18n import _
from providers.base import (
    AccountInfo,
    Balance,
    Capabilities,
    Cost,
    DeliveryState,
    OutgoingMessage,
    SendResult,
    StatusReport,
)
from providers.errors import AuthError, ValidationError
from providers.nusasms import (
    NAME,
    WA_BALANCE,
    NusaSmsClient,
    NusaSmsSettings,
    pacing_interval,
)
from providers.nusasms_sms import GROUP_NO_REPORT, NusaSmsSmsClient, SmsCredentials
from providers.ratelimit import AccountLimiters

SMS_CHANNELS = frozenset({"sms", "smsgroup"})
GROUP_STATUS = "campaign"


class NusaSms:
    """Everything NusaSMS offers one account: WhatsApp, SMS, balances, number checks."""

    # One recipient per request (WhatsApp and SMS plain); a group send names one group.
    capabilities: ClassVar[Capabilities] = Capabilities(
        number_check=True,
        # The API documents: a WhatsApp text deducts 1 WA credit per 1,500 characters begun,
        # a media message 2. The SMS APIs state no price.
        costs={"wa": Cost(balance=WA_BALANCE, text_chunk=1500, per_media=2.0)},
    )

    def __init__(
        self,
        wa: NusaSmsClient,
        sms: NusaSmsSmsClient | None,
        *,
        sms_half_given: bool = False,
    ) -> None:
        self.wa = wa
        self.sms = sms
        self._sms_half_given = sms_half_given

    async def verify(self) -> AccountInfo:
        """Check the API key, and the SMS login too when one is stored."""
        if self._sms_half_given:
            raise ValidationError(
                _("{provider}: give sms_user and sms_password together (or neither).").format(
                    provider=NAME
                ),
                provider=NAME,
            )
        info = await self.wa.verify()
        if self.sms is None:
            return info
        credits = await self.sms.credits()
        return AccountInfo(
            account=info.account,
            details=_("{details}; SMS API ok ({credits:,.0f} credits)").format(
                details=info.details, credits=credits.amount
            ),
        )

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send on the message's channel: ``wa``, ``sms`` or ``smsgroup``."""
        if message.channel == "wa":
            return await self.wa.send(message)
        if message.channel not in SMS_CHANNELS:
            raise ValidationError(
                _("{provider} has no channel {channel!r}.").format(
                    provider=NAME, channel=message.channel
                ),
                provider=NAME,
            )
        sms = self._sms_client()
        otp = message.options.get("otp", "").upper() == "Y"
        if message.channel == "sms":
            return await sms.send_plain(message.to, message.text, otp=otp)
        return await sms.send_group(message.to, message.text, otp=otp)

    async def status(self, ref: str, *, channel: str) -> StatusReport:
        """Ask where a message is: WhatsApp status, or the SMS delivery report."""
        if channel == "sms":
            return await self._sms_client().delivery_report(ref)
        if channel == "smsgroup":
            # The command API reports per message id; a group send has only a campaign name.
            return StatusReport(
                ref=ref,
                state=DeliveryState.ACCEPTED,
                provider_status=GROUP_STATUS,
                detail=GROUP_NO_REPORT,
            )
        return await self.wa.status(ref, channel=channel)

    async def balances(self) -> list[Balance]:
        """The account's balances, plus the SMS API credits when an SMS login is stored."""
        found = await self.wa.balances()
        if self.sms is not None:
            found.append(await self.sms.credits())
        return found

    async def phone_check(self, numbers: Sequence[str], *, callback_url: str | None) -> None:
        """Submit one batch (≤ 100) of numbers to the WhatsApp number check."""
        await self.wa.phone_check(numbers, callback_url=callback_url)

    async def aclose(self) -> None:
        """Nothing to let go: the clients share the application's HTTP client and pacers."""

    def _sms_client(self) -> NusaSmsSmsClient:
        if self.sms is None:
            raise AuthError(
                _(
                    "{provider} SMS needs sms_user and sms_password: "
                    "/connect nusasms sms_user=… sms_password=…"
                ).format(provider=NAME),
                provider=NAME,
            )
        return self.sms


def build_nusasms(
    http: httpx.AsyncClient,
    creds: Mapping[str, str],
    *,
    limiters: AccountLimiters,
    settings: NusaSmsSettings,
) -> NusaSms:
    """The adapter for stored credentials, with the account limiters it must share."""
    interval, floor = pacing_interval(settings.min_interval), settings.min_interval
    api_key = creds["api_key"]
    wa = NusaSmsClient(
        http,
        api_key=api_key,
        limiter=limiters.get("nusasms", api_key, interval=interval, floor=floor),
        settings=settings,
    )
    user, password = creds.get("sms_user", ""), creds.get("sms_password", "")
    sms = None
    if user and password:
        sms = NusaSmsSmsClient(
            http,
            credentials=SmsCredentials(user, password),
            limiter=limiters.get("nusasms-sms", user, interval=interval, floor=floor),
            settings=settings,
        )
    return NusaSms(wa, sms, sms_half_given=bool(user) != bool(password))
