"""Response times: questions and the first reply to them.

- ``question_replies``: one row per question (a message whose text ended with a
  question mark when it was sent, detected at ingest so it works with text
  storage off) with its first reply by someone else, kept by the writer.
- ``ix_messages_reply_target``: the replies to one message (partial, replies
  only): the writer's first-reply lookup and the newcomers' first replies.

Questions are filled here from the text of chats that store it (the same
question marks as ``tgstats.features.QUESTION_MARKS``); other chats' earlier
messages kept no text, so their questions start with this revision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ``tgstats.features.QUESTION_MARKS`` as a regular expression class (kept in step by a test).
QUESTION_PATTERN = (
    "[?\uff1f\u061f\u037e\u055e\u1367\ua60f\u1945\u2e2e\u203d\u2047\u2048\u2049"
    "\u2753\u2754\ufe16\ufe56][\\s\ufe0f\ufe0e]*$"
)


def upgrade() -> None:
    op.create_table(
        "question_replies",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("msg_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("asker_id", sa.BigInteger(), nullable=True),
        sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_reply_msg_id", sa.BigInteger(), nullable=True),
        sa.Column("replier_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("chat_id", "msg_id"),
    )
    op.create_index(
        "ix_question_replies_chat_day", "question_replies", ["chat_id", "local_day"]
    )
    op.create_index(
        "ix_messages_reply_target",
        "messages",
        ["chat_id", "reply_to_msg_id"],
        postgresql_where=sa.text("reply_to_msg_id IS NOT NULL"),
    )
    op.execute(
        sa.text(
            """
            INSERT INTO question_replies (chat_id, msg_id, asked_at, local_day, asker_id)
            SELECT chat_id, msg_id, date, local_day, coalesce(user_id, sender_chat_id)
            FROM messages WHERE text IS NOT NULL AND text ~ :pattern
            """
        ).bindparams(pattern=QUESTION_PATTERN)
    )
    op.execute(
        """
        UPDATE question_replies q SET first_reply_at = f.date, first_reply_msg_id = f.msg_id,
               replier_id = f.poster
        FROM (
            SELECT DISTINCT ON (q.chat_id, q.msg_id) q.chat_id, q.msg_id AS question,
                   r.date, r.msg_id, coalesce(r.user_id, r.sender_chat_id) AS poster
            FROM question_replies q
            JOIN messages r ON r.chat_id = q.chat_id AND r.reply_to_msg_id = q.msg_id
            WHERE coalesce(r.user_id, r.sender_chat_id) IS NOT NULL
              AND coalesce(r.user_id, r.sender_chat_id) IS DISTINCT FROM q.asker_id
            ORDER BY q.chat_id, q.msg_id, r.date, r.msg_id
        ) f
        WHERE q.chat_id = f.chat_id AND q.msg_id = f.question
        """
    )


def downgrade() -> None:
    op.drop_index("ix_messages_reply_target", table_name="messages")
    op.drop_index("ix_question_replies_chat_day", table_name="question_replies")
    op.drop_table("question_replies")
