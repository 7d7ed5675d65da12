"""The courier HTTP client: one typed method per call the adapter needs.

Every call goes through :meth:`CourierClient._call`: the account's pacer and 429 handling
(:func:`providers.ratelimit.paced_request`: a 429 holds the account for its ``Retry-After`` and
is sent again, up to ``rate_limit_retries`` times), the Bearer login
(:class:`~providers.courier.auth.CourierLogin`), and the one answer mapping of
:mod:`providers.courier.jsonapi`. Transport failures become ``ProviderUnavailable`` in
:func:`providers.http.send_request` (``maybe_sent`` once the request may have been written).

Ids are checked to be UUIDs and numbers to be E.164 before any request, so a typo in the chat
costs no round trip and never reaches courier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from i18n import N_, _
from providers.base import AccountInfo
from providers.courier.auth import CourierLogin
from providers.courier.facts import (
    MAX_BULK_RECIPIENTS,
    MAX_CHANNEL_TEXT,
    MAX_TEXT,
    NAME,
    checked_uuid,
    e164,
)
from providers.courier.jsonapi import (
    HEADERS,
    Resource,
    document,
    read_answer,
    read_collection,
    read_resource,
    walk,
)
from providers.courier.models import (
    BulkMessage,
    Email,
    Multicast,
    Organization,
    Text,
    TextAccount,
    TextNumber,
)
from providers.courier.paths import fill, resolve_paths
from providers.errors import AuthError, ValidationError
from providers.ratelimit import SlotPacer, paced_request


class CourierClient:
    """One courier user: its login, its pacer, the shared HTTP client.

    Args:
        http: the shared client (``MockTransport`` in tests).
        username: the courier user name.
        password: its password (sent to the identity service only).
        base_url: ``COURIER_BASE_URL`` (a path prefix such as ``/courier`` is kept).
        identity_url: ``COURIER_IDENTITY_URL``.
        paths: path overrides by key (:func:`providers.courier.paths.resolve_paths`).
        pacer: the account's pacer; unpaced by default (courier documents no rate, so only
            its 429s hold the account back).
        rate_limit_retries: how often a 429 is sent again after its ``Retry-After``.

    Raises:
        AuthError: the user name or password is empty.

    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        username: str,
        password: str,
        base_url: str,
        identity_url: str,
        paths: Mapping[str, str] | None = None,
        pacer: SlotPacer | None = None,
        rate_limit_retries: int = 3,
    ) -> None:
        self._http = http
        self.auth = CourierLogin(
            http, identity_url=identity_url, username=username, password=password
        )
        self._base_url = base_url.rstrip("/")
        self._paths = resolve_paths(paths)
        self._pacer = pacer if pacer is not None else SlotPacer(0)
        self._retries = rate_limit_retries

    @property
    def username(self) -> str:
        """The user this client logs in as."""
        return self.auth.username

    # -- account ---------------------------------------------------------------------------

    async def verify(self, organization_id: str) -> AccountInfo:
        """Log in, then check the organization is one this user can see."""
        await self.auth.login()  # a wrong password is told apart from a missing organization
        organization = await self.organization(organization_id)
        name = organization.name or organization.id
        return AccountInfo(
            account=f"{self.username} @ {name}",
            details=_("organization {name}").format(name=name),
        )

    async def organization(self, organization_id: str) -> Organization:
        """One organization.

        Raises:
            AuthError: courier has no such organization visible to this user (404 or 403).

        """
        org = checked_uuid(organization_id, what=N_("organization id"))
        try:
            body = await self._call("GET", "organization", item_id=org, what=N_("organization"))
        except (ValidationError, AuthError) as exc:
            if exc.code not in ("403", "404"):
                raise
            raise AuthError(
                _("{provider} has no organization {id} visible to this user.").format(
                    provider=NAME, id=org
                ),
                provider=NAME,
                code=exc.code,
            ) from exc
        return Organization.read(read_resource(body, what=N_("organization")))

    async def text_accounts(self, organization_id: str) -> list[TextAccount]:
        """The organization's text accounts (every page)."""
        org = checked_uuid(organization_id, what=N_("organization id"))
        items = await self._walk(
            "text_accounts", {"organization-id": org}, what=N_("text accounts")
        )
        return [TextAccount.read(r) for r in items]

    async def text_numbers(self, account_id: str) -> list[TextNumber]:
        """A text account's phone numbers (every page)."""
        account = checked_uuid(account_id, what=N_("text account id"))
        items = await self._walk("text_numbers", {"account-id": account}, what=N_("text numbers"))
        return [TextNumber.read(r) for r in items]

    # -- texts -----------------------------------------------------------------------------

    async def send_text(
        self,
        *,
        account_id: str,
        number_id: str,
        organization_id: str,
        target: str,
        message: str,
        callback_status_url: str | None = None,
    ) -> Text:
        """Send one SMS from the number ``number_id`` of ``account_id`` to ``target``.

        Raises:
            ValidationError: an empty or too long text, a malformed id or number (before any
                request), or courier refused the text.

        """
        _check_text(message, MAX_TEXT, what=N_("text"))
        attributes: dict[str, Any] = {
            "account-id": checked_uuid(account_id, what=N_("text account id")),
            "number-id": checked_uuid(number_id, what=N_("number id")),
            "organization-id": checked_uuid(organization_id, what=N_("organization id")),
            "target": e164(target),
            "message": message,
        }
        if callback_status_url:
            attributes["callback-status-url"] = callback_status_url
        body = await self._call(
            "POST", "texts", body=document("texts", attributes), what=N_("text"), sending=True
        )
        return Text.read(read_resource(body, what=N_("text")))

    async def get_text(self, text_id: str) -> Text:
        """One text, with its status."""
        ident = checked_uuid(text_id, what=N_("text id"))
        body = await self._call("GET", "text", item_id=ident, what=N_("text"))
        return Text.read(read_resource(body, what=N_("text")))

    async def list_texts(
        self,
        account_id: str,
        *,
        target: str | None = None,
        number_id: str | None = None,
        max_items: int | None = None,
    ) -> list[Text]:
        """An account's texts, optionally to one ``target`` or from one number.

        For reconciliation: after a send whose answer was lost, the text to that target shows
        whether courier took it.
        """
        params = {"account-id": checked_uuid(account_id, what=N_("text account id"))}
        if target is not None:
            params["filter[target]"] = e164(target)
        if number_id is not None:
            params["filter[number-id]"] = checked_uuid(number_id, what=N_("number id"))
        items = await self._walk("texts", params, what=N_("texts"), max_items=max_items)
        return [Text.read(r) for r in items]

    # -- bulk messages ---------------------------------------------------------------------

    async def create_bulk_message(
        self, *, message: str, individual_ids: Sequence[str], group_ids: Sequence[str]
    ) -> BulkMessage:
        """Post one message to individuals' and groups' channels (one request, not a draft).

        Raises:
            ValidationError: no recipients, more than ``MAX_BULK_RECIPIENTS``, an id that is
                not a UUID, or an empty text (before any request).

        """
        _check_text(message, MAX_CHANNEL_TEXT, what=N_("message"))
        individuals = [checked_uuid(i, what=N_("individual id")) for i in individual_ids]
        groups = [checked_uuid(g, what=N_("group id")) for g in group_ids]
        count = len(individuals) + len(groups)
        if count == 0:
            raise ValidationError(_("The bulk message has no recipients."), provider=NAME)
        if count > MAX_BULK_RECIPIENTS:
            raise ValidationError(
                _(
                    "{provider} takes at most {most} recipients in one bulk message "
                    "({count} given)."
                ).format(provider=NAME, most=MAX_BULK_RECIPIENTS, count=count),
                provider=NAME,
            )
        attributes = {
            "draft": False,
            "individual-ids": individuals,
            "individual-group-ids": groups,
            "message": message,
        }
        body = await self._call(
            "POST",
            "bulk_messages",
            body=document("messaging-bulk-messages", attributes),
            what=N_("bulk message"),
            sending=True,
        )
        return BulkMessage.read(read_resource(body, what=N_("bulk message")))

    async def get_bulk_message(self, bulk_id: str) -> BulkMessage:
        """One bulk message, with its draft flag and posted time."""
        ident = checked_uuid(bulk_id, what=N_("bulk message id"))
        body = await self._call("GET", "bulk_message", item_id=ident, what=N_("bulk message"))
        return BulkMessage.read(read_resource(body, what=N_("bulk message")))

    # -- multicasts ------------------------------------------------------------------------

    async def create_multicast(
        self,
        *,
        template_id: str,
        filter_type: str,
        filter_value: Mapping[str, Any],
        organization_id: str,
        data: Mapping[str, str],
    ) -> Multicast:
        """Start one template broadcast to the audience ``filter_type``/``filter_value``.

        Raises:
            ValidationError: an empty template id or filter type (before any request), or
                courier refused the multicast (unknown template, audience).

        """
        template = template_id.strip()
        if not template or len(template) > 255:
            raise ValidationError(
                _("A {provider} template id is 1 to 255 characters ({template!r}).").format(
                    provider=NAME, template=template_id
                ),
                provider=NAME,
            )
        if not filter_type.strip():
            raise ValidationError(
                _("The multicast's audience (filter type) is empty."), provider=NAME
            )
        attributes = {
            "template-id": template,
            "filter-type": filter_type.strip(),
            "filter-value": dict(filter_value),
            "organization-id": checked_uuid(organization_id, what=N_("organization id")),
            "data": dict(data),
        }
        body = await self._call(
            "POST",
            "multicasts",
            body=document("multicasts", attributes),
            what=N_("multicast"),
            sending=True,
        )
        return Multicast.read(read_resource(body, what=N_("multicast")))

    async def get_multicast(self, multicast_id: str) -> Multicast:
        """One multicast, with its status."""
        ident = checked_uuid(multicast_id, what=N_("multicast id"))
        body = await self._call("GET", "multicast", item_id=ident, what=N_("multicast"))
        return Multicast.read(read_resource(body, what=N_("multicast")))

    # -- e-mails ---------------------------------------------------------------------------

    async def create_email(
        self, *, to: str, subject: str, message: str, organization_id: str
    ) -> Email:
        """Create an e-mail as a draft (``auto-send`` off): :meth:`send_email` sends it.

        Two steps, so that a failure leaves a known state: the draft exists or it does not.
        """
        if not to.strip():
            raise ValidationError(_("The e-mail has no recipient."), provider=NAME)
        if not subject.strip():
            raise ValidationError(
                _("The e-mail has no subject: write <address> <subject> | <body>."),
                provider=NAME,
            )
        _check_text(message, MAX_CHANNEL_TEXT, what=N_("e-mail body"))
        attributes = {
            "to": to.strip(),
            "subject": subject.strip(),
            "message": message,
            "sender-organization-id": checked_uuid(organization_id, what=N_("organization id")),
            "auto-send": False,
        }
        body = await self._call(
            "POST",
            "emails",
            body=document("user-emails", attributes),
            what=N_("e-mail"),
            sending=True,
        )
        return Email.read(read_resource(body, what=N_("e-mail")))

    async def send_email(self, email_id: str) -> Email:
        """Send a draft made by :meth:`create_email`."""
        ident = checked_uuid(email_id, what=N_("e-mail id"))
        body = await self._call(
            "POST", "email_send", item_id=ident, body={}, what=N_("e-mail"), sending=True
        )
        return Email.read(read_resource(body, what=N_("e-mail")))

    # -- internals -------------------------------------------------------------------------

    async def _walk(
        self,
        key: str,
        params: Mapping[str, str],
        *,
        what: str,
        max_items: int | None = None,
    ) -> list[Resource]:
        async def page(paging: Mapping[str, int]) -> list[Resource]:
            query: dict[str, str | int] = {**params, **paging}
            return read_collection(
                await self._call("GET", key, params=query, what=what), what=what
            )

        return await walk(page, max_items=max_items)

    async def _call(
        self,
        method: str,
        key: str,
        *,
        what: str,
        item_id: str | None = None,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        sending: bool = False,
    ) -> Any:
        url = self._base_url + fill(self._paths[key], item_id)
        response = await paced_request(
            self._http,
            method,
            url,
            pacer=self._pacer,
            provider=NAME,
            max_retries=self._retries,
            params=params,
            json=body,
            headers=HEADERS,
            auth=self.auth,
        )
        return read_answer(
            response, what=what, item_id=item_id, sending=sending, scrub=self.auth.scrub
        )


def _check_text(text: str, limit: int, *, what: str) -> None:
    if not text.strip():
        raise ValidationError(_("The {what} is empty.").format(what=_(what)), provider=NAME)
    if len(text) > limit:
        raise ValidationError(
            _("The {what} has {count} characters; {provider} takes at most {most}.").format(
                what=_(what), count=len(text), provider=NAME, most=limit
            ),
            provider=NAME,
        )
