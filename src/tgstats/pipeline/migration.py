"""A basic group became a supergroup: move its rows and merge its rollups, exactly once.

Recording the migration in ``chat_migrations`` is what makes it idempotent: the
move runs only when that insert actually inserted. Raw rows move unless the new
chat already has a row with the same key (Telegram numbers the supergroup's
messages afresh, so a clash is possible but rare; the clashing old row stays
under the old id). Rollups are merged by adding counters, and
``active_users`` is recounted for the days both chats share, so a member who
posted in both on the migration day counts once. Events for the old id that
arrive later are redirected to the new id by the writer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Table

from tgstats.db import models
from tgstats.events import ChatMigratedEvent
from tgstats.pipeline.batch import BatchState
from tgstats.pipeline.profiles import ensure_chats

__all__ = ["write_migrations"]

log = logging.getLogger(__name__)

# Raw tables and the key columns (besides chat_id) two rows must not share.
_RAW_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("messages", ("msg_id",)),
    ("message_edits", ("msg_id", "edit_date")),
    ("service_messages", ("msg_id",)),
    ("forum_topics", ("topic_id",)),
    ("reaction_counts", ("msg_id", "reaction")),
    ("message_reactions", ("msg_id", "user_id", "actor_chat_id", "reaction")),
    ("membership_events", ("user_id", "date", "action")),
    ("memberships", ("user_id",)),
)

_ROLLUP_MODELS: tuple[type[models.Base], ...] = (
    models.ChatDayRollup,
    models.ChatHourRollup,
    models.ChatUserDayRollup,
    models.ChatUserHourRollup,
    models.ChatMediaDayRollup,
    models.ChatTermDayRollup,
    models.ChatTopicUserDayRollup,
    models.ReplyPairDayRollup,
)

_RECORD = """
INSERT INTO chat_migrations (old_chat_id, new_chat_id, migrated_at) VALUES ($1, $2, $3)
ON CONFLICT (old_chat_id) DO NOTHING RETURNING old_chat_id
"""

_COPY_SETTINGS = """
INSERT INTO chat_settings (chat_id, store_text, capture_reactions, timezone, locale,
                           text_retention_days, metadata_retention_days)
SELECT $2, store_text, capture_reactions, timezone, locale, text_retention_days,
       metadata_retention_days
FROM chat_settings WHERE chat_id = $1
ON CONFLICT (chat_id) DO NOTHING
"""

_RECOUNT_ACTIVE = """
UPDATE chat_day_rollup d SET active_users = (
    SELECT count(*) FROM chat_user_day_rollup u
    WHERE u.chat_id = d.chat_id AND u.local_day = d.local_day AND u.messages > 0)
WHERE d.chat_id = $1 AND d.local_day = ANY($2::date[])
"""


def _move_sql(table: str, keys: Sequence[str]) -> str:
    clash = " AND ".join(f"n.{k} IS NOT DISTINCT FROM t.{k}" for k in keys)
    return (
        f"UPDATE {table} t SET chat_id = $2 WHERE t.chat_id = $1 AND NOT EXISTS "  # noqa: S608 - names are constants
        f"(SELECT 1 FROM {table} n WHERE n.chat_id = $2 AND {clash})"
    )


def _merge_sql(model: type[models.Base]) -> str:
    table: Table = model.__table__  # type: ignore[assignment]
    keys = [c.name for c in table.primary_key.columns]
    counters = [c.name for c in table.columns if not c.primary_key]
    others = [k for k in keys if k != "chat_id"]
    columns = ", ".join(["chat_id", *others, *counters])
    updates = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
    return (
        f"INSERT INTO {table.name} ({columns}) "  # noqa: S608 - names from the models
        f"SELECT $2, {', '.join([*others, *counters])} FROM {table.name} WHERE chat_id = $1 "
        f"ORDER BY {', '.join(others)} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


async def write_migrations(state: BatchState, events: Sequence[ChatMigratedEvent]) -> None:
    for event in events:
        if event.old_chat_id == event.new_chat_id:
            continue
        await _migrate(state, event)


async def _migrate(state: BatchState, event: ChatMigratedEvent) -> None:
    old, new = event.old_chat_id, event.new_chat_id
    recorded = await state.fetch("record_migration", _RECORD, old, new, event.date)
    if not recorded:
        return  # moved before: nothing to do twice
    await ensure_chats(state, (old, new))
    await state.execute(
        "mark_migrated_chats",
        "UPDATE chats SET migrated_to_chat_id = $2, bot_present = false WHERE id = $1",
        old,
        new,
    )
    await state.execute(
        "mark_migrated_chats", "UPDATE chats SET migrated_from_chat_id = $1 WHERE id = $2", old, new
    )
    await state.execute("copy_chat_settings", _COPY_SETTINGS, old, new)
    for table, keys in _RAW_TABLES:
        await state.execute(f"migrate_{table}", _move_sql(table, keys), old, new)
    left = await state.conn.fetchval("SELECT count(*) FROM messages WHERE chat_id = $1", old)
    if left:
        log.warning(
            "chat migration %s -> %s: %d messages clash with the new chat's ids and stay "
            "under the old id (their counts are merged)", old, new, left,
        )  # fmt: skip
    await state.execute(
        "delete_migrated_memberships", "DELETE FROM memberships WHERE chat_id = $1", old
    )
    days = await state.conn.fetch("SELECT local_day FROM chat_day_rollup WHERE chat_id = $1", old)
    for model in _ROLLUP_MODELS:
        name = model.__tablename__
        await state.execute(f"merge_{name}", _merge_sql(model), old, new)
        delete = f"DELETE FROM {name} WHERE chat_id = $1"  # noqa: S608 - a model's table
        await state.execute(f"merge_{name}", delete, old)
    await state.execute("recount_active_users", _RECOUNT_ACTIVE, new, [r[0] for r in days])
    state.touch(old)
    state.touch(new)
