"""Raw MTProto updates → kurigram → the plugin → the real EventPipeline → PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tgstats.pipeline import EventPipeline
from tgstats.plugin_api import PluginContext, ServiceRegistry, Settings
from tgstats.settings import PipelineSettings
from tgstats_mtproto import MTProtoPlugin
from tgstats_mtproto.testing import MTProtoHarness, RawUpdates

GROUP_ID = -1000000001001


@pytest.fixture
async def pipeline(session_factory) -> AsyncIterator[EventPipeline]:
    pipe = EventPipeline(
        session_factory=session_factory,
        settings=PipelineSettings(flush_interval_ms=20),
        metrics=None,
        observers=(),
        on_commit=None,
        default_timezone="UTC",
    )
    await pipe.start()
    try:
        yield pipe
    finally:
        await pipe.stop()


@pytest.fixture
async def live(pipeline, session_factory) -> AsyncIterator[MTProtoHarness]:
    services = ServiceRegistry()
    services.register("events", pipeline.sink)
    services.register("session_factory", session_factory)
    plugin = MTProtoPlugin(
        context=PluginContext(
            plugin_id="mtproto", settings=Settings.from_env({}), services=services
        )
    )
    harness = await MTProtoHarness.start(plugin, raw_updates=RawUpdates())
    try:
        yield harness
    finally:
        await harness.close()


async def scalar(session_factory, sql: str, **params):
    async with session_factory() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def test_every_kind_lands_once_despite_duplicate_delivery(live, pipeline, session_factory):
    tg = live.raw
    group, alice, bob = tg.supergroup(1001, "Friends"), tg.user(11, "Alice"), tg.user(12, "Bob")
    first = tg.new_message(group, alice, "hello 😀", msg_id=1)
    await live.feed(first)
    await live.feed(first)  # re-delivered by Telegram
    await live.feed(tg.new_message(group, bob, "hi", msg_id=2, reply_to=1))
    edit = tg.edited_message(group, alice, "hello again", msg_id=1, edit_date=tg.now + 5)
    await live.feed(edit)
    await live.feed(edit)  # the same edit twice counts once
    await live.feed(tg.reaction(group, bob, 1, new=[tg.emoji("👍")]))
    await live.feed(
        tg.channel_member(
            group,
            tg.user(13, "Carol"),
            tg.user(13, "Carol"),
            old=None,
            new=tg.participant(tg.user(13, "Carol")),
        )
    )
    await live.feed(tg.deleted(group, [2]))
    await pipeline.sink.flush()

    q = "SELECT {} FROM chat_day_rollup WHERE chat_id = :c"
    assert (
        await scalar(
            session_factory, "SELECT count(*) FROM messages WHERE chat_id = :c", c=GROUP_ID
        )
        == 2
    )
    assert await scalar(session_factory, q.format("messages"), c=GROUP_ID) == 2
    assert await scalar(session_factory, q.format("edits"), c=GROUP_ID) == 1
    assert await scalar(session_factory, q.format("replies"), c=GROUP_ID) == 1
    assert await scalar(session_factory, q.format("reactions"), c=GROUP_ID) == 1
    assert await scalar(session_factory, q.format("joins"), c=GROUP_ID) == 1
    assert await scalar(session_factory, q.format("deletions"), c=GROUP_ID) == 1
    assert (
        await scalar(
            session_factory,
            "SELECT edit_count FROM messages WHERE chat_id = :c AND msg_id = 1",
            c=GROUP_ID,
        )
        == 1
    )
    assert (
        await scalar(session_factory, "SELECT title FROM chats WHERE id = :c", c=GROUP_ID)
        == "Friends"
    )


async def test_migration_moves_the_chat_without_double_counting(live, session_factory):
    from pyrogram import raw

    tg = live.raw
    basic, alice = tg.basic_group(55, "Old group"), tg.user(11, "Alice")
    new = tg.supergroup(2002, "Old group")
    # Basic-group ids come from the bot's own counter; the supergroup starts again at 1.
    await live.feed(tg.new_message(basic, alice, "one", msg_id=501))
    await live.feed(tg.new_message(basic, alice, "two", msg_id=502))
    # Telegram sends the migration from both sides; it is one migration.
    await live.feed(
        tg.service(
            basic,
            alice,
            raw.types.MessageActionChatMigrateTo(channel_id=new.id),
            msg_id=503,
            extra_peers=[new],
        )
    )
    await live.feed(
        tg.service(
            new,
            alice,
            raw.types.MessageActionChannelMigrateFrom(title="Old group", chat_id=basic.id),
            msg_id=1,
            extra_peers=[basic],
        )
    )
    await live.feed(tg.new_message(new, alice, "three", msg_id=2))
    await live.plugin.services.get("events").flush()
    new_id = -1000000002002
    assert (
        await scalar(
            session_factory,
            "SELECT coalesce(sum(messages), 0) FROM chat_day_rollup WHERE chat_id = :c",
            c=new_id,
        )
        == 3
    )
    assert (
        await scalar(
            session_factory, "SELECT count(*) FROM chat_day_rollup WHERE chat_id = :c", c=-55
        )
        == 0
    )
