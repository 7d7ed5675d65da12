"""Approvals: a chat's threshold, and the sends held for an admin's approval.

``chat.approval_above`` is ``/approval <n>`` (NULL: off); ``approval`` holds each send,
schedule or multicast of an operator that waits for another admin, with its state.

Revision ID: 0017_approvals
Revises: 0016_chat_language
Create Date: 2026-12-06 05:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_approvals"
down_revision = "0016_chat_language"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval_above", sa.Integer(), nullable=True))
    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("preview", sa.String(), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=False),
        sa.Column("requested_by_name", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_by_name", sa.String(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replica", sa.String(), nullable=True),
        sa.Column("card_message_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("origin"),
    )
    op.create_index("ix_approval_chat_state", "approval", ["chat_id", "state"], unique=False)
    op.create_index("ix_approval_state_expires", "approval", ["state", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_approval_state_expires", table_name="approval")
    op.drop_index("ix_approval_chat_state", table_name="approval")
    op.drop_table("approval")
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.drop_column("approval_above")
