"""Pipeline: per-edit log and the bot's membership timestamp.

``message_edits`` keeps one row per (message, edit date), so an edit delivered
twice or out of order counts once and rollups can be rebuilt from raw rows.
``chats.bot_status_at`` orders bot added/removed events, so a re-delivered old
event never flips the current state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_edits",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("msg_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("edit_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("chat_id", "msg_id", "edit_date"),
    )
    op.add_column("chats", sa.Column("bot_status_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("chats", "bot_status_at")
    op.drop_table("message_edits")
