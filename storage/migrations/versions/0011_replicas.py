"""Several replicas on one database: heartbeats, owners of work, the shared rate limit.

A ``replica`` row per running process (its heartbeat); ``message.replica``,
``outbox.replica`` and ``inbox.replica`` name the replica whose work a row is, so only a dead
replica's rows are taken over (``storage/replicas.py``); ``rateslot`` keeps the shared pace of
provider accounts when no Redis is configured; ``dialogue`` keeps a guided ``/connect`` in
progress (encrypted), so its next message may reach any replica.

Revision ID: 0011_replicas
Revises: 0010_inbox
Create Date: 2026-12-14 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_replicas"
down_revision = "0010_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("adopted_by", sa.String(), nullable=True),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "dialogue",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "rateslot",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("free_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("replica", sa.String(), nullable=True))
        batch.create_index("ix_message_replica", ["replica"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("replica", sa.String(), nullable=True))
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("replica", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("replica")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("replica")
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_replica")
        batch.drop_column("replica")
    op.drop_table("rateslot")
    op.drop_table("dialogue")
    op.drop_table("replica")
