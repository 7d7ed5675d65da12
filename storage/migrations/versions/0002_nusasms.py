"""NusaSMS: WhatsApp number checks and the results NusaSMS calls back.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phonecheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("phonecheck", schema=None) as batch_op:
        batch_op.create_index("ix_phonecheck_open", ["completed_at", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("phonecheck", schema=None) as batch_op:
        batch_op.drop_index("ix_phonecheck_open")
    op.drop_table("phonecheck")
