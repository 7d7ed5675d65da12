"""The courier adapter: one object per connected account, behind :class:`Provider`.

Channels (``message.channel``), each its own courier resource:

- ``sms``: one ``POST /v1/texts/`` per recipient, from the account's chosen number
  (credentials ``account_id``/``number_id``, picked with ``/senders courier``), else the one
  number that can text when the organization has exactly one; numbers go out in E.164.
- ``bulk``: one ``POST /v1/messaging-bulk-messages/`` per call, to ``individual:<id>`` and
  ``group:<id>`` recipients (a :class:`~providers.base.BulkProvider`; every recipient shares
  the bulk message's id as ``ref``).
- ``email``: ``POST /v1/user-emails/`` as a draft, then ``POST /v1/user-emails/{id}/send/``;
  a failure of the second step says the draft exists and was not sent (or may have been,
  when that answer was lost).
- ``multicast``: ``POST /v1/multicasts/`` through :meth:`Courier.multicast` (``/multicast``).

Statuses come from each resource's own GET, except e-mails, which courier offers no way to
look up one by one: their status is the one courier gave when the e-mail was sent, and it
never moves (see :meth:`Courier.status`). Unknown status words are kept verbatim in
``provider_status`` and move nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import httpx

from i18n import N_, _
from providers.base import (
    STATUS_CALLBACK,
    SUBJECT,
    AccountInfo,
    Balance,
    BalanceKind,
    Capabilities,
    DeliveryState,
    Lookup,
    LostSend,
    LostSendAnswer,
    MulticastRequest,
    OutgoingMessage,
    SenderIdentity,
    SendResult,
    StatusReport,
)
from providers.courier.client import CourierClient
from providers.courier.facts import (
    DEFAULT_AUDIENCE,
    MAX_BULK_RECIPIENTS,
    NAME,
    checked_uuid,
    filter_value,
)
from providers.courier.models import TextNumber
from providers.courier.recipients import read_email_recipient, split_bulk
from providers.courier.states import Reading
from providers.errors import (
    AuthError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ValidationError,
)
from providers.ratelimit import AccountLimiters, SlotPacer

ACCOUNT_KEY = "account_id"  # credential keys /senders stores the chosen number under
NUMBER_KEY = "number_id"
SMS, BULK, EMAIL, MULTICAST = "sms", "bulk", "email", "multicast"
# A lost text is looked for among texts to its target created from LOST_SKEW before the bot
# stored it (clocks differ); at most LOST_LOOKUP_MAX of them are read.
LOST_SKEW = timedelta(minutes=2)
LOST_LOOKUP_MAX = 500
EMAILS_REMEMBERED = 1000  # e-mail statuses kept for /status (there is no GET to ask)
# Stored in English as a status detail and translated where a chat shows it (bot/render.py).
NO_EMAIL_LOOKUP = N_(
    "courier offers no look-up of a sent e-mail; this is the status it gave when it was sent"
)


@dataclass(frozen=True, slots=True)
class CourierSettings:
    """What every courier adapter is built with besides credentials.

    ``min_interval`` spaces one account's requests (0: only 429s hold it back, as courier
    documents no rate); ``paths`` overrides the path table by key.
    """

    base_url: str = "https://api.carium.com/courier"
    identity_url: str = "https://api.carium.com/identity"
    min_interval: float = 0.0
    paths: Mapping[str, str] | None = None
    rate_limit_retries: int = 3


class Courier:
    """Everything courier offers one account (a user in one organization)."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        recipients_per_channel={BULK: MAX_BULK_RECIPIENTS},
        senders=True,
        multicast=True,
        balance=BalanceKind.NONE,
        find_lost=True,
    )

    def __init__(
        self,
        client: CourierClient,
        *,
        organization_id: str,
        account_id: str = "",
        number_id: str = "",
    ) -> None:
        self.client = client
        self._org = organization_id.strip().lower()
        self._account = account_id.strip().lower()
        self._number = number_id.strip().lower()
        self._resolved: TextNumber | None = None
        self._emails: OrderedDict[str, Reading] = OrderedDict()

    # -- account ---------------------------------------------------------------------------

    async def verify(self) -> AccountInfo:
        """Log in, check the organization, and say which number texts go from.

        Raises:
            AuthError: a wrong user name or password, or an organization this user cannot
                see — each with its own text.
            ValidationError: the chosen ``account_id``/``number_id`` is malformed or not one
                of the organization's numbers.

        """
        if self._account:
            checked_uuid(self._account, what=N_("text account id"))
        if self._number:
            checked_uuid(self._number, what=N_("number id"))
        info = await self.client.verify(self._org)
        try:
            found = await self._candidates()
        except ProviderError as exc:
            # A chosen number must exist; without one, e-mail and bulk work without numbers.
            if isinstance(exc, AuthError) or self._account or self._number:
                raise
            details = _("{details}; text numbers not listed: {error}")
            return replace(info, details=details.format(details=info.details, error=exc))
        picked = self._pick(found)
        if picked is not None:
            details = (
                _("{details}; texts from {number}")
                if picked.can_text
                else _(
                    "{details}; texts from {number} (it cannot send SMS: pick the number to "
                    "send from with /senders {provider})"
                )
            )
        elif not any(n.can_text for n in found):
            details = _("{details}; no number that can send texts")
        else:
            details = _(
                "{details}; several numbers: pick the number to send from with /senders {provider}"
            )
        return replace(
            info,
            details=details.format(
                details=info.details,
                number=_shown(picked) if picked is not None else "",
                provider=NAME,
            ),
        )

    async def senders(self) -> list[SenderIdentity]:
        """Every number of the organization's text accounts; those without SMS cannot send."""
        return [
            SenderIdentity(
                value=_shown(n),
                stores={ACCOUNT_KEY: n.account_id, NUMBER_KEY: n.id},
                status=n.capabilities,
                usable=n.can_text,
            )
            for n in await self._numbers()
        ]

    async def sender_id(self) -> str:
        """The number texts go from; empty when several could and none is chosen.

        Also empty when the chosen number is gone at courier: /senders must still list the
        numbers so the chat can pick another (a text from it says what is wrong).
        """
        try:
            number = await self._number_choice()
        except ValidationError:
            return ""
        return "" if number is None else _shown(number)

    async def balances(self) -> list[Balance]:
        """None: courier has no balance endpoint (``BalanceKind.NONE``)."""
        return []

    async def aclose(self) -> None:
        """Forget the login token (the HTTP client is shared, not this adapter's)."""
        self.client.auth.forget()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send to one recipient (``message.to``) on ``message.channel``."""
        return (await self.send_many(message, [message.to]))[0]

    async def send_many(
        self, message: OutgoingMessage, recipients: Sequence[str]
    ) -> list[SendResult]:
        """One request: a bulk message to all ``recipients``, or one text / e-mail.

        Raises:
            ValidationError: more than one recipient on a one-recipient channel, an unknown
                channel, or a recipient that channel does not take.

        """
        channel = message.channel
        if channel == BULK:
            return await self._bulk(message.text, recipients)
        if channel not in (SMS, EMAIL):
            unknown = (
                _("{provider} has no /send channel “{channel}” (start one with /multicast).")
                if channel == MULTICAST
                else _("{provider} has no /send channel “{channel}”.")
            )
            raise ValidationError(unknown.format(provider=NAME, channel=channel), provider=NAME)
        if len(recipients) != 1:
            raise ValidationError(
                _("{provider}:{channel} takes one recipient a request ({count} given).").format(
                    provider=NAME, channel=channel, count=len(recipients)
                ),
                provider=NAME,
            )
        (to,) = recipients
        if channel == SMS:
            return [await self._text(message, to)]
        return [await self._email(message, to)]

    async def _text(self, message: OutgoingMessage, to: str) -> SendResult:
        account_id, number_id = await self._sending_ids()
        text = await self.client.send_text(
            account_id=account_id,
            number_id=number_id,
            organization_id=self._org,
            target=to,
            message=message.text,
            callback_status_url=message.options.get(STATUS_CALLBACK) or None,
        )
        return _result(text.id, text.reading, text.error)

    async def _bulk(self, text: str, recipients: Sequence[str]) -> list[SendResult]:
        try:
            individuals, groups = split_bulk(recipients)
        except ValueError as exc:
            raise ValidationError(str(exc), provider=NAME) from exc
        bulk = await self.client.create_bulk_message(
            message=text, individual_ids=individuals, group_ids=groups
        )
        return [_result(bulk.id, bulk.reading)] * len(recipients)

    async def _email(self, message: OutgoingMessage, to: str) -> SendResult:
        try:
            address = read_email_recipient(to)
        except ValueError as exc:
            raise ValidationError(str(exc), provider=NAME) from exc
        draft = await self.client.create_email(
            to=address,
            subject=message.options.get(SUBJECT, ""),
            message=message.text,
            organization_id=self._org,
        )
        try:
            sent = await self.client.send_email(draft.id)
        except ProviderError as exc:
            raise _draft_not_sent(exc, draft.id) from exc
        self._remember(draft.id, sent.reading)
        return _result(draft.id, sent.reading, sent.result)

    async def multicast(self, request: MulticastRequest) -> SendResult:
        """Start one template broadcast; its ``ref`` is polled on the ``multicast`` channel.

        ``audience`` is courier's filter-type (default ``all-participants``) and
        ``audience_value`` becomes the filter-value object
        (:func:`providers.courier.facts.filter_value`).
        """
        audience = request.audience.strip() or DEFAULT_AUDIENCE
        started = await self.client.create_multicast(
            template_id=request.template_id,
            filter_type=audience,
            filter_value=filter_value(audience, request.audience_value),
            organization_id=self._org,
            data=request.data,
        )
        return _result(started.id, started.reading)

    async def find_sent(self, lost: LostSend) -> LostSendAnswer:
        """Look a lost text up in the account's texts to its target (same text, sent since).

        Only texts can be listed by target; bulk messages, multicasts and e-mails cannot be
        told apart from others, so those answer ``CANNOT_ASK``.
        """
        if lost.channel != SMS or len(lost.recipients) != 1:
            return LostSendAnswer(
                Lookup.CANNOT_ASK,
                detail=_("{provider} can look up single texts only").format(provider=NAME),
            )
        account, _number = await self._sending_ids()
        (target,) = lost.recipients
        texts = await self.client.list_texts(account, target=target, max_items=LOST_LOOKUP_MAX)
        since = lost.stored_at - LOST_SKEW
        matches = [
            t
            for t in texts
            if t.message.strip() == lost.text.strip() and _not_before(t.created_at, since)
        ]
        if len(matches) > 1:
            return LostSendAnswer(
                Lookup.AMBIGUOUS,
                detail=_("{count} texts with this message went there").format(count=len(matches)),
            )
        if not matches:
            if len(texts) >= LOST_LOOKUP_MAX:
                return LostSendAnswer(Lookup.AMBIGUOUS, detail=_("too many texts to search"))
            return LostSendAnswer(Lookup.ABSENT)
        (text,) = matches
        return LostSendAnswer(Lookup.FOUND, _report(text.id, text.reading, text.error))

    # -- status ----------------------------------------------------------------------------

    async def status(self, ref: str, *, channel: str) -> StatusReport:
        """Where a text, bulk message, multicast or e-mail is.

        An e-mail cannot be looked up (courier has no GET for one): the report repeats the
        status courier gave when it was sent, while this adapter remembers it, else
        ``accepted`` — a state that never moves a message that was handed over — with a
        detail saying why.
        """
        if channel == SMS:
            text = await self.client.get_text(ref)
            return _report(ref, text.reading, text.error)
        if channel == BULK:
            return _report(ref, (await self.client.get_bulk_message(ref)).reading)
        if channel == MULTICAST:
            return _report(ref, (await self.client.get_multicast(ref)).reading)
        if channel == EMAIL:
            known = self._emails.get(ref)
            if known is None:
                return StatusReport(ref, DeliveryState.ACCEPTED, "", NO_EMAIL_LOOKUP)
            return _report(ref, replace(known, detail=NO_EMAIL_LOOKUP))
        raise ValidationError(
            _("{provider} has no channel “{channel}”.").format(provider=NAME, channel=channel),
            provider=NAME,
        )

    # -- numbers ---------------------------------------------------------------------------

    async def _numbers(self) -> list[TextNumber]:
        """Every number of every text account of the organization (the account id filled)."""
        numbers: list[TextNumber] = []
        for account in await self.client.text_accounts(self._org):
            for number in await self.client.text_numbers(account.id):
                numbers.append(replace(number, account_id=number.account_id or account.id))
        return numbers

    async def _candidates(self) -> list[TextNumber]:
        """The numbers the credentials' choice allows (all the organization's without one).

        Raises:
            ValidationError: a chosen number is not among them.

        """
        if self._account and self._number:
            numbers = await self.client.text_numbers(self._account)
            found = [replace(n, account_id=n.account_id or self._account) for n in numbers]
        else:
            found = await self._numbers()
            if self._account:
                found = [n for n in found if n.account_id.lower() == self._account]
        if self._number:
            found = [n for n in found if n.id.lower() == self._number]
            if not found:
                missing = (
                    _(
                        "{provider} has no number {number} in this text account {account}; pick "
                        "the number to send from with /senders {provider}."
                    )
                    if self._account
                    else _(
                        "{provider} has no number {number} in this organization; pick the "
                        "number to send from with /senders {provider}."
                    )
                )
                raise ValidationError(
                    missing.format(provider=NAME, number=self._number, account=self._account),
                    provider=NAME,
                )
        return found

    def _pick(self, found: Sequence[TextNumber]) -> TextNumber | None:
        """The chosen number, else the only one that can text; remembered once known."""
        if self._number and found:
            self._resolved = found[0]
        else:
            usable = [n for n in found if n.can_text]
            self._resolved = usable[0] if len(usable) == 1 else None
        return self._resolved

    async def _number_choice(self) -> TextNumber | None:
        """The number texts go from; None when several could and none is chosen (or none)."""
        if self._resolved is not None:
            return self._resolved
        return self._pick(await self._candidates())

    async def _sending_ids(self) -> tuple[str, str]:
        """(account id, number id) a text goes from; no look-up when both are chosen.

        Raises:
            ValidationError: no number can text, or several can and none is chosen.

        """
        if self._account and self._number:
            return self._account, self._number
        if self._resolved is not None:
            return self._resolved.account_id, self._resolved.id
        found = await self._candidates()
        picked = self._pick(found)
        if picked is not None:
            return picked.account_id, picked.id
        if not any(n.can_text for n in found):
            raise ValidationError(
                _(
                    "{provider} has no number that can send texts in organization {organization}."
                ).format(provider=NAME, organization=self._org),
                provider=NAME,
            )
        raise ValidationError(
            _(
                "{provider} has several numbers: pick the number to send from with /senders "
                "{provider}."
            ).format(provider=NAME),
            provider=NAME,
        )

    def _remember(self, ref: str, reading: Reading) -> None:
        self._emails[ref] = reading
        while len(self._emails) > EMAILS_REMEMBERED:
            self._emails.popitem(last=False)


def _shown(number: TextNumber) -> str:
    return number.phone_number or number.id


def _not_before(stamp: str, since: datetime) -> bool:
    """Whether courier's ``created-at`` is at or after ``since``.

    An unreadable date counts as after: a text that may match is never ruled out by it.
    """
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment >= since


def _result(ref: str, reading: Reading, error: str = "") -> SendResult:
    """A send's result; an unknown word is kept and the message stays ``accepted``."""
    return SendResult(
        ref=ref,
        state=reading.state or DeliveryState.ACCEPTED,
        detail=error or reading.detail,
        provider_status=reading.provider_status,
    )


