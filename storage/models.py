"""Every table of chatops-bridge, in one place.

Times are aware UTC datetimes (SQLModel's ``UTCDateTime`` refuses naive ones, so a local
time can never slip in); :func:`utcnow` is the one clock the storage layer uses. States are
plain strings holding :class:`StrEnum` values, so a state added later needs no migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint, false
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


# Integer primary keys are 32-bit on PostgreSQL: an id typed in the chat beyond that names no
# row, and must not reach the driver (which refuses it as an error, not as "not found").
MAX_ROW_ID = 2**31 - 1


def may_be_row_id(value: int) -> bool:
    """Whether ``value`` can be the id of a row (a positive INTEGER)."""
    return 0 < value <= MAX_ROW_ID


class Role(StrEnum):
    """What a member of a group chat may do; each role includes the ones below it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order for comparisons (viewer < operator < admin)."""
        return {"viewer": 0, "operator": 1, "admin": 2}[self.value]


class ScheduleState(StrEnum):
    """Lifecycle of a scheduled send."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"
    FAILED = "failed"


class Progress(StrEnum):
    """Where a large send (more than ``CONFIRM_ABOVE`` recipients) is; small sends have none."""

    SENDING = "sending"
    STOPPED = "stopped"  # Stop was pressed: what was not handed over yet is never sent
    DONE = "done"


class OutboxKind(StrEnum):
    """What an outbox entry tells the chat."""

    CARD = "card"  # the batch's status card: posted once, then edited to the newest states
    FAILURES = "failures"  # a mention of the sender: messages of the batch finally failed
    TEXT = "text"  # a stored text (a scheduled run that failed or was missed)


