"""The core writer honours opt-outs for every event kind that names a member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from tgstats.events import (
    DeleteEvent,
    EditEvent,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    ServiceEvent,
    TextFeatures,
    UserSnapshot,
)
from tgstats.pipeline import BatchWriter
from tgstats.pipeline.optouts import user_ids_in
from tgstats.pipeline.rollups import raw_connection
from tgstats_privacy.data import opt_out

from .conftest import World

CHAT = -1000000000808
OUT, IN = 21, 22  # opted out, recorded


async def test_every_event_kind_is_anonymous_for_an_opted_out_member(world: World):
    async with world.factory() as session:
        await opt_out(session, OUT, source="member")
        await session.commit()
    now = datetime.now(UTC)
    events = [
        UserSnapshot(user_id=OUT, first_name="Hidden", username="hidden"),
        UserSnapshot(user_id=IN, first_name="Shown"),
        MessageEvent(chat_id=CHAT, msg_id=1, date=now, user_id=OUT, text="x",
                     features=TextFeatures(text_length=1, words=("hello",))),
        MessageEvent(chat_id=CHAT, msg_id=2, date=now, user_id=IN, reply_to_msg_id=1,
                     reply_to_user_id=OUT),
        MessageEvent(chat_id=CHAT, msg_id=3, date=now, user_id=IN,
                     forward_origin=ForwardOrigin(origin="user", id=OUT, name="Hidden")),
        EditEvent(chat_id=CHAT, msg_id=1, edit_date=now + timedelta(seconds=5), user_id=OUT),
        ReactionEvent(chat_id=CHAT, msg_id=2, date=now, user_id=OUT, added=("👍",)),
        ReactionEvent(chat_id=CHAT, msg_id=1, date=now, user_id=IN, added=("🔥",)),
        MemberEvent(chat_id=CHAT, user_id=OUT, date=now, action="join", inviter_id=IN),
        MemberEvent(chat_id=CHAT, user_id=IN, date=now, action="join", actor_id=OUT),
        ServiceEvent(chat_id=CHAT, msg_id=9, date=now, action="pin", actor_id=OUT),
    ]  # fmt: skip
    assert user_ids_in(events) == {OUT, IN}
    await world.app.services.get("events").put_many(events)
    await world.app.flush()

    assert await world.scalar(f"SELECT count(*) FROM users WHERE id = {OUT}") == 0
    assert await world.scalar(f"SELECT first_name FROM users WHERE id = {IN}") == "Shown"
    rows = await world.rows(
        "SELECT msg_id, user_id, reply_to_user_id, forward_origin, forward_from_id,"
        " forward_from_name FROM messages WHERE chat_id = :c ORDER BY msg_id",
        c=CHAT,
    )
    assert rows == [
        (1, None, None, None, None, None),
        (2, IN, None, None, None, None),
        (3, IN, None, "hidden_user", None, None),
    ]
    assert await world.rows("SELECT user_id FROM message_edits") == [(None,)]
    assert await world.rows("SELECT user_id, reaction FROM message_reactions") == [(IN, "🔥")]
    assert sorted(
        await world.rows("SELECT user_id, actor_id, inviter_id FROM membership_events"),
        key=str,
    ) == sorted([(None, None, IN), (IN, None, None)], key=str)
    assert await world.rows("SELECT user_id FROM memberships") == [(IN,)]
    assert await world.rows("SELECT actor_id FROM service_messages") == [(None,)]
    # Counted for the chat: 3 messages, 2 joins, 1 reaction, the word; never for OUT.
    assert await world.rows(
        "SELECT messages, joins, reactions, edits FROM chat_day_rollup WHERE chat_id = :c", c=CHAT
    ) == [(3, 2, 1, 1)]
    assert (
        await world.scalar(
            "SELECT count FROM chat_term_day_rollup WHERE chat_id = :c AND term = 'hello'", c=CHAT
        )
        == 1
    )
    assert (
        await world.scalar(f"SELECT count(*) FROM chat_user_day_rollup WHERE user_id = {OUT}") == 0
    )
    assert (
        await world.scalar(
            f"SELECT count(*) FROM reply_pair_day_rollup WHERE {OUT} IN (from_user_id, to_user_id)"
        )
        == 0
    )

    # What observers get (the batch's outcome) names no opted-out member either.
    async with world.factory() as session:
        conn = await raw_connection(session)
        moved = [msgspec.structs.replace(e, chat_id=CHAT - 1) if hasattr(e, "chat_id") else e
                 for e in events]  # fmt: skip
        outcome = await BatchWriter().write(conn, moved)
        await session.rollback()
    assert len(outcome.events) == len(events) - 2  # OUT's profile and reaction dropped
    assert user_ids_in(outcome.events) == {IN}


async def test_activity_on_messages_stored_before_the_optout_is_not_attributed(world: World):
    now = datetime.now(UTC)
    sink = world.app.services.get("events")
    await sink.put_many([MessageEvent(chat_id=CHAT, msg_id=1, date=now, user_id=OUT)])
    await world.app.flush()
    per_member = (
        "SELECT coalesce(sum(messages), 0), coalesce(sum(replies_received), 0),"
        " coalesce(sum(reactions_received), 0), coalesce(sum(edits), 0),"
        " coalesce(sum(deletions), 0) FROM chat_user_day_rollup WHERE user_id = :u"
    )
    assert await world.rows(per_member, u=OUT) == [(1, 0, 0, 0, 0)]
    async with world.factory() as session:
        await opt_out(session, OUT, source="member")
        await session.commit()

    later = now + timedelta(minutes=1)
    await sink.put_many(
        [
            MessageEvent(chat_id=CHAT, msg_id=2, date=later, user_id=IN, reply_to_msg_id=1),
            ReactionEvent(chat_id=CHAT, msg_id=1, date=later, user_id=IN, added=("👍",)),
            EditEvent(chat_id=CHAT, msg_id=1, edit_date=later, user_id=OUT),
        ]
    )
    await world.app.flush()
    await sink.put_many([DeleteEvent(chat_id=CHAT, msg_ids=(1,), date=later)])
    await world.app.flush()

    assert await world.rows(per_member, u=OUT) == [(1, 0, 0, 0, 0)]  # as before the opt-out
    assert await world.rows(per_member, u=IN) == [(1, 0, 0, 0, 0)]
    assert await world.scalar("SELECT reply_to_user_id FROM messages WHERE msg_id = 2") is None
    assert await world.rows("SELECT user_id FROM message_edits") == [(None,)]
    assert await world.scalar("SELECT count(*) FROM reply_pair_day_rollup") == 0
    # The chat still counts all of it.
    assert await world.rows(
        "SELECT messages, replies, reactions, edits, deletions FROM chat_day_rollup"
        " WHERE chat_id = :c",
        c=CHAT,
    ) == [(2, 1, 1, 1, 1)]
