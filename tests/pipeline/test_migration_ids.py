"""Basic group → supergroup: the moved history keeps its messages apart from the new ones.

Telegram numbers a supergroup's messages from 1 again, so an old-group message
and a supergroup message can share an id. The moved history lives under negated
ids; everything that still names the old chat is mapped there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import msgspec
import pytest

from tests.pipeline.test_event_kinds import T0, msg, one, rows, write
from tests.pipeline.weeks import check_weeks
from tgstats.db.engine import Database
from tgstats.events import (
    ChatMigratedEvent,
    DeleteEvent,
    EditEvent,
    ReactionCountEvent,
    ReactionEvent,
)
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.social import reactions

OLD, NEW = -4242, -1004242424242
MIGRATED = ChatMigratedEvent(old_chat_id=OLD, new_chat_id=NEW, date=T0 + timedelta(hours=1))


def later(minutes: int) -> Any:
    return T0 + timedelta(hours=2, minutes=minutes)


@pytest.fixture
async def pipeline(make_pipeline: Callable[..., Any]) -> Any:
    async with make_pipeline(batch_size=50) as built:
        yield built


async def day_messages(db: Database, chat: int) -> Any:
    return await one(
        db, "SELECT coalesce(sum(messages), 0) FROM chat_day_rollup WHERE chat_id = :c", c=chat
    )


async def test_a_supergroup_message_with_an_old_groups_id_is_not_a_duplicate(
    db: Database, pipeline: Any
) -> None:
    await write(pipeline, msg(2, user_id=1, chat=OLD))
    await write(pipeline, MIGRATED)
    await write(pipeline, msg(2, user_id=2, chat=NEW, at=later(1)))
    stored = await rows(db, "SELECT chat_id, msg_id, user_id FROM messages ORDER BY msg_id")
    assert stored == [(NEW, -2, 1), (NEW, 2, 2)]
    assert await day_messages(db, NEW) == 2
    assert await day_messages(db, OLD) == 0
    # Re-delivered: the migration, the old group's message (under its old chat id)
    # and the supergroup's message all count once.
    await write(pipeline, MIGRATED, msg(2, user_id=1, chat=OLD))
    await write(pipeline, msg(2, user_id=2, chat=NEW, at=later(1)))
    assert await one(db, "SELECT count(*) FROM messages") == 2
    assert await day_messages(db, NEW) == 2
    assert await one(db, "SELECT active_users FROM chat_day_rollup WHERE chat_id = :c", c=NEW) == 2


async def test_migration_and_new_messages_in_one_batch(db: Database, pipeline: Any) -> None:
    # The writer applies the migration first, whatever the order inside the batch.
    await write(pipeline, msg(1, chat=OLD), msg(1, user_id=5, chat=NEW, at=later(0)), MIGRATED)
    assert await rows(db, "SELECT msg_id, user_id FROM messages ORDER BY msg_id") == [
        (-1, 1),
        (1, 5),
    ]
    assert await day_messages(db, NEW) == 2


async def test_references_to_moved_messages_follow_them(db: Database, pipeline: Any) -> None:
    await write(
        pipeline,
        msg(1, user_id=1, chat=OLD),
        msg(2, user_id=2, chat=OLD, reply_to_msg_id=1),
        ReactionEvent(chat_id=OLD, msg_id=1, date=T0, user_id=2, added=("👍",)),
        ReactionCountEvent(chat_id=OLD, msg_id=2, date=T0, counts=(("🔥", 3),)),
        EditEvent(chat_id=OLD, msg_id=1, edit_date=T0 + timedelta(minutes=5), user_id=1),
    )
    await write(pipeline, MIGRATED)
    await write(
        pipeline,
        msg(1, user_id=3, chat=NEW, at=later(0)),
        msg(2, user_id=3, chat=NEW, at=later(1), reply_to_msg_id=1),
    )
    assert await rows(
        db, "SELECT msg_id, reply_to_msg_id, reply_to_user_id FROM messages ORDER BY msg_id"
    ) == [(-2, -1, 1), (-1, None, None), (1, None, None), (2, 1, 3)]
    assert await rows(db, "SELECT chat_id, msg_id FROM message_reactions") == [(NEW, -1)]
    assert await rows(db, "SELECT chat_id, msg_id FROM reaction_counts") == [(NEW, -2)]
    assert await rows(db, "SELECT chat_id, msg_id FROM message_edits") == [(NEW, -1)]

    # Late activity naming the old chat lands on the moved messages, once.
    late_edit = EditEvent(chat_id=OLD, msg_id=2, edit_date=later(10), user_id=2)
    late_reaction = ReactionEvent(chat_id=OLD, msg_id=2, date=later(11), user_id=1, added=("❤",))
    for _ in range(2):
        await write(pipeline, late_edit, late_reaction)
    assert await rows(db, "SELECT msg_id, edit_count FROM messages ORDER BY msg_id") == [
        (-2, 1),
        (-1, 1),
        (1, 0),
        (2, 0),
    ]
    assert await rows(db, "SELECT msg_id, reaction FROM message_reactions ORDER BY msg_id") == [
        (-2, "❤"),
        (-1, "👍"),
    ]
    # Deletions: by the old chat id, and chat-less (how basic groups report them).
    await write(pipeline, DeleteEvent(chat_id=OLD, msg_ids=(1,), date=later(20)))
    await write(pipeline, DeleteEvent(chat_id=None, msg_ids=(2,), date=later(21)))
    await write(pipeline, DeleteEvent(chat_id=None, msg_ids=(2,), date=later(21)))
    assert await rows(db, "SELECT msg_id, is_deleted FROM messages ORDER BY msg_id") == [
        (-2, True),
        (-1, True),
        (1, False),
        (2, False),
    ]
    totals = await rows(
        db,
        "SELECT sum(messages), sum(edits), sum(deletions), sum(reactions) FROM chat_day_rollup "
        "WHERE chat_id = :c",
        c=NEW,
    )
    assert totals == [(4, 2, 2, 2)]
    assert await one(db, "SELECT count(*) FROM chat_day_rollup WHERE chat_id = :c", c=OLD) == 0


async def test_a_late_old_group_message_is_stored_once_under_the_moved_id(
    db: Database, pipeline: Any
) -> None:
    await write(pipeline, msg(1, chat=OLD), MIGRATED, msg(1, user_id=7, chat=NEW, at=later(0)))
    late = msg(3, user_id=4, chat=OLD, reply_to_msg_id=1)  # sent before, delivered after
    await write(pipeline, late)
    await write(pipeline, late)
    assert await rows(db, "SELECT msg_id, reply_to_user_id FROM messages ORDER BY msg_id") == [
        (-3, 1),
        (-1, None),
        (1, None),
    ]
    assert await day_messages(db, NEW) == 3


async def test_moved_messages_get_no_link(db: Database, pipeline: Any) -> None:
    await write(
        pipeline,
        msg(1, chat=OLD),
        ReactionEvent(chat_id=OLD, msg_id=1, date=T0, user_id=2, added=("👍",)),
        ReactionEvent(chat_id=OLD, msg_id=1, date=T0, user_id=3, added=("👍",)),
    )
    await write(pipeline, MIGRATED)
    await write(
        pipeline,
        msg(1, chat=NEW, at=later(0)),
        ReactionEvent(chat_id=NEW, msg_id=1, date=later(1), user_id=2, added=("🔥",)),
    )
    scope = ChatScope(chat_id=NEW)
    period = Period(start=T0.date(), end=T0.date())
    async with db.session_factory() as session:
        stats = await reactions(session, scope, period)
    assert [(m.msg_id, m.reactions, m.link) for m in stats.top_messages] == [
        (-1, 2, None),
        (1, 1, "https://t.me/c/4242424242/1"),
    ]
    assert scope.message_link(-1) is None
    assert ChatScope(chat_id=NEW, username="pub").message_link(0) is None


async def test_a_merged_history_reseals_the_supergroups_weeks(db: Database, pipeline: Any) -> None:
    """Both chats sealed their past weeks; the basic group's days merged into the
    supergroup void both seals, and the supergroup's next batch seals again with them."""
    day = timedelta(days=1)
    await write(pipeline, msg(1, user_id=1, chat=OLD, at=T0 - 14 * day))  # week of 04-20
    await write(pipeline, msg(10, user_id=2, chat=NEW, at=T0 - 7 * day))  # week of 04-27
    await write(pipeline, msg(11, user_id=2, chat=NEW, at=T0 + day), msg(2, chat=OLD, at=T0 + day))
    assert set((await check_weeks(db.engine)).values()) == {date(2026, 5, 11)}
    assert await one(db, "SELECT count(*) FROM chat_user_week_rollup WHERE chat_id = :c", c=OLD)
    migrated = msgspec.structs.replace(MIGRATED, date=T0 + 2 * day)
    await write(pipeline, migrated, msg(12, user_id=3, chat=NEW, at=T0 + 2 * day))
    assert await check_weeks(db.engine) == {NEW: date(2026, 5, 11)}
    old_weeks = "SELECT count(*) FROM chat_user_week_rollup WHERE chat_id = :c"
    assert await one(db, old_weeks, c=OLD) == 0
    scope = ChatScope(chat_id=NEW, chat_timezone="UTC")
    board = await _users_of(db, scope, Period(start=date(2026, 4, 20), end=date(2026, 5, 10)))
    assert board == {1: 1, 2: 1}


async def _users_of(db: Database, scope: ChatScope, period: Period) -> dict[int, int]:
    from tgstats.stats.users import users

    async with db.stats_session_factory() as session:
        board = await users(session, scope, period)
    return {row.user_id: row.messages for row in board.rows}
