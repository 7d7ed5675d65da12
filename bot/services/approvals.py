"""/approval: an operator's send to many recipients waits for another admin's approval.

A chat's threshold (``/approval <n>``) holds every send, schedule or multicast of an operator
to more than ``n`` recipients (a provider group or an audience, whose size the bot cannot
count, is more); admins' sends never wait. A held send is an :class:`~storage.models.Approval`
row: nothing reaches a provider until an admin other than the requester approves it. The
decisions are single conditional UPDATEs with their audit rows (:mod:`storage.approvals`), so
two presses decide once; an approval expires after ``APPROVAL_EXPIRY``.

What an approved row sends is :meth:`bot.services.gate.SendGate.release`'s job (it knows
quiet hours, schedules and multicasts); this module only holds and decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from bot.services.errors import BadInput, NotAllowed
from bot.services.integers import read_whole
from i18n import _
from storage.approvals import ApprovalStore, expired
from storage.models import Approval, ApprovalState, Chat, Role, utcnow
from storage.replicas import Gone
from storage.repo import Repository

OFF = "off"
UNKNOWN_SIZE = -1  # ``recipients`` of a send to a provider group or an audience
PREVIEW = 120
MAX_THRESHOLD = 1_000_000


@dataclass(frozen=True, slots=True)
class Waiting:
    """A send held for approval; the chat is shown its card."""

    approval: Approval
    expiry: timedelta


def new_origin() -> str:
    """An origin for a held /schedule (its command keeps none)."""
    return f"approval:{uuid.uuid4().hex}"


def preview_of(text: str) -> str:
    """The start of a text, on one line, as the card shows it."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"


def read_threshold(text: str) -> int | None:
    """``<n>`` or ``off`` as /approval takes it.

    Raises:
        BadInput: a negative number, or anything that is not a whole number or ``off``.

    """
    value = text.strip().lower()
    if value == OFF:
        return None
    if value.startswith("-") and read_whole(value[1:]) is not None:
        raise BadInput(_("The number of recipients cannot be negative: use 0 or more, or off."))
    limit = read_whole(value)
    if limit is None or limit > MAX_THRESHOLD:
        raise BadInput(
            _(
                "Usage: /approval &lt;n&gt;|off — n is a whole number of recipients from 0 "
                "to {most}."
            ).format(most=f"{MAX_THRESHOLD:,}")
        )
    return limit


