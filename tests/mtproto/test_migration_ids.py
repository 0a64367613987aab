"""Migration through kurigram's dispatcher: the supergroup restarts its ids at 1."""

from __future__ import annotations

from pyrogram import raw
from tests.mtproto.test_end_to_end import live, pipeline, scalar

__all__ = ["live", "pipeline"]  # fixtures, used by name

NEW_ID = -1000000002002


async def test_supergroup_ids_that_repeat_the_basic_groups_are_kept(live, session_factory):
    tg = live.raw
    basic, alice, bob = tg.basic_group(55, "Old group"), tg.user(11, "Alice"), tg.user(12, "Bob")
    new = tg.supergroup(2002, "Old group")
    await live.feed(tg.new_message(basic, alice, "one", msg_id=1))
    await live.feed(tg.new_message(basic, alice, "two", msg_id=2))
    migrate_to = tg.service(
        basic, alice, raw.types.MessageActionChatMigrateTo(channel_id=new.id), msg_id=3,
        extra_peers=[new],
    )  # fmt: skip
    await live.feed(migrate_to)
    await live.feed(
        tg.service(
            new, alice, raw.types.MessageActionChannelMigrateFrom(title="Old group", chat_id=55),
            msg_id=1, extra_peers=[basic],
        )
    )  # fmt: skip
    reply = tg.new_message(new, bob, "three", msg_id=2)
    await live.feed(reply)
    await live.feed(reply)  # re-delivered
    await live.feed(migrate_to)  # the migration re-delivered too
    await live.feed(tg.new_message(basic, alice, "two", msg_id=2))  # and an old message
    await live.plugin.services.get("events").flush()
    total = "SELECT coalesce(sum(messages), 0) FROM chat_day_rollup WHERE chat_id = :c"
    assert await scalar(session_factory, total, c=NEW_ID) == 3
    ids = "SELECT string_agg(msg_id::text, ',' ORDER BY msg_id) FROM messages WHERE chat_id = :c"
    assert await scalar(session_factory, ids, c=NEW_ID) == "-2,-1,2"
