"""Each chat's language (/lang).

``chat.language`` is a language code (``en``, ``id``) or NULL for DEFAULT_LANGUAGE, so
changing the default moves every chat that never chose.

Revision ID: 0016_chat_language
Revises: 0015_recipient_index
Create Date: 2026-12-06 05:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_chat_language"
down_revision = "0015_recipient_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat", schema=None) as batch_op:
        batch_op.drop_column("language")
