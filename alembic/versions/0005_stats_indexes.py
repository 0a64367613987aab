"""Stats: topic rollup rows by chat and local day (the topics stat reads a day range).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_chat_topic_user_day_rollup_chat_day",
        "chat_topic_user_day_rollup",
        ["chat_id", "local_day"],
    )


def downgrade() -> None:
    op.drop_index("ix_chat_topic_user_day_rollup_chat_day", table_name="chat_topic_user_day_rollup")
