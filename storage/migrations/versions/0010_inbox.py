"""The inbox: Telegram updates taken but not yet handled, replayed after a crash.

An update is stored before Telegram is told it arrived and deleted once handled
(``storage/inbox.py``), so a process killed in between handles it at its next start.

Revision ID: 0010_inbox
Revises: 0009_outbox
Create Date: 2026-12-13 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_inbox"
down_revision = "0009_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )


def downgrade() -> None:
    op.drop_table("inbox")
