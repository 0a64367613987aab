"""Stats: what the interactions stat reads instead of summing every reply pair.

- ``chat_day_rollup.member_replies``: replies to another member (a poster replying
  to a known member other than themselves), the chat-level total of the reply-pair
  rollup, counted by the writer with the pairs. Filled here from the pair rows.
- ``ix_reply_pair_week_rollup_top``: each sealed week's pairs ordered by replies,
  covering the pair (the largest rows of a week, read index-only backwards).
- ``ix_reply_pair_week_rollup_pair``: one pair's weeks in one index range, covering
  the count (a candidate pair's exact sum).

Week rows are written when a week is sealed and by late or imported messages of
sealed weeks, not by the current week's live traffic, so the two indexes cost live
ingest next to nothing
(``tgstats.stats.subqueries.reply_pair_top``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_day_rollup",
        sa.Column("member_replies", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(
        """
        UPDATE chat_day_rollup d SET member_replies = p.replies
        FROM (
            SELECT chat_id, local_day, sum(replies) AS replies FROM reply_pair_day_rollup
            WHERE from_user_id <> to_user_id GROUP BY chat_id, local_day
        ) p
        WHERE d.chat_id = p.chat_id AND d.local_day = p.local_day
        """
    )
    op.create_index(
        "ix_reply_pair_week_rollup_top",
        "reply_pair_week_rollup",
        ["chat_id", "week", "replies"],
        postgresql_include=["from_user_id", "to_user_id"],
    )
    op.create_index(
        "ix_reply_pair_week_rollup_pair",
        "reply_pair_week_rollup",
        ["chat_id", "from_user_id", "to_user_id", "week"],
        postgresql_include=["replies"],
    )


def downgrade() -> None:
    op.drop_index("ix_reply_pair_week_rollup_pair", table_name="reply_pair_week_rollup")
    op.drop_index("ix_reply_pair_week_rollup_top", table_name="reply_pair_week_rollup")
    op.drop_column("chat_day_rollup", "member_replies")
