"""Quiet hours per chat, and the original due time of a schedule run they hold.

``chat.quiet_hours`` is the daily window as typed (``22:00-07:00``) or NULL. A schedule run
that falls inside it is moved to the window's end; ``schedule.hold_due`` keeps the time it was
due, so a repeating schedule keeps its rhythm after the held run. ``schedule.origin`` is the
command a held send came from (unique), so a replayed command finds its schedule.

Revision ID: 0012_quiet_hours
Revises: 0011_replicas
Create Date: 2026-12-06 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_quiet_hours"
down_revision = "0011_replicas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_hours", sa.String(), nullable=True))
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_due", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.String(), nullable=True))
        batch_op.create_index("ix_schedule_origin", ["origin"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_origin")
        batch_op.drop_column("origin")
        batch_op.drop_column("hold_due")
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.drop_column("quiet_hours")
