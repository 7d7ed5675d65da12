"""Recipient lists, message templates, and the per-recipient texts of a personalised schedule.

Revision ID: 0008_lists_templates
Revises: 0007_confirmations
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_lists_templates"
down_revision = "0007_confirmations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipientlist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recipientlist", schema=None) as batch_op:
        batch_op.create_index("ix_recipientlist_chat_name", ["chat_id", "name"], unique=False)
    op.create_table(
        "listentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("cells", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["list_id"], ["recipientlist.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("listentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listentry_list_id"), ["list_id"], unique=False)
    op.create_table(
        "template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chat_id", "name"),
    )
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("texts", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_column("texts")
    op.drop_table("template")
    with op.batch_alter_table("listentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listentry_list_id"))
    op.drop_table("listentry")
    with op.batch_alter_table("recipientlist", schema=None) as batch_op:
        batch_op.drop_index("ix_recipientlist_chat_name")
    op.drop_table("recipientlist")
