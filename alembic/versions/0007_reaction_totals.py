"""Stats: each message's reaction total, kept by the database (the most-reacted messages).

``message_reaction_totals`` holds, per message with reactions, the number the
reactions stat ranks by: per emoji the larger of the present per-user
reactions and the anonymous total Telegram last reported, summed over emoji.
Statement-level triggers on ``message_reactions`` and ``reaction_counts``
count it again for every message a statement touched, whichever code path
wrote (pipeline, chat migration, retention, privacy deletions), so the stat
reads one row per reacted message instead of every reaction. Concurrent
writers of the same message count one after the other: each first locks the
message's row (in key order) and only then counts, in a statement that sees
everything committed before the lock was granted. This migration fills the
table from the existing rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Per message of ``keys`` (a CTE of chat_id, msg_id): its total; 0 when it has none.
_COUNTED = """
    SELECT k.chat_id, k.msg_id, coalesce(sum(e.n), 0)::int AS total
    FROM keys k
    LEFT JOIN (
        SELECT chat_id, msg_id, reaction, max(n) AS n FROM (
            SELECT r.chat_id, r.msg_id, r.reaction, count(*) AS n
            FROM message_reactions r JOIN keys USING (chat_id, msg_id)
            WHERE r.removed_at IS NULL
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT c.chat_id, c.msg_id, c.reaction, c.count
            FROM reaction_counts c JOIN keys USING (chat_id, msg_id)
        ) both_sources
        GROUP BY 1, 2, 3
    ) e ON e.chat_id = k.chat_id AND e.msg_id = k.msg_id
    GROUP BY 1, 2
"""

_RECOUNT = f"""
CREATE FUNCTION message_reaction_totals_recount(chat_ids bigint[], msg_ids bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    locked bigint;
BEGIN
    -- Lock the messages' rows (made if missing) in key order: a concurrent writer of the
    -- same message waits here until this transaction ends, then counts what it committed.
    -- A row deleted (total 0) while we waited is not locked: make it again and retry.
    LOOP
        INSERT INTO message_reaction_totals (chat_id, msg_id, total)
        SELECT k.chat_id, k.msg_id, 0 FROM unnest(chat_ids, msg_ids) AS k(chat_id, msg_id)
        ORDER BY 1, 2
        ON CONFLICT (chat_id, msg_id) DO NOTHING;
        SELECT count(*) INTO locked FROM (
            SELECT 1 FROM message_reaction_totals t
            JOIN unnest(chat_ids, msg_ids) AS k(chat_id, msg_id)
              ON t.chat_id = k.chat_id AND t.msg_id = k.msg_id
            ORDER BY t.chat_id, t.msg_id FOR UPDATE OF t
        ) rows_locked;
        EXIT WHEN locked = cardinality(chat_ids);
    END LOOP;
    -- A new statement: it sees every change committed before the locks were granted.
    WITH keys AS (SELECT * FROM unnest(chat_ids, msg_ids) AS k(chat_id, msg_id)),
    counted AS ({_COUNTED})
    UPDATE message_reaction_totals t SET total = c.total FROM counted c
    WHERE t.chat_id = c.chat_id AND t.msg_id = c.msg_id AND t.total <> c.total;
    DELETE FROM message_reaction_totals t
    USING unnest(chat_ids, msg_ids) AS k(chat_id, msg_id)
    WHERE t.chat_id = k.chat_id AND t.msg_id = k.msg_id AND t.total <= 0;
END
$$
"""  # noqa: S608 - constant SQL

#: Trigger functions: the touched messages of a statement, from its transition tables.
_TRIGGER_FUNCTIONS = {
    "message_reaction_totals_inserted": "SELECT chat_id, msg_id FROM new_rows",
    "message_reaction_totals_deleted": "SELECT chat_id, msg_id FROM old_rows",
    "message_reaction_totals_updated": (
        "SELECT chat_id, msg_id FROM old_rows UNION SELECT chat_id, msg_id FROM new_rows"
    ),
}

_TRIGGER_FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chat_ids bigint[];
    msg_ids bigint[];
BEGIN
    SELECT array_agg(chat_id ORDER BY chat_id, msg_id), array_agg(msg_id ORDER BY chat_id, msg_id)
    INTO chat_ids, msg_ids
    FROM (SELECT DISTINCT chat_id, msg_id FROM ({keys}) touched) k;
    IF chat_ids IS NOT NULL THEN
        PERFORM message_reaction_totals_recount(chat_ids, msg_ids);
    END IF;
    RETURN NULL;
END
$$
"""

#: (event, transition tables, function) of each table's triggers.
_EVENTS = (
    ("INSERT", "NEW TABLE AS new_rows", "message_reaction_totals_inserted"),
    ("DELETE", "OLD TABLE AS old_rows", "message_reaction_totals_deleted"),
    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "message_reaction_totals_updated"),
)
TABLES = ("message_reactions", "reaction_counts")


def upgrade() -> None:
    op.create_table(
        "message_reaction_totals",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("msg_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "msg_id"),
    )
    op.execute(_RECOUNT)
    for name, keys in _TRIGGER_FUNCTIONS.items():
        op.execute(_TRIGGER_FUNCTION.format(name=name, keys=keys))
    for table in TABLES:
        for event, transition, function in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_totals_{event.lower()} AFTER {event} ON {table}"
                f" REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    op.execute(
        "INSERT INTO message_reaction_totals (chat_id, msg_id, total)"  # noqa: S608
        " WITH keys AS (SELECT chat_id, msg_id FROM message_reactions WHERE removed_at IS NULL"
        " UNION SELECT chat_id, msg_id FROM reaction_counts),"
        f" counted AS ({_COUNTED})"
        " SELECT chat_id, msg_id, total FROM counted WHERE total > 0"
    )


def downgrade() -> None:
    for table in TABLES:
        for event, _, _ in _EVENTS:
            op.execute(f"DROP TRIGGER {table}_totals_{event.lower()} ON {table}")
    for name in _TRIGGER_FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP FUNCTION message_reaction_totals_recount(bigint[], bigint[])")
    op.drop_table("message_reaction_totals")
