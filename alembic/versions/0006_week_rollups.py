"""Stats: week rollups for sealed ISO weeks (per member, term, topic member and reply pair).

Whole weeks of a period are read from one row per member (term, ...) and week
instead of seven day rows; the days at a period's edges still come from the day
rollups. ``chats.rollup_sealed_before`` says which weeks have week rows; this
migration fills them for every week that started before the current one (UTC,
a day early so no chat's open week is sealed) from the existing day rollups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USER_COUNTERS = (
    "messages", "text_length", "media", "urls", "replies_sent", "replies_received",
    "reactions_given", "reactions_received", "edits", "deletions",
)  # fmt: skip
_WEEK = "(d.local_day - (extract(isodow FROM d.local_day)::int - 1))"


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)


def _key(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), autoincrement=False, nullable=False)


def upgrade() -> None:
    op.add_column("chats", sa.Column("rollup_sealed_before", sa.Date(), nullable=True))
    op.add_column("chats", sa.Column("rollup_sealed_from", sa.BigInteger(), nullable=True))
    op.create_table(
        "chat_user_week_rollup",
        _key("chat_id"),
        sa.Column("week", sa.Date(), nullable=False),
        _key("user_id"),
        *(_counter(name) for name in _USER_COUNTERS),
        sa.Column("active_mask", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "week", "user_id"),
    )
    op.create_table(
        "chat_term_week_rollup",
        _key("chat_id"),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        _counter("count"),
        sa.PrimaryKeyConstraint("chat_id", "kind", "week", "term"),
    )
    op.create_table(
        "chat_topic_user_week_rollup",
        _key("chat_id"),
        sa.Column("week", sa.Date(), nullable=False),
        _key("topic_id"),
        _key("user_id"),
        _counter("messages"),
        sa.PrimaryKeyConstraint("chat_id", "week", "topic_id", "user_id"),
    )
    op.create_table(
        "reply_pair_week_rollup",
        _key("chat_id"),
        sa.Column("week", sa.Date(), nullable=False),
        _key("from_user_id"),
        _key("to_user_id"),
        _counter("replies"),
        sa.PrimaryKeyConstraint("chat_id", "week", "from_user_id", "to_user_id"),
    )
    # Data: seal every chat with day rollups up to the Monday of the current UTC week
    # (taken a day early: no chat, whatever its zone, is already in a later week).
    op.execute(
        "UPDATE chats SET rollup_sealed_from = migrated_from_chat_id,"
        " rollup_sealed_before = ((now() AT TIME ZONE 'UTC')::date - 1)"
        " - (extract(isodow FROM (now() AT TIME ZONE 'UTC')::date - 1)::int - 1)"
    )
    sealed = "JOIN chats c ON c.id = d.chat_id AND d.local_day < c.rollup_sealed_before"
    sums = ", ".join(f"sum(d.{name})" for name in _USER_COUNTERS)
    op.execute(
        f"INSERT INTO chat_user_week_rollup (chat_id, week, user_id, {', '.join(_USER_COUNTERS)},"  # noqa: S608
        " active_mask)"
        f" SELECT d.chat_id, {_WEEK}, d.user_id, {sums},"
        " bit_or(CASE WHEN d.messages > 0 THEN 1 << (extract(isodow FROM d.local_day)::int - 1)"
        " ELSE 0 END)::smallint"
        f" FROM chat_user_day_rollup d {sealed} GROUP BY 1, 2, 3"
    )
    op.execute(
        "INSERT INTO chat_term_week_rollup (chat_id, kind, week, term, count)"  # noqa: S608
        f" SELECT d.chat_id, d.kind, {_WEEK}, d.term, sum(d.count)"
        f" FROM chat_term_day_rollup d {sealed} GROUP BY 1, 2, 3, 4"
    )
    op.execute(
        "INSERT INTO chat_topic_user_week_rollup (chat_id, week, topic_id, user_id, messages)"  # noqa: S608
        f" SELECT d.chat_id, {_WEEK}, d.topic_id, d.user_id, sum(d.messages)"
        f" FROM chat_topic_user_day_rollup d {sealed} GROUP BY 1, 2, 3, 4"
    )
    op.execute(
        "INSERT INTO reply_pair_week_rollup (chat_id, week, from_user_id, to_user_id, replies)"  # noqa: S608
        f" SELECT d.chat_id, {_WEEK}, d.from_user_id, d.to_user_id, sum(d.replies)"
        f" FROM reply_pair_day_rollup d {sealed} GROUP BY 1, 2, 3, 4"
    )


def downgrade() -> None:
    for table in (
        "reply_pair_week_rollup", "chat_topic_user_week_rollup", "chat_term_week_rollup",
        "chat_user_week_rollup",
    ):  # fmt: skip
        op.drop_table(table)
    op.drop_column("chats", "rollup_sealed_from")
    op.drop_column("chats", "rollup_sealed_before")