def _report(ref: str, reading: Reading, error: str = "") -> StatusReport:
    """A poll's report; an unknown word reports ``accepted``, which moves nothing sent."""
    return StatusReport(
        ref=ref,
        state=reading.state or DeliveryState.ACCEPTED,
        provider_status=reading.provider_status,
        detail=error or reading.detail,
    )


def _draft_not_sent(exc: ProviderError, draft_id: str) -> ProviderError:
    """The error of a failed ``send`` step: the draft exists; sent or not, as known."""
    if exc.maybe_sent:
        text = _(
            "{provider} created the e-mail as draft {draft}, but the answer to sending it was "
            "lost ({error}); it may have gone out. Check at {provider} before sending again."
        ).format(provider=NAME, draft=draft_id, error=exc.message)
    else:
        text = _(
            "{provider} created the e-mail as draft {draft} but did NOT send it: {error}"
        ).format(provider=NAME, draft=draft_id, error=exc.message)
    reworded: ProviderError
    if isinstance(exc, RateLimited):
        reworded = RateLimited(text, provider=NAME, retry_after=exc.retry_after, code=exc.code)
    elif isinstance(exc, ProviderUnavailable):
        reworded = ProviderUnavailable(
            text, provider=NAME, maybe_sent=exc.maybe_sent, code=exc.code
        )
    else:
        reworded = type(exc)(text, provider=NAME, code=exc.code)
    reworded.maybe_sent = exc.maybe_sent
    return reworded


def build_courier(
    http: httpx.AsyncClient,
    creds: Mapping[str, str],
    *,
    settings: CourierSettings,
    limiters: AccountLimiters | None = None,
) -> Courier:
    """The adapter for stored credentials; accounts of one user share a pacer."""
    username = creds.get("username", "")
    pacer = (
        limiters.get(NAME, username, interval=settings.min_interval)
        if limiters is not None
        else SlotPacer(settings.min_interval)
    )
    client = CourierClient(
        http,
        username=username,
        password=creds.get("password", ""),
        base_url=settings.base_url,
        identity_url=settings.identity_url,
        paths=settings.paths,
        pacer=pacer,
        rate_limit_retries=settings.rate_limit_retries,
    )
    return Courier(
        client,
        organization_id=creds.get("organization_id", ""),
        account_id=creds.get(ACCOUNT_KEY, ""),
        number_id=creds.get(NUMBER_KEY, ""),
    )
