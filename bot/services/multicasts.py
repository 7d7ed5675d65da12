"""/multicast: a template broadcast to an audience the provider resolves, confirmed first.

A multicast reaches a whole audience in one request, so it never goes out on the command
alone: :meth:`Multicasts.plan` stores it as a :class:`~storage.models.Confirmation` and the
chat shows Send / Cancel buttons; :meth:`Multicasts.confirm` runs it once, through the same
:class:`~bot.services.sending.Sender` as every send (stored ``queued`` first, one row standing
for the audience, ``unknown`` when the answer is lost), with the confirmation as its origin so
a second press never sends again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from typing import Any

from bot.services.accounts import Accounts
from bot.services.approvals import UNKNOWN_SIZE, Approvals, Waiting
from bot.services.errors import BadInput, NotConnected
from bot.services.sending import Sender, SendOutcome, SendRequest
from i18n import _
from providers.base import MulticastRequest
from providers.registry import Route, command_route, parse_route
from storage.confirmations import Confirmations, Pressed
from storage.messages import Messages
from storage.models import Chat, Confirmation

KIND = "multicast"
CONFIRM_TTL = timedelta(minutes=15)
DEFAULT_AUDIENCE = "all-participants"
MAX_TEMPLATE_ID = 255  # the documented limit of ``template-id``
_AUDIENCE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class MulticastPlan:
    """A multicast waiting for its Send press."""

    confirmation_id: int
    route: Route
    request: MulticastRequest
    approve: bool = False  # after Send it waits for an admin's approval


class MulticastExpired(BadInput):
    """The confirmation waited too long; nothing was sent."""


def read_multicast(
    template_id: str, audience: str | None, pairs: dict[str, str]
) -> MulticastRequest:
    """Check what /multicast was given and build the provider-neutral request.

    Raises:
        BadInput: naming the argument that is wrong.

    """
    template = template_id.strip()
    if not template or len(template) > MAX_TEMPLATE_ID:
        raise BadInput(
            _("The template id must be 1 to {limit} characters long.").format(
                limit=MAX_TEMPLATE_ID
            )
        )
    kind, _sep, value = (audience or DEFAULT_AUDIENCE).partition(":")
    if not _AUDIENCE.match(kind):
        raise BadInput(
            _(
                "“{kind}” is not an audience type: write audience=&lt;filter-type&gt;"
                "[:&lt;value&gt;], e.g. audience={default}."
            ).format(kind=escape(kind), default=DEFAULT_AUDIENCE)
        )
    bad = [k for k in pairs if not _KEY.match(k)]
    if bad:
        raise BadInput(_("“{key}” is not a template field name.").format(key=escape(bad[0])))
    return MulticastRequest(template, kind, value.strip() or None, dict(pairs))


def describe(request: MulticastRequest) -> tuple[str, str]:
    """The audience and the text a multicast's status card shows."""
    audience = request.audience + (f":{request.audience_value}" if request.audience_value else "")
    data = " ".join(f"{k}={v}" for k, v in request.data.items())
    shown = _("template {id}").format(id=request.template_id)
    return audience, shown + (f" · {data}" if data else "")