class Approvals:
    """Holding operators' large sends for an admin, and deciding them once."""

    def __init__(
        self,
        store: ApprovalStore,
        repo: Repository,
        *,
        expiry: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self._repo = repo
        self.expiry = expiry
        self.clock = clock

    @staticmethod
    def needed(chat: Chat, role: Role, recipients: int, *, unknown: bool) -> bool:
        """Whether a send of a member with ``role`` waits for approval in ``chat``."""
        limit = chat.approval_above
        if limit is None or role.rank >= Role.ADMIN.rank:
            return False
        return unknown or recipients > limit

    async def set_threshold(self, chat_id: int, text: str, *, actor: int) -> int | None:
        """Set the chat's threshold (``<n>``) or turn approvals off (``off``); audited."""
        limit = read_threshold(text)
        await self._repo.update_chat(chat_id, approval_above=limit)
        await self._repo.audit(chat_id, actor, "approval", OFF if limit is None else str(limit))
        return limit

    async def hold(
        self,
        chat: Chat,
        kind: str,
        payload: str,
        *,
        origin: str,
        actor_id: int,
        actor_name: str,
        route: str,
        recipients: int,
        text: str,
    ) -> Waiting:
        """Store a send waiting for approval; nothing reaches a provider."""
        now = self.clock()
        row = await self.store.add(
            Approval(
                chat_id=chat.id,
                origin=origin,
                kind=kind,
                payload=payload,
                route=route,
                recipients=recipients,
                preview=preview_of(text),
                requested_by=actor_id,
                requested_by_name=actor_name,
                created_at=now,
                expires_at=now + self.expiry,
            )
        )
        return Waiting(row, self.expiry)

    async def of_chat(self, chat_id: int, approval_id: int) -> Approval:
        """The chat's approval, or ``BadInput`` when there is none."""
        row = await self.store.get(approval_id)
        if row is None or row.chat_id != chat_id:
            raise BadInput(_("This approval is not known here any more."))
        return row

    async def pending(self, chat_id: int) -> Sequence[Approval]:
        """What waits in the chat, oldest first (expired ones the sweep has not moved: not)."""
        now = self.clock()
        return [row for row in await self.store.waiting(chat_id) if not expired(row, now)]

    async def approve(self, chat_id: int, approval_id: int, *, by: int, by_name: str) -> Approval:
        """Approve a waiting send (never the requester's own); the row, now ``approved``.

        Raises:
            NotAllowed: the requester tried to approve their own send.
            BadInput: it was decided already, or it expired.

        """
        row = await self.of_chat(chat_id, approval_id)
        if row.requested_by == by:
            raise NotAllowed(
                _("You asked for this send: another admin must approve it (or Withdraw it).")
            )
        return await self._decide(row, ApprovalState.APPROVED, by=by, by_name=by_name)

    async def reject(self, chat_id: int, approval_id: int, *, by: int, by_name: str) -> Approval:
        """Reject a waiting send; the row, now ``rejected`` (see :meth:`approve`)."""
        row = await self.of_chat(chat_id, approval_id)
        if row.requested_by == by:
            raise NotAllowed(_("You asked for this send: Withdraw it instead of rejecting it."))
        return await self._decide(row, ApprovalState.REJECTED, by=by, by_name=by_name)

    async def withdraw(self, chat_id: int, approval_id: int, *, by: int, by_name: str) -> Approval:
        """The requester takes a waiting send back; the row, now ``withdrawn``.

        Raises:
            NotAllowed: someone else pressed Withdraw.

        """
        row = await self.of_chat(chat_id, approval_id)
        if row.requested_by != by:
            raise NotAllowed(
                _("Only {name}, who asked for this send, can withdraw it.").format(
                    name=escape(row.requested_by_name or str(row.requested_by))
                )
            )
        return await self._decide(row, ApprovalState.WITHDRAWN, by=by, by_name=by_name)

    async def _decide(
        self, row: Approval, state: ApprovalState, *, by: int, by_name: str
    ) -> Approval:
        assert row.id is not None
        now = self.clock()
        if await self.store.decide(row.id, state, by=by, by_name=by_name, now=now):
            found = await self.store.get(row.id)
            assert found is not None
            return found
        found = await self.store.get(row.id)
        assert found is not None
        raise BadInput(decided_already(found, now))

    async def expire(self, now: datetime) -> list[Approval]:
        """Move every approval past ``APPROVAL_EXPIRY`` to expired; the rows moved."""
        return await self.store.expire(now)

    async def owed(self, gone: Gone | None = None) -> Sequence[Approval]:
        """Approved sends not stored yet (a stop came between the approval and the send).

        ``gone``: only those of dead replicas (None: every one, a single process).
        """
        return await self.store.approved(gone)

    async def finish(self, approval_id: int) -> None:
        """The approved send is stored (or was refused and told): nothing is owed any more."""
        await self.store.finish(approval_id)


def decided_already(row: Approval, now: datetime) -> str:
    """Why a press on an approval changed nothing (HTML-free text)."""
    state = ApprovalState(row.state)
    who = escape(row.decided_by_name or (str(row.decided_by) if row.decided_by else ""))
    if state in (ApprovalState.APPROVED, ApprovalState.DONE):
        return _("This send was already approved by {name}.").format(name=who)
    if state == ApprovalState.REJECTED:
        return _("This send was rejected by {name}; nothing was sent.").format(name=who)
    if state == ApprovalState.WITHDRAWN:
        return _("This send was withdrawn; nothing was sent.")
    if state == ApprovalState.EXPIRED or expired(row, now):
        return _("This send waited too long for approval and expired; nothing was sent.")
    return _("This send still waits for approval.")  # waiting: nothing decided it
