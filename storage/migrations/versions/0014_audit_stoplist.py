"""Audit outcomes and the chats' stoplists.

``auditentry`` gets ``outcome`` (what came of the action: ``ok``, ``refused`` …; rows written
before it read ``ok``) and an index to read a chat's newest rows; ``stopentry`` holds the
numbers (E.164) a chat refuses to send to.

Revision ID: 0014_audit_stoplist
Revises: 0013_big_sends
Create Date: 2026-12-06 02:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_audit_stoplist"
down_revision = "0013_big_sends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(), nullable=False, server_default="ok"))
        batch_op.create_index("ix_auditentry_chat_at", ["chat_id", "id"], unique=False)
    op.create_table(
        "stopentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chat_id", "number"),
    )


def downgrade() -> None:
    op.drop_table("stopentry")
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.drop_index("ix_auditentry_chat_at")
        batch_op.drop_column("outcome")
