"""Each event kind, its idempotency and its edge cases, against the real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.pipeline.reference import expected_rollups, read_rollups, utc
from tgstats.db.chat_settings import update_chat_settings
from tgstats.db.engine import Database
from tgstats.events import (
    BotMembershipEvent,
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
from tgstats.features import extract
from tgstats.pipeline import EventPipeline
from tgstats.telemetry import open_telemetry

CHAT = -1001234567890
T0 = utc(2026, 5, 10, 12)


def msg(msg_id: int, user_id: int | None = 1, *, chat: int = CHAT, at: Any = None,
        body: str = "hello there world", **extra: Any) -> MessageEvent:  # fmt: skip
    return MessageEvent(
        chat_id=chat, msg_id=msg_id, date=at or T0 + timedelta(minutes=msg_id), user_id=user_id,
        features=extract(body), text=body, **extra,
    )  # fmt: skip


async def rows(db: Database, query: str, **params: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(query), params)).all())


async def one(db: Database, query: str, **params: Any) -> Any:
    found = await rows(db, query, **params)
    return found[0][0] if len(found) == 1 and len(found[0]) == 1 else found


async def write(pipeline: EventPipeline, *events: Event) -> None:
    await pipeline.sink.put_many(events)
    await pipeline.sink.flush()


async def day_row(db: Database, chat: int = CHAT, day: Any = None) -> dict[str, int]:
    rollups = await read_rollups(db.engine)
    return rollups["chat_day"].get((chat, day or T0.date()), {})


@pytest.fixture
async def pipeline(make_pipeline: Callable[..., Any]) -> Any:
    async with make_pipeline(batch_size=50) as built:
        yield built


async def test_text_is_stored_only_when_the_chat_allows(db: Database, pipeline: Any) -> None:
    await write(pipeline, msg(1, body="see https://example.org #tag"))
    assert await one(db, "SELECT text FROM messages WHERE msg_id = 1") is None
    found = await rows(db, "SELECT text_length, url_count, hashtag_count, entities FROM messages")
    assert found[0][:3] == (len("see https://example.org #tag"), 1, 1)
    assert found[0][3]["urls"] == ["https://example.org"]
    async with db.session_factory() as session:
        await update_chat_settings(session, CHAT, store_text=True)
        await session.commit()
    await write(pipeline, msg(2, body="kept"))
    assert await one(db, "SELECT text FROM messages WHERE msg_id = 2") == "kept"


async def test_edits_count_once_and_an_older_edit_changes_nothing(
    db: Database, pipeline: Any
) -> None:
    async with db.session_factory() as session:
        await update_chat_settings(session, CHAT, store_text=True)
        await session.commit()
    await write(pipeline, msg(1, body="first"))
    later = T0 + timedelta(days=1, hours=1)
    edit = EditEvent(chat_id=CHAT, msg_id=1, edit_date=later, text="second")
    await write(pipeline, edit)
    await write(pipeline, edit)  # re-delivered
    older = EditEvent(chat_id=CHAT, msg_id=1, edit_date=T0 + timedelta(hours=2), text="stale")
    await write(pipeline, older)
    found = await rows(db, "SELECT text, edit_count, edit_date FROM messages")
    assert found == [("second", 1, later)]
    # Counted on the day of the edit, for the message's author (the edit names nobody).
    assert (await day_row(db, day=later.date()))["edits"] == 1
    assert (await day_row(db))["edits"] == 0
    users = (await read_rollups(db.engine))["user_day"]
    assert users[(CHAT, 1, later.date())]["edits"] == 1


async def test_edit_without_store_text_keeps_no_text(db: Database, pipeline: Any) -> None:
    edit = EditEvent(chat_id=CHAT, msg_id=1, edit_date=T0 + timedelta(hours=1), text="secret")
    await write(pipeline, msg(1), edit)


async def test_deletes_count_once_and_messages_stay_counted(db: Database, pipeline: Any) -> None:
    await write(pipeline, msg(1), msg(2), msg(3, user_id=2))
    gone = DeleteEvent(chat_id=CHAT, msg_ids=(1, 3, 99), date=T0 + timedelta(hours=1))
    await write(pipeline, gone)
    await write(
        pipeline, gone, DeleteEvent(chat_id=CHAT, msg_ids=(1,), date=T0 + timedelta(hours=2))
    )
    row = await day_row(db)
    assert (row["messages"], row["deletions"]) == (3, 2)
    assert await one(db, "SELECT count(*) FROM messages WHERE is_deleted") == 2
    users = (await read_rollups(db.engine))["user_day"]
    assert users[(CHAT, 1, T0.date())]["deletions"] == 1
    assert users[(CHAT, 2, T0.date())]["deletions"] == 1


async def test_basic_group_delete_without_chat_is_resolved_among_groups(
    db: Database, pipeline: Any
) -> None:
    group, supergroup = -4242, -1009999999999
    await write(
        pipeline,
        ChatSnapshot(chat_id=group, chat_type="group", title="g"),
        ChatSnapshot(chat_id=supergroup, chat_type="supergroup", title="s"),
        msg(77, chat=group),
        msg(77, chat=supergroup),
    )
    await write(pipeline, DeleteEvent(chat_id=None, msg_ids=(77,), date=T0 + timedelta(hours=3)))
    assert await rows(db, "SELECT chat_id FROM messages WHERE is_deleted") == [(group,)]
    assert (await day_row(db, chat=group))["deletions"] == 1


async def test_replies_resolve_their_target_from_stored_messages(
    db: Database, pipeline: Any
) -> None:
    await write(pipeline, msg(1, user_id=5))
    await write(
        pipeline, msg(2, user_id=6, reply_to_msg_id=1), msg(3, user_id=6, reply_to_msg_id=404)
    )
    assert await one(db, "SELECT reply_to_user_id FROM messages WHERE msg_id = 2") == 5
    rollups = await read_rollups(db.engine)
    assert rollups["reply_pairs"] == {(CHAT, T0.date(), 6, 5): 1}
    assert rollups["user_day"][(CHAT, 5, T0.date())]["replies_received"] == 1
    assert rollups["chat_day"][(CHAT, T0.date())]["replies"] == 2


async def test_lookup_by_id_runs_skips_stored_and_names_reply_targets(
    db: Database, pipeline: Any
) -> None:
    # Stored: every third id of 1..60 (posters 100+id), and 500. The next batch mixes
    # re-deliveries, new ids between stored ones (same lookup runs), replies to stored
    # messages near and far, to a message in the batch and to one never seen.
    await write(pipeline, *(msg(i, user_id=100 + i) for i in range(1, 61, 3)), msg(500, 9))
    batch = [msg(i, user_id=7) for i in range(1, 61)]  # 1, 4, 7, ... are re-deliveries
    batch += [
        msg(70, 8, reply_to_msg_id=4), msg(71, 8, reply_to_msg_id=500),
        msg(72, 8, reply_to_msg_id=70), msg(73, 8, reply_to_msg_id=5),
        msg(74, 8, reply_to_msg_id=450),
    ]  # fmt: skip
    await write(pipeline, *batch)
    assert await one(db, "SELECT count(*) FROM messages") == 21 + 40 + 5
    stored = dict(await rows(db, "SELECT msg_id, user_id FROM messages WHERE msg_id <= 60"))
    assert all(stored[i] == (100 + i if i % 3 == 1 else 7) for i in range(1, 61))
    targets = dict(
        await rows(
            db, "SELECT msg_id, reply_to_user_id FROM messages WHERE msg_id BETWEEN 70 AND 74"
        )
    )
    # 5 was written by the same batch (user 7); 450 was never seen.
    assert targets == {70: 104, 71: 9, 72: 8, 73: 7, 74: None}


async def test_topic_messages_are_not_replies(db: Database, pipeline: Any) -> None:
    await write(pipeline, msg(1, topic_id=10), msg(2, topic_id=10), msg(3))
    rollups = await read_rollups(db.engine)
    assert rollups["topics"] == {(CHAT, 10, 1, T0.date()): 2, (CHAT, 0, 1, T0.date()): 1}
    assert rollups["chat_day"][(CHAT, T0.date())]["replies"] == 0


async def test_reactions_add_remove_readd_and_redelivery(db: Database, pipeline: Any) -> None:
    await write(pipeline, msg(1, user_id=1))

    def react(minutes: int, *, added: tuple[str, ...] = (), removed: tuple[str, ...] = ()) -> Any:
        return ReactionEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(minutes=minutes),
                             user_id=2, added=added, removed=removed)  # fmt: skip

    add = react(10, added=("👍", "custom:1"))
    await write(pipeline, add, add)
    await write(pipeline, add)
    row = await day_row(db)
    assert row["reactions"] == 2
    remove = react(20, removed=("👍",))
    await write(pipeline, remove)
    await write(pipeline, remove, add)  # the old add re-delivered after the removal: no-op
    assert (await day_row(db))["reactions"] == 1
    await write(pipeline, react(30, added=("👍",)))  # put back: counts again
    rollups = await read_rollups(db.engine)
    assert rollups["chat_day"][(CHAT, T0.date())]["reactions"] == 2
    assert rollups["user_day"][(CHAT, 2, T0.date())]["reactions_given"] == 2
    assert rollups["user_day"][(CHAT, 1, T0.date())]["reactions_received"] == 2
    assert rollups["terms"][(CHAT, T0.date(), "reaction", "👍")] == 1
    assert rollups["terms"][(CHAT, T0.date(), "reaction", "custom:1")] == 1
    assert await one(db, "SELECT count(*) FROM message_reactions WHERE removed_at IS NULL") == 2


async def test_reaction_on_an_unseen_message_is_still_recorded(db: Database, pipeline: Any) -> None:
    await write(
        pipeline, ReactionEvent(chat_id=CHAT, msg_id=555, date=T0, user_id=3, added=("🔥",))
    )
    assert await one(db, "SELECT count(*) FROM message_reactions WHERE msg_id = 555") == 1
    rollups = await read_rollups(db.engine)
    assert rollups["chat_day"][(CHAT, T0.date())]["reactions"] == 1
    assert rollups["user_day"] == {
        (CHAT, 3, T0.date()): {**dict.fromkeys(rollups["user_day"][(CHAT, 3, T0.date())], 0),
                               "reactions_given": 1}
    }  # fmt: skip


async def test_capture_reactions_off_skips_reactions(db: Database, pipeline: Any) -> None:
    async with db.session_factory() as session:
        await update_chat_settings(session, CHAT, capture_reactions=False)
        await session.commit()
    await write(
        pipeline,
        msg(1),
        ReactionEvent(chat_id=CHAT, msg_id=1, date=T0, user_id=3, added=("🔥",)),
        ReactionCountEvent(chat_id=CHAT, msg_id=1, date=T0, counts=(("🔥", 4),)),
    )
    assert await one(db, "SELECT count(*) FROM message_reactions") == 0
    assert await one(db, "SELECT count(*) FROM reaction_counts") == 0
    assert (await day_row(db))["reactions"] == 0


async def test_reaction_counts_keep_the_newest_report(db: Database, pipeline: Any) -> None:
    newer = ReactionCountEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(minutes=5),
                               counts=(("👍", 5),))  # fmt: skip
    older = ReactionCountEvent(chat_id=CHAT, msg_id=1, date=T0, counts=(("👍", 2), ("🔥", 1)))
    await write(pipeline, older)
    await write(pipeline, newer)
    await write(pipeline, older)
    assert await rows(db, "SELECT reaction, count FROM reaction_counts") == [("👍", 5)]


async def test_members_log_state_and_joins_leaves(db: Database, pipeline: Any) -> None:
    def member(minutes: int, action: str, user: int = 9, **extra: Any) -> MemberEvent:
        return MemberEvent(chat_id=CHAT, user_id=user, date=T0 + timedelta(minutes=minutes),
                           action=action, **extra)  # fmt: skip

    join, leave = member(1, "join", invite_link="https://t.me/+abc"), member(5, "leave")
    await write(pipeline, join, leave, join)
    await write(pipeline, leave, member(6, "ban", old_status="left"), member(7, "join", user=10))
    await write(pipeline, member(3, "promote"))  # older than the leave: the state stays "banned"
    assert await one(db, "SELECT count(*) FROM membership_events") == 5
    state = await rows(db, "SELECT user_id, status FROM memberships ORDER BY user_id")
    assert state == [(9, "banned"), (10, "member")]
    row = await day_row(db)
    assert (row["joins"], row["leaves"]) == (2, 1)


async def test_service_messages_and_forum_topics(db: Database, pipeline: Any) -> None:
    def service(msg_id: int, action: str, **extra: Any) -> ServiceEvent:
        return ServiceEvent(chat_id=CHAT, msg_id=msg_id, date=T0 + timedelta(minutes=msg_id),
                            action=action, **extra)  # fmt: skip

    await write(pipeline, service(50, "topic_created", topic_id=50, title="Ideas"),
                service(51, "pin"))  # fmt: skip
    await write(pipeline, service(52, "topic_edited", topic_id=50, title="Better ideas"),
                service(53, "topic_closed", topic_id=50), service(50, "topic_created", topic_id=50,
                                                                   title="Ideas"))  # fmt: skip
    assert await one(db, "SELECT count(*) FROM service_messages") == 4
    topics = await rows(db, "SELECT topic_id, title, closed FROM forum_topics")
    assert topics == [(50, "Better ideas", True)]
    await write(pipeline, service(54, "topic_reopened", topic_id=50))
    assert await one(db, "SELECT closed FROM forum_topics") is False


async def test_bot_membership_newest_wins(db: Database, pipeline: Any) -> None:
    added = BotMembershipEvent(chat_id=CHAT, date=T0, added=True)
    removed = BotMembershipEvent(chat_id=CHAT, date=T0 + timedelta(hours=1), added=False)
    await write(pipeline, added)
    await write(pipeline, removed)
    await write(pipeline, added)  # late re-delivery of the older event
    found = await rows(db, "SELECT bot_present, bot_removed_at FROM chats WHERE id = :c", c=CHAT)
    assert found == [(False, removed.date)]


async def test_snapshots_upsert_once_with_history_on_change(db: Database, pipeline: Any) -> None:
    first = ChatSnapshot(chat_id=CHAT, chat_type="supergroup", title="One", date=T0)
    renamed = ChatSnapshot(chat_id=CHAT, chat_type="supergroup", title="Two",
                           date=T0 + timedelta(hours=1))  # fmt: skip
    user = UserSnapshot(user_id=1, username="ann", first_name="Ann", date=T0)
    user2 = UserSnapshot(
        user_id=1, username="ann_b", first_name="Ann", date=T0 + timedelta(hours=1)
    )
    await write(pipeline, msg(1), first, user)
    await write(pipeline, first, renamed, user, user2, msg(2))
    await write(pipeline, first)  # older: ignored
    assert await rows(db, "SELECT title, type FROM chats") == [("Two", "supergroup")]
    assert await rows(db, "SELECT title FROM chat_title_history ORDER BY changed_at") == [
        ("One",), ("Two",)
    ]  # fmt: skip
    assert await rows(db, "SELECT username FROM users") == [("ann_b",)]
    assert await one(db, "SELECT count(*) FROM user_name_history") == 2


async def test_chat_rows_exist_for_chats_seen_only_in_messages(db: Database, pipeline: Any) -> None:
    await write(pipeline, msg(1, chat=-777))
    assert await rows(db, "SELECT id, type FROM chats") == [(-777, "group")]


async def test_migration_merges_rollups_exactly_once(db: Database, pipeline: Any) -> None:
    old, new = -5555, -1005555555555
    before = [msg(i, user_id=1 + i % 2, chat=old) for i in range(1, 6)]
    before.append(ReactionEvent(chat_id=old, msg_id=1, date=T0, user_id=2, added=("👍",)))
    after = [
        msg(i, user_id=1 + i % 3, chat=new, at=T0 + timedelta(minutes=30 + i)) for i in range(1, 4)
    ]  # fmt: skip  (ids clash with the old chat's on purpose)
    await write(pipeline, *before)
    await write(pipeline, *after)
    migrated = ChatMigratedEvent(old_chat_id=old, new_chat_id=new, date=T0 + timedelta(hours=1))
    await write(pipeline, migrated)
    merged = await read_rollups(db.engine)
    # Nothing counted twice: re-deliver the migration and the old chat's events.
    await write(pipeline, migrated, *before)
    assert await read_rollups(db.engine) == merged
    # Same counts as if everything had happened in the new chat (ids clash, so renumber).
    as_one = [msgspec_replace(e, chat_id=new, msg_id=getattr(e, "msg_id", 0) + 100)
              for e in before] + after  # fmt: skip
    expected = expected_rollups(as_one, {}).normalised()
    assert merged == expected
    assert not [t for t, table in merged.items() for k in table if k[0] == old]
    day = merged["chat_day"][(new, T0.date())]
    assert day["active_users"] == 3 and day["messages"] == 8
    assert await rows(db, "SELECT old_chat_id, new_chat_id FROM chat_migrations") == [(old, new)]
    chats = dict(await rows(db, "SELECT id, migrated_to_chat_id FROM chats"))
    assert chats[old] == new


def msgspec_replace(event: Any, **changes: Any) -> Any:
    import msgspec

    fields = {k: v for k, v in changes.items() if hasattr(event, k)}
    return msgspec.structs.replace(event, **fields)


async def test_data_versions_and_on_commit(db: Database, make_pipeline: Callable[..., Any]) -> None:
    committed: list[set[int]] = []

    async def on_commit(chat_ids: set[int]) -> None:
        committed.append(chat_ids)

    async with make_pipeline(on_commit=on_commit) as built:
        await write(built, msg(1), msg(1, chat=-77))
        await write(built, msg(1))  # re-delivery: nothing changed, nothing bumped
    assert committed == [{CHAT, -77}]
    versions = dict(await rows(db, "SELECT chat_id, version FROM chat_data_versions"))
    assert versions == {CHAT: 1, -77: 1}


async def test_metrics_count_inserted_messages_and_reactions(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    telemetry = open_telemetry("test")
    try:
        async with make_pipeline(metrics=telemetry.metrics) as built:
            photo = msg(2, media_type="photo")
            await write(built, ChatSnapshot(chat_id=CHAT, chat_type="supergroup"), msg(1), photo)
            await write(built, photo, ReactionEvent(chat_id=CHAT, msg_id=1, date=T0, user_id=4,
                                                    added=("👍", "custom:77")))  # fmt: skip
            assert telemetry.metrics.queue_depth_source() == 0
        exposition = telemetry.render().decode()
    finally:
        telemetry.shutdown()

    def value(name: str, **labels: str) -> float:
        for line in exposition.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    processed = "bot_messages_processed_total"
    assert value(processed, chat_type="supergroup", media_type="photo") == 1
    assert value(processed, chat_type="supergroup", media_type="text") == 1
    assert value("bot_reactions_tracked_total", reaction_type="custom_emoji") == 1
    assert value("bot_reactions_tracked_total", reaction_type="emoji") == 1
    assert value("bot_db_query_duration_seconds_count", operation="copy_messages") == 1
    assert value("bot_db_query_duration_seconds_count", operation="select_posters") >= 2
    assert value("bot_pipeline_batch_size_count") >= 2


async def test_anonymous_reactions_by_a_chat_are_idempotent(db: Database, pipeline: Any) -> None:
    await write(pipeline, msg(1, user_id=1))
    as_channel = ReactionEvent(chat_id=CHAT, msg_id=1, date=T0, actor_chat_id=-100500,
                               added=("🔥",))  # fmt: skip
    await write(pipeline, as_channel, as_channel)
    await write(pipeline, as_channel)
    assert await one(db, "SELECT count(*) FROM message_reactions") == 1
    rollups = await read_rollups(db.engine)
    assert rollups["user_day"][(CHAT, -100500, T0.date())]["reactions_given"] == 1
    taken_back = ReactionEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(minutes=1),
                               actor_chat_id=-100500, removed=("🔥",))  # fmt: skip
    await write(pipeline, taken_back, taken_back)
    assert (await day_row(db))["reactions"] == 0
    assert await one(db, "SELECT count(*) FROM message_reactions WHERE removed_at IS NULL") == 0


async def test_add_and_remove_in_one_batch_apply_in_date_order(db: Database, pipeline: Any) -> None:
    def react(minutes: int, **change: Any) -> ReactionEvent:
        return ReactionEvent(chat_id=CHAT, msg_id=1, date=T0 + timedelta(minutes=minutes),
                             user_id=2, **change)  # fmt: skip

    await write(pipeline, msg(1), react(3, added=("👍",)), react(2, removed=("👍",)),
                react(1, added=("👍",)))  # fmt: skip
    # Applied as 1: add, 2: remove, 3: add again — present once, counted once.
    assert (await day_row(db))["reactions"] == 1
    assert await rows(db, "SELECT added_at, removed_at FROM message_reactions") == [
        (T0 + timedelta(minutes=3), None)
    ]  # fmt: skip


async def test_nul_characters_do_not_poison_a_message(db: Database, pipeline: Any) -> None:
    async with db.session_factory() as session:
        await update_chat_settings(session, CHAT, store_text=True)
        await session.commit()
    body = "bad\x00byte https://x.org/\x00a #t\x00ag"
    await write(pipeline, msg(1, body=body))
    assert await one(db, "SELECT text FROM messages") == body.replace("\x00", "")
    assert (await day_row(db))["messages"] == 1
