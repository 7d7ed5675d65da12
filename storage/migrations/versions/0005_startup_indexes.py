"""Start-up without full scans: recent sends by creation time, messages by state and update.

``TrackingRepository.stale_cards`` looks at the cards of recent sends only (``batch.created_at``)
and ``TrackingRepository.poll_hints`` at messages delivered recently (``message.state``,
``message.updated_at``); without these indexes both read every row at each start.

Revision ID: 0005_startup_indexes
Revises: 0003
Create Date: 2026-12-05 22:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0005_startup_indexes"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_batch_created", "batch", ["created_at"], unique=False)
    op.create_index("ix_message_state_updated", "message", ["state", "updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_message_state_updated", table_name="message")
    op.drop_index("ix_batch_created", table_name="batch")
