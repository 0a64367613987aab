"""The chat list at many chats: a per-chat summary to sort by, title and search indexes.

``chat_list_summary`` holds, per chat, the numbers the chat list sorts by (messages and
the sum of daily active users over the chat's last 30 local days, the last local day
with a message, current members). It is an ordering aid, refreshed set-wise for the
chats each committed batch touched and by a bounded background pass over every chat
(``tgstats.pipeline.summaries``); the numbers a page shows are computed live for the
page. A statement-level trigger gives every new chat its row, so the list can read the
summary with an inner join and walk its indexes. ``chats`` gets an index for the title
order and a full-text index (``simple`` configuration, word prefixes) for the search;
both are core PostgreSQL, so the embedded server has them too.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_list_summary",
        sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("messages_30d", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("active_users_30d", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("last_active_day", sa.Date),
        sa.Column("members", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    for column in ("messages_30d", "active_users_30d", "members"):
        op.create_index(f"ix_chat_list_summary_{column}", "chat_list_summary", [column, "chat_id"])
    op.execute(
        "CREATE INDEX ix_chat_list_summary_last_active_day ON chat_list_summary"
        " (last_active_day DESC NULLS LAST, chat_id DESC)"
    )
    op.execute(
        "CREATE INDEX ix_chats_title_order ON chats"
        " ((lower(coalesce(title, username, ''))) COLLATE \"C\", id)"
    )
    op.execute(
        "CREATE INDEX ix_chats_search ON chats USING gin"
        " (to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(username, '')))"
    )
    op.execute(
        """
        CREATE FUNCTION chat_list_summary_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO chat_list_summary (chat_id) SELECT id FROM new_chats
            ON CONFLICT (chat_id) DO NOTHING;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER chat_list_summary_rows AFTER INSERT ON chats"
        " REFERENCING NEW TABLE AS new_chats FOR EACH STATEMENT"
        " EXECUTE FUNCTION chat_list_summary_rows()"
    )
    # Every chat has a row from now on; the first background pass fills in the numbers.
    op.execute("INSERT INTO chat_list_summary (chat_id) SELECT id FROM chats")


def downgrade() -> None:
    op.execute("DROP TRIGGER chat_list_summary_rows ON chats")
    op.execute("DROP FUNCTION chat_list_summary_rows()")
    op.drop_index("ix_chats_search", table_name="chats")
    op.drop_index("ix_chats_title_order", table_name="chats")
    op.drop_table("chat_list_summary")