class Multicasts:
    """Planning and confirming multicasts."""

    def __init__(
        self,
        accounts: Accounts,
        sender: Sender,
        confirmations: Confirmations,
        messages: Messages,
        approvals: Approvals,
    ) -> None:
        self._accounts = accounts
        self._sender = sender
        self._confirmations = confirmations
        self._messages = messages
        self._approvals = approvals

    async def plan(
        self,
        chat_id: int,
        actor: int,
        request: MulticastRequest,
        *,
        actor_name: str = "",
        approve: bool = False,
    ) -> MulticastPlan:
        """Store the multicast as waiting for a press; nothing reaches the provider.

        ``approve``: its Send press holds it for an admin's approval instead of sending.

        Raises:
            NotConnected: no provider connected here can multicast.

        """
        route = await self._route(chat_id)
        await self._accounts.adapter(chat_id, route.provider, channel=route.channel)
        payload = json.dumps(
            {
                "route": str(route),
                "template_id": request.template_id,
                "audience": request.audience,
                "audience_value": request.audience_value,
                "data": dict(request.data),
                "approve": approve,
                "actor_name": actor_name,
            }
        )
        row = await self._confirmations.ask(chat_id, actor, KIND, payload, ttl=CONFIRM_TTL)
        assert row.id is not None
        return MulticastPlan(row.id, route, request, approve)

    async def waiting(self, chat_id: int, confirmation_id: int) -> Confirmation:
        """The chat's multicast confirmation, or ``BadInput`` when there is none."""
        row = await self._confirmations.get(confirmation_id)
        if row is None or row.chat_id != chat_id or row.kind != KIND:
            raise BadInput(_("This multicast is not known here any more; run /multicast again."))
        return row

    async def confirm(
        self, chat: Chat, confirmation_id: int, *, actor: int, actor_name: str
    ) -> SendOutcome | Waiting | None:
        """Send a confirmed multicast; None when an earlier press already sent it.

        A multicast that needs approval is held for an admin instead (its audience is of
        unknown size); a second press finds the same approval.

        Raises:
            MulticastExpired: it waited longer than :data:`CONFIRM_TTL`.
            BadInput: it was cancelled.

        """
        chat_id = chat.id
        row = await self.waiting(chat_id, confirmation_id)
        origin = f"confirm:{confirmation_id}"
        pressed = await self._confirmations.press(confirmation_id, by=actor)
        if pressed == Pressed.CANCELLED:
            raise BadInput(_("This multicast was cancelled; nothing was sent."))
        if pressed == Pressed.EXPIRED:
            raise MulticastExpired(
                _(
                    "This multicast waited too long for its confirmation and was not sent; "
                    "run /multicast again."
                )
            )
        # Confirmed before: sent, unless the process stopped between the press and the send
        # (then its origin has no batch yet, and this press sends it).
        data = json.loads(row.payload)
        request = multicast_request(
            chat_id, data, actor=actor, actor_name=actor_name, origin=origin
        )
        if pressed == Pressed.EARLIER and (
            data.get("approve") or await self._messages.batch_for_origin(origin)
        ):
            return None
        if data.get("approve"):
            return await self._approvals.hold(
                chat,
                KIND,
                row.payload,
                origin=origin,
                actor_id=row.requested_by,
                actor_name=str(data.get("actor_name") or ""),
                route=str(request.route),
                recipients=UNKNOWN_SIZE,
                text=request.text,
            )
        return await self._sender.send(request)

    async def cancel(self, chat_id: int, confirmation_id: int, *, actor: int) -> bool:
        """Cancel a waiting multicast; whether this press cancelled it."""
        await self.waiting(chat_id, confirmation_id)
        return await self._confirmations.decide(confirmation_id, confirm=False, by=actor)

    async def _route(self, chat_id: int) -> Route:
        routes = command_route(KIND)
        connected = {c.provider for c in await self._accounts.connected(chat_id)}
        usable = [r for r in routes if r.provider.name in connected]
        if not usable:
            names = ", ".join(r.provider.name for r in routes) or _("none")
            raise NotConnected(
                _(
                    "No provider connected in this chat can multicast (those that can: "
                    "{names}). An admin can connect one with /connect."
                ).format(names=names)
            )
        return usable[0]


def multicast_request(
    chat_id: int, data: dict[str, Any], *, actor: int, actor_name: str, origin: str
) -> SendRequest:
    """The send of a multicast as its confirmation stored it (``data``: the payload)."""
    request = MulticastRequest(
        data["template_id"], data["audience"], data["audience_value"], data["data"]
    )
    audience, text = describe(request)
    return SendRequest(
        chat_id=chat_id,
        actor_id=actor,
        actor_name=actor_name,
        route=parse_command_route(data["route"]),
        recipients=[audience],
        text=text,
        origin=origin,
        multicast=request,
    )


def parse_command_route(text: str) -> Route:
    """A stored ``provider:channel`` of a command-only channel (parse_route refuses those)."""
    provider, _sep, channel = text.partition(":")
    for route in command_route(KIND):
        if route.provider.name == provider and route.channel.name == channel:
            return route
    return parse_route(text)  # raises UnknownRoute naming what exists
