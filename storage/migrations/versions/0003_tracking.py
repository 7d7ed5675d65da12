"""Delivery tracking: which status events a batch's card and failure notices already show.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_event_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notice_event_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_column("notice_event_id")
        batch_op.drop_column("card_event_id")
