"""Messages by recipient within a chat: inline search by number and ``/history to=``.

Both ask for one chat's (or a few chats') messages to one number, newest first; without this
index each reads every message of the chat (156 ms for 200,000 messages in one group).

Revision ID: 0015_recipient_index
Revises: 0014_audit_stoplist
Create Date: 2026-12-06 04:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015_recipient_index"
down_revision = "0014_audit_stoplist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_message_chat_recipient", "message", ["chat_id", "recipient", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_message_chat_recipient", table_name="message")
