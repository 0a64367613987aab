"""A basic group became a supergroup: move its rows and merge its rollups, exactly once.

Recording the migration in ``chat_migrations`` is what makes it idempotent: the
move runs only when that insert actually inserted. Telegram numbers the
supergroup's messages from 1 again, so the basic group's ids would clash with
the supergroup's own: the moved history is kept apart under **negated** message
ids (``moved_msg_id``), and every column that names one of those messages
(``reply_to_msg_id``, edits, reactions, reaction counts, service messages,
``source_msg_id``) is negated with it. Supergroup ids are always positive, so
nothing can collide. Rollups are merged by adding counters, and
``active_users`` is recounted for the days both chats share, so a member who
posted in both on the migration day counts once. Events that still name the
old chat (late or re-delivered) are redirected by ``redirect_event`` to the new
id and the negated message id, so they dedupe against the moved rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec
from sqlalchemy import Table

from tgstats.db import models
from tgstats.events import (
    ChatMigratedEvent,
    ChatSnapshot,
    DeleteEvent,
    EditEvent,
    Event,
    MemberEvent,
    MessageEvent,
    ReactionCountEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.pipeline.batch import BatchState
from tgstats.pipeline.profiles import ensure_chats

__all__ = ["moved_msg_id", "redirect_event", "write_migrations"]

log = logging.getLogger(__name__)

# Raw tables, the key columns (besides chat_id) two rows must not share, and the
# columns naming a basic-group message id, negated on the move.
_RAW_TABLES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("messages", ("msg_id",), ("msg_id", "reply_to_msg_id")),
    ("message_edits", ("msg_id", "edit_date"), ("msg_id",)),
    ("service_messages", ("msg_id",), ("msg_id",)),
    ("forum_topics", ("topic_id",), ()),  # basic groups have no topics
    ("reaction_counts", ("msg_id", "reaction"), ("msg_id",)),
    ("message_reactions", ("msg_id", "user_id", "actor_chat_id", "reaction"), ("msg_id",)),
    ("membership_events", ("user_id", "date", "action"), ("source_msg_id",)),
    ("question_replies", ("msg_id",), ("msg_id", "first_reply_msg_id")),
    ("memberships", ("user_id",), ()),
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


def moved_msg_id(msg_id: int) -> int:
    """The id a basic-group message is kept under once its chat became a supergroup."""
    return -msg_id


def _move_sql(table: str, keys: Sequence[str], negated: Sequence[str]) -> str:
    def moved(column: str) -> str:
        return f"-t.{column}" if column in negated else f"t.{column}"

    clash = " AND ".join(f"n.{k} IS NOT DISTINCT FROM {moved(k)}" for k in keys)
    sets = ", ".join(["chat_id = $2", *(f"{c} = -{c}" for c in negated)])
    return (
        f"UPDATE {table} t SET {sets} WHERE t.chat_id = $1 AND NOT EXISTS "  # noqa: S608 - names are constants
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
    for table, keys, negated in _RAW_TABLES:
        await state.execute(f"migrate_{table}", _move_sql(table, keys, negated), old, new)
    left = await state.conn.fetchval("SELECT count(*) FROM messages WHERE chat_id = $1", old)
    if left:
        log.warning(
            "chat migration %s -> %s: %d messages were already stored under their moved "
            "ids and stay under the old id (their counts are merged)", old, new, left,
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


def redirect_event(event: Event, redirect: dict[int, int]) -> Event:
    """An event naming a chat that became a supergroup, as it applies to the new chat.

    Message ids it names are the basic group's, so they become the moved
    (negated) ids: a late or re-delivered old-group message dedupes against
    its moved row instead of clashing with the supergroup's own message.
    """
    if isinstance(event, (UserSnapshot, ChatMigratedEvent, ChatSnapshot)):
        return event  # the old chat's own profile stays with the old id
    if event.chat_id is None:
        return event  # a chat-less delete: resolved by id in ``messages.write_deletes``
    new_id = redirect.get(event.chat_id)
    if new_id is None:
        return event
    replace = msgspec.structs.replace
    if isinstance(event, MessageEvent):
        reply = event.reply_to_msg_id
        return replace(
            event,
            chat_id=new_id,
            msg_id=moved_msg_id(event.msg_id),
            reply_to_msg_id=None if reply is None else moved_msg_id(reply),
        )
    if isinstance(event, (EditEvent, ReactionEvent, ReactionCountEvent, ServiceEvent)):
        return replace(event, chat_id=new_id, msg_id=moved_msg_id(event.msg_id))
    if isinstance(event, DeleteEvent):
        return replace(event, chat_id=new_id, msg_ids=tuple(map(moved_msg_id, event.msg_ids)))
    if isinstance(event, MemberEvent) and event.source_msg_id is not None:
        return replace(event, chat_id=new_id, source_msg_id=moved_msg_id(event.source_msg_id))
    return replace(event, chat_id=new_id)