class OutboxState(StrEnum):
    """Where an outbox entry is: waiting, told (Telegram accepted it), or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DROPPED = "dropped"  # the chat blocked the bot, or Telegram refuses the text for good


class Chat(SQLModel, table=True):
    """A Telegram chat (private or group) and its settings."""

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = "private"
    title: str = ""
    default_route: str | None = None
    timezone: str = "UTC"
    country: str | None = None
    # /quiet: the daily window (``22:00-07:00``, chat's time zone) when sends wait; None: off.
    quiet_hours: str | None = None
    # /lang: the language answers are written in (``en``, ``id``); None: DEFAULT_LANGUAGE.
    language: str | None = None
    # /approval: an operator's send to more recipients waits for an admin; None: off.
    approval_above: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Credential(SQLModel, table=True):
    """A provider's credentials for one chat, encrypted as one JSON document."""

    __table_args__ = (UniqueConstraint("chat_id", "provider"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    provider: str
    secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    account: str = ""
    created_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    checked_at: datetime | None = None
    check_ok: bool = True
    check_detail: str = ""


class Member(SQLModel, table=True):
    """A role given to a user in a group chat with /role."""

    chat_id: int = Field(
        sa_type=BigInteger, foreign_key="chat.id", primary_key=True, ondelete="CASCADE"
    )
    user_id: int = Field(sa_type=BigInteger, primary_key=True)
    username: str = ""
    role: str = Role.OPERATOR.value
    set_by: int = Field(sa_type=BigInteger)
    set_at: datetime = Field(default_factory=utcnow)


class Batch(SQLModel, table=True):
    """One /send (or fired schedule): its recipients share a status card in the chat."""

    # Sends by creation time (start-up's scan of recent cards used it; the outbox replaced it).
    __table_args__ = (Index("ix_batch_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    route: str
    text: str
    origin: str = Field(unique=True)
    created_by: int = Field(sa_type=BigInteger)
    created_by_name: str = ""
    card_message_id: int | None = Field(default=None, sa_type=BigInteger)
    card_dead: bool = False
    # Newest StatusEvent id the card shows / the failure notices covered: restart-safe
    # "what is still to be told" without comparing clocks.
    card_event_id: int | None = None
    notice_event_id: int | None = None
    schedule_id: int | None = Field(default=None, foreign_key="schedule.id")
    created_at: datetime = Field(default_factory=utcnow)
    # A large send only (:class:`Progress`): its card shows progress and has Stop, and a
    # restart goes on with it; ``resume`` holds its options and failover chain as JSON.
    progress: str | None = None
    resume: str | None = None
    started_at: datetime | None = None  # when sending (re)started: the card's rate
    finished_at: datetime | None = None
    stopped_by_name: str = Field(default="", sa_column_kwargs={"server_default": ""})


class Message(SQLModel, table=True):
    """One message to one recipient, written as ``queued`` before the provider is called."""

    __table_args__ = (
        Index("ix_message_chat_created", "chat_id", "id"),
        # Inline search by number and /history to=: one chat's messages to one number.
        Index("ix_message_chat_recipient", "chat_id", "recipient", "id"),
        Index("ix_message_open", "state", "next_poll_at"),
        Index("ix_message_ref", "provider", "provider_ref"),
        # Delivered messages still watched for their read receipt (TrackingRepository
        # .poll_hints at start): recent ones only, found without reading every delivered row.
        Index("ix_message_state_updated", "state", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", index=True, ondelete="CASCADE")
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    provider: str
    channel: str
    recipient: str
    text: str
    media_name: str | None = None
    idempotency_key: str = Field(unique=True)
    state: str = "queued"
    provider_ref: str | None = None
    provider_status: str = ""
    detail: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    next_poll_at: datetime | None = None
    poll_attempts: int = 0
    # Handed to a provider for later (provider-side schedule): it goes out then, and its
    # "no final status within STATUS_EXPIRE_HOURS" counts from then, not from creation.
    send_at: datetime | None = None
    # A large send's row handed to the provider (committed before the call): a restart sends
    # the rows without it and never the others.
    handed_at: datetime | None = None
    # The replica that stored it: its in-flight send and its polls are that replica's, until
    # the replica is seen dead and another takes them over (``storage/replicas.py``).
    replica: str | None = Field(default=None, index=True)


class StatusEvent(SQLModel, table=True):
    """One change of a message's state: its history, oldest first."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True, ondelete="CASCADE")
    state: str
    provider_status: str = ""
    detail: str = ""
    source: str = "send"
    at: datetime = Field(default_factory=utcnow)


class Schedule(SQLModel, table=True):
    """A send that fires later, once or by a recurrence rule; claimed atomically to fire."""

    __table_args__ = (
        Index("ix_schedule_due", "state", "next_run_at"),
        Index("ix_schedule_origin", "origin", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    route: str
    recipients: str
    text: str
    next_run_at: datetime
    recurrence: str | None = None
    timezone: str = "UTC"
    state: str = ScheduleState.PENDING.value
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    provider_ref: str | None = None
    runs: int = 0
    last_run_at: datetime | None = None
    note: str = ""
    # /cancel of a recurring schedule while one run is being sent: no further runs.
    cancel_requested: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_by: int = Field(sa_type=BigInteger)
    created_by_name: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    # A personalised send (a template filled per recipient): each recipient's own text as a
    # JSON list in the order of ``recipients``; ``text`` is then the template's text.
    texts: str | None = None
    # A run moved to the end of the chat's quiet hours: the time it was due, which keeps a
    # repeating schedule's rhythm (``next_run_at`` is then the window's end).
    hold_due: datetime | None = None
    # A send held by quiet hours: the command it came from (``tg:<chat>:<message>``), so a
    # replay of that command finds this schedule instead of holding the send twice.
    origin: str | None = None


class ConnectToken(SQLModel, table=True):
    """A one-time deep-link token that lets a group admin enter credentials in private."""

    token: str = Field(primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    provider: str
    created_by: int = Field(sa_type=BigInteger)
    expires_at: datetime
    used_at: datetime | None = None


class ConfirmationState(StrEnum):
    """Where an action waiting for its button press is."""

    WAITING = "waiting"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Confirmation(SQLModel, table=True):
    """An action shown with Send / Cancel buttons that runs only when its requester presses Send.

    ``payload`` is the action's arguments as JSON (never a secret); a press moves ``state`` out
    of ``waiting`` with one conditional UPDATE, so two presses run it once.
    """

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    requested_by: int = Field(sa_type=BigInteger)
    kind: str
    payload: str
    state: str = ConfirmationState.WAITING.value
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    decided_by: int | None = Field(default=None, sa_type=BigInteger)
    decided_at: datetime | None = None


class ApprovalState(StrEnum):
    """Where a send held for an admin's approval is (``storage/approvals.py``)."""

    WAITING = "waiting"
    APPROVED = "approved"  # decided: its send is owed (made once, also after a restart)
    DONE = "done"  # its send (or schedule) is stored
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Approval(SQLModel, table=True):
    """An operator's send, schedule or multicast held until another admin approves it.

    ``payload`` is what the send needs as JSON (the same shape a confirmation keeps, never a
    secret); ``route``, ``recipients`` (-1: a group or audience of unknown size) and
    ``preview`` are what the card and ``/approvals`` show. ``origin`` is the command's: a
    replay of it finds this row instead of asking twice.
    """

    __table_args__ = (
        Index("ix_approval_chat_state", "chat_id", "state"),
        Index("ix_approval_state_expires", "state", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    origin: str = Field(unique=True)
    kind: str
    payload: str
    route: str = ""
    recipients: int = 0
    preview: str = ""
    requested_by: int = Field(sa_type=BigInteger)
    requested_by_name: str = ""
    state: str = ApprovalState.WAITING.value
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    decided_by: int | None = Field(default=None, sa_type=BigInteger)
    decided_by_name: str = ""
    decided_at: datetime | None = None
    # The replica whose press approved it and makes its send (another takes over if it dies).
    replica: str | None = None
    card_message_id: int | None = Field(default=None, sa_type=BigInteger)


class RecipientList(SQLModel, table=True):
    """A chat's list of phone numbers (``list:<name>``), uploaded from a .csv or .txt file.

    A new upload is written in chunks into a row that is not ``ready``; only once every
    number is stored (and, when it replaces a list, the replacement is confirmed) does it
    become the chat's list of that name, in one small transaction. ``columns`` are the
    file's extra CSV columns, as written in its header.
    """

    __table_args__ = (Index("ix_recipientlist_chat_name", "chat_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    name: str
    ready: bool = False
    size: int = 0
    columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    file_name: str = ""
    created_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ListEntry(SQLModel, table=True):
    """One number of a recipient list (E.164), with its row's other CSV cells by column."""

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="recipientlist.id", index=True, ondelete="CASCADE")
    number: str
    cells: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Template(SQLModel, table=True):
    """A chat's message template: text with ``{placeholders}`` filled at send time."""

    __table_args__ = (UniqueConstraint("chat_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    name: str
    text: str
    created_by: int = Field(sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow)


class AuditOutcome(StrEnum):
    """What came of an audited action."""

    OK = "ok"
    REFUSED = "refused"  # not allowed, or nothing to do (e.g. every recipient stopped)
    FAILED = "failed"


class AuditEntry(SQLModel, table=True):
    """Who did what in which chat, when, and what came of it; never holds a secret.

    Written through :func:`storage.audit.record`, in the transaction of the action where the
    action is a database change.
    """

    # /audit reads a chat's newest rows.
    __table_args__ = (Index("ix_auditentry_chat_at", "chat_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, index=True)
    user_id: int = Field(sa_type=BigInteger)
    action: str
    detail: str = ""
    outcome: str = Field(
        default=AuditOutcome.OK.value, sa_column_kwargs={"server_default": AuditOutcome.OK.value}
    )
    at: datetime = Field(default_factory=utcnow)


class StopEntry(SQLModel, table=True):
    """A number (E.164) on a chat's stoplist: sends to it are refused per recipient."""

    __table_args__ = (UniqueConstraint("chat_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    number: str
    created_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)


class PhoneCheck(SQLModel, table=True):
    """One number check sent to a provider (one request's numbers) and the results called back.

    ``results`` maps a number's digits to ``{"on_whatsapp": bool | None, "status": str}``;
    ``completed_at`` is set once every number has an answer.
    """

    __table_args__ = (Index("ix_phonecheck_open", "completed_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    numbers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    results: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    requested_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None


class OutboxEntry(SQLModel, table=True):
    """Something the chat must be told, written in the transaction of the change behind it.

    One entry per batch and kind (``card``, ``failures``): a later change of the batch makes
    it pending again with a newer ``event_id`` instead of adding a row, so a burst of changes
    is one edit. ``text`` entries are one row each. ``hold_until``: the process that wrote the
    entry posts it itself until then (``/send`` answers with its own card); a new process
    clears every hold at start. ``message_id`` is the Telegram message that delivered it.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("batch_id", "kind"),
        Index("ix_outbox_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, foreign_key="chat.id", ondelete="CASCADE")
    batch_id: int | None = Field(default=None, foreign_key="batch.id", ondelete="CASCADE")
    kind: str
    state: str = OutboxState.PENDING.value
    # Newest StatusEvent the chat must see (card, failures); delivered once it shows that.
    event_id: int = 0
    # A text entry's HTML; a card entry's line above its first post (a fired schedule's).
    text: str = ""
    hold_until: datetime | None = None
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    # The replica that delivers it (the writer; a dead replica's are taken over).
    replica: str | None = None


class InboxUpdate(SQLModel, table=True):
    """A Telegram update taken from Telegram and not yet fully handled (``storage/inbox.py``).

    Written before Telegram is told the update was received (the next ``getUpdates``, or the
    webhook's 200) and deleted once handled, so a crash in between replays it at the next
    start instead of losing it. ``data`` is the update as JSON, the user's text included: it
    lives only until the update is handled.
    """

    __tablename__ = "inbox"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: str
    received_at: datetime = Field(default_factory=utcnow)
    # The replica handling it: only a dead replica's updates are replayed by another.
    replica: str | None = None


class Replica(SQLModel, table=True):
    """One running bot process (a replica), its heartbeat, and who took over its work.

    Written at start with a random id and refreshed every ``REPLICA_HEARTBEAT_SECONDS``; a
    replica not seen for ``REPLICA_DEAD_SECONDS`` (or stopped, or a dead process on the same
    host) is dead, and one live replica takes its work over (``adopted_by``).
    """

    id: str = Field(primary_key=True)
    host: str = ""
    pid: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    seen_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None
    adopted_by: str | None = None
    adopted_at: datetime | None = None


class Dialogue(SQLModel, table=True):
    """A guided ``/connect`` in progress for one user, so any replica can take its next step.

    ``data`` is encrypted like stored credentials (it holds the values typed so far); the row
    is deleted when the dialogue ends, is cancelled or times out.
    """

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    started_at: datetime = Field(default_factory=utcnow)


class RateSlot(SQLModel, table=True):
    """The shared pace of one provider account across replicas (no Redis): its next slot.

    ``free_at`` is the database server's clock in POSIX seconds; the key is a hash, never a
    credential.
    """

    __tablename__ = "rateslot"

    key: str = Field(primary_key=True)
    free_at: float = 0.0
