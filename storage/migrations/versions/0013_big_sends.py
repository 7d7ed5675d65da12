"""Large sends: progress of a send to many recipients, Stop, and resuming after a restart.

``batch.progress`` is set for a large send only (``sending``, ``stopped``, ``done``);
``batch.resume`` keeps what a restart needs to go on with it (options, failover chain);
``message.handed_at`` says a large send's row was handed to the provider (set in its own
transaction before the call), so a restart sends exactly the rows never handed over.

Revision ID: 0013_big_sends
Revises: 0012_quiet_hours
Create Date: 2026-12-06 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_big_sends"
down_revision = "0012_quiet_hours"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("resume", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("stopped_by_name", sa.String(), nullable=False, server_default="")
        )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("handed_at")
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_column("stopped_by_name")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("started_at")
        batch_op.drop_column("resume")
        batch_op.drop_column("progress")
