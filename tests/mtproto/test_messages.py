"""New messages, edits, deletions and service messages through kurigram's dispatcher."""

from __future__ import annotations

import pytest
from pyrogram import raw

from tgstats.events import (
    ChatMigratedEvent,
    ChatSnapshot,
    DeleteEvent,
    EditEvent,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.plugin_api import update_chat_settings

from .conftest import metric_value

GROUP_ID = -1000000001001


@pytest.fixture
def peers(harness):
    tg = harness.raw
    return {
        "group": tg.supergroup(1001, "Friends"),
        "forum": tg.supergroup(1002, "Forum", forum=True),
        "basic": tg.basic_group(55, "Old group"),
        "alice": tg.user(11, "Alice", username="alice"),
        "bob": tg.user(12, "Bob", last_name="Builder"),
    }


async def test_text_message_becomes_message_event_with_snapshots(harness, sink, peers):
    tg = harness.raw
    await harness.feed(
        tg.new_message(
            peers["group"], peers["alice"], "hello https://example.org 😀 #news", msg_id=5
        )
    )
    [msg] = sink.of(MessageEvent)
    assert (msg.chat_id, msg.msg_id, msg.user_id) == (GROUP_ID, 5, 11)
    assert msg.media_type == "text"
    assert msg.features.urls == ("https://example.org",)
    assert msg.features.emojis == ("😀",)
    assert msg.features.hashtags == ("news",)
    assert msg.text is None  # store_text is off by default
    assert msg.date.tzinfo is not None and int(msg.date.timestamp()) == tg.now
    [chat] = sink.of(ChatSnapshot)
    assert (chat.chat_id, chat.chat_type, chat.title, chat.is_forum) == (
        GROUP_ID,
        "supergroup",
        "Friends",
        False,
    )
    [user] = sink.of(UserSnapshot)
    assert (user.user_id, user.username, user.first_name) == (11, "alice", "Alice")


async def test_text_travels_only_when_the_chat_stores_text(harness, sink, peers, session_factory):
    tg = harness.raw
    async with session_factory() as session:
        await update_chat_settings(session, -1000000001003, store_text=True)
        await session.commit()
    group = tg.supergroup(1003, "Text kept")
    await harness.feed(tg.new_message(group, peers["alice"], "keep me"))
    [msg] = sink.of(MessageEvent)
    assert msg.text == "keep me"


async def test_entities_are_used_for_features(harness, sink, peers):
    tg = harness.raw
    text = "see docs and @carol"
    entities = [
        raw.types.MessageEntityTextUrl(offset=4, length=4, url="https://docs.example"),
        raw.types.MessageEntityMention(offset=13, length=6),
    ]
    await harness.feed(tg.new_message(peers["group"], peers["alice"], text, entities=entities))
    [msg] = sink.of(MessageEvent)
    assert msg.features.urls == ("https://docs.example",)
    assert msg.features.mentions == ("carol",)


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        ("photo", "photo"),
        ("video", "video"),
        ("gif", "animation"),  # a GIF also carries a document
        ("file", "document"),
        ("voice", "voice"),
        ("location", "location"),
        ("venue", "venue"),  # a venue also carries a location
        ("dice", "dice"),
        ("contact", "contact"),
        ("video_note", "video_note"),
        ("audio", "audio"),
        ("sticker", "sticker"),
        ("unsupported", "other"),
    ],
)
async def test_media_types(harness, sink, peers, media, expected):
    tg = harness.raw
    await harness.feed(
        tg.new_message(peers["group"], peers["alice"], "caption #tag", media=getattr(tg, media)())
    )
    [msg] = sink.of(MessageEvent)
    assert msg.media_type == expected
    assert msg.features.hashtags == ("tag",)  # captions count like text


async def test_topic_message_is_not_a_reply(harness, sink, peers):
    tg = harness.raw
    forum = peers["forum"]
    await harness.feed(tg.new_message(forum, peers["alice"], "in topic", msg_id=40, topic=7))
    await harness.feed(
        tg.new_message(forum, peers["bob"], "reply in topic", msg_id=41, topic=7, reply_to=40)
    )
    await harness.feed(tg.new_message(forum, peers["bob"], "general", msg_id=42))
    plain, reply, general = sink.of(MessageEvent)
    assert (plain.topic_id, plain.reply_to_msg_id) == (7, None)
    assert (reply.topic_id, reply.reply_to_msg_id) == (7, 40)
    assert reply.reply_to_user_id == 11  # the replied-to message was seen (kurigram's cache)
    assert (general.topic_id, general.reply_to_msg_id) == (1, None)
    assert sink.of(ChatSnapshot)[0].is_forum is True


async def test_snapshots_are_passed_on_when_they_say_something_new(harness, sink, peers):
    tg = harness.raw
    for msg_id in (1, 2, 3):
        await harness.feed(tg.new_message(peers["group"], peers["alice"], "hi", msg_id=msg_id))
    # Three messages, one profile: the chat and the user are sent once.
    assert len(sink.of(MessageEvent)) == 3
    assert len(sink.of(ChatSnapshot)) == 1
    assert len(sink.of(UserSnapshot)) == 1
    renamed = tg.user(11, "Alicia", username="alice")
    await harness.feed(tg.new_message(peers["group"], renamed, "new name", msg_id=4))
    await harness.feed(tg.new_message(peers["group"], peers["bob"], "hello", msg_id=5))
    users = sink.of(UserSnapshot)
    assert [(u.user_id, u.first_name) for u in users] == [
        (11, "Alice"),
        (11, "Alicia"),
        (12, "Bob"),
    ]
    assert len(sink.of(ChatSnapshot)) == 1
    # After ``refresh`` seconds an unchanged profile is sent again (``updated_at`` stays fresh).
    harness.plugin.recorder.snapshots.refresh = 0
    await harness.feed(tg.new_message(peers["group"], renamed, "again", msg_id=6))
    assert len(sink.of(UserSnapshot)) == 4
    assert len(sink.of(ChatSnapshot)) == 2


async def test_reply_in_a_plain_group(harness, sink, peers):
    tg = harness.raw
    await harness.feed(tg.new_message(peers["group"], peers["bob"], "re", reply_to=999))
    [msg] = sink.of(MessageEvent)
    assert (msg.topic_id, msg.reply_to_msg_id, msg.reply_to_user_id) == (None, 999, None)


async def test_forward_origins_and_via_bot(harness, sink, peers):
    tg = harness.raw
    group, alice, bob = peers["group"], peers["alice"], peers["bob"]
    news = tg.channel(3003, "News")
    helper = tg.user(66, "Helper", username="helper_bot", bot=True)
    await harness.feed(
        tg.new_message(
            group,
            alice,
            "a",
            extra_peers=[bob],
            forward=raw.types.MessageFwdHeader(
                date=tg.now - 100, from_id=raw.types.PeerUser(user_id=bob.id)
            ),
        )
    )
    await harness.feed(
        tg.new_message(
            group,
            alice,
            "b",
            forward=raw.types.MessageFwdHeader(date=tg.now - 100, from_name="Someone Hidden"),
        )
    )
    await harness.feed(
        tg.new_message(
            group,
            alice,
            "c",
            extra_peers=[news],
            forward=raw.types.MessageFwdHeader(
                date=tg.now - 100, from_id=raw.types.PeerChannel(channel_id=news.id), channel_post=9
            ),
        )
    )
    await harness.feed(tg.new_message(group, alice, "d", extra_peers=[helper], via_bot=helper))
    other = tg.supergroup(4004, "Other group")
    await harness.feed(
        tg.new_message(
            group,
            alice,
            "e",
            extra_peers=[other],
            forward=raw.types.MessageFwdHeader(
                date=tg.now - 100, from_id=raw.types.PeerChannel(channel_id=other.id)
            ),
        )
    )
    a, b, c, d, e = sink.of(MessageEvent)
    assert e.forward_origin == ForwardOrigin(origin="chat", id=-1000000004004, name="Other group")
    assert a.forward_origin == ForwardOrigin(origin="user", id=12, name="Bob Builder")
    assert b.forward_origin == ForwardOrigin(origin="hidden_user", name="Someone Hidden")
    assert c.forward_origin == ForwardOrigin(origin="channel", id=-1000000003003, name="News")
    assert d.forward_origin is None and d.via_bot_id == 66


async def test_anonymous_admin_message_has_no_user(harness, sink, peers):
    tg = harness.raw
    group = peers["group"]
    await harness.feed(tg.new_message(group, group, "as the group"))
    [msg] = sink.of(MessageEvent)
    assert msg.user_id is None and msg.sender_chat_id == GROUP_ID


async def test_basic_group_message(harness, sink, peers):
    tg = harness.raw
    await harness.feed(tg.new_message(peers["basic"], peers["alice"], "hi"))
    [msg] = sink.of(MessageEvent)
    assert msg.chat_id == -55
    assert sink.of(ChatSnapshot)[0].chat_type == "group"


async def test_private_chats_are_not_recorded(harness, sink, peers):
    tg = harness.raw
    await harness.feed(tg.new_message(peers["alice"], peers["alice"], "hi bot"))
    assert sink.events == []


async def test_edit(harness, sink, peers):
    tg = harness.raw
    await harness.feed(
        tg.edited_message(
            peers["group"],
            peers["alice"],
            "fixed 👍 https://x.org",
            msg_id=5,
            edit_date=tg.now + 30,
        )
    )
    [edit] = sink.of(EditEvent)
    assert (edit.chat_id, edit.msg_id, edit.user_id) == (GROUP_ID, 5, 11)
    assert int(edit.edit_date.timestamp()) == tg.now + 30
    assert edit.features is not None and edit.features.emojis == ("👍",)
    assert edit.text is None
    assert sink.of(MessageEvent) == []


async def test_edit_without_edit_date_is_not_an_edit(harness, sink, peers):
    tg = harness.raw
    update = tg.edited_message(peers["group"], peers["alice"], "same", msg_id=6)
    update.updates[0].message.edit_date = None  # e.g. a reaction or view count change
    await harness.feed(update)
    assert sink.of(EditEvent) == []


async def test_deletes_in_supergroup_and_basic_group(harness, sink, peers):
    tg = harness.raw
    await harness.feed(tg.deleted(peers["group"], [5, 6]))
    await harness.feed(tg.deleted(None, [7]))
    channel_delete, basic_delete = sink.of(DeleteEvent)
    assert (channel_delete.chat_id, channel_delete.msg_ids) == (GROUP_ID, (5, 6))
    assert (basic_delete.chat_id, basic_delete.msg_ids) == (None, (7,))


async def test_service_actions(harness, sink, peers):
    tg = harness.raw
    group, forum, alice = peers["group"], peers["forum"], peers["alice"]
    await harness.feed(tg.service(group, alice, raw.types.MessageActionPinMessage(), msg_id=70))
    await harness.feed(
        tg.service(group, alice, raw.types.MessageActionChatEditTitle(title="New <b>"), msg_id=71)
    )
    await harness.feed(
        tg.service(
            forum, alice, raw.types.MessageActionTopicCreate(title="Plans", icon_color=1), msg_id=72
        )
    )
    await harness.feed(
        tg.service(forum, alice, raw.types.MessageActionTopicEdit(closed=True), msg_id=73, topic=72)
    )
    await harness.feed(
        tg.service(
            group,
            alice,
            raw.types.MessageActionChatEditPhoto(photo=raw.types.PhotoEmpty(id=1)),
            msg_id=74,
        )
    )
    pin, title, created, closed, photo = sink.of(ServiceEvent)
    assert (pin.action, pin.msg_id, pin.actor_id) == ("pin", 70, 11)
    assert (title.action, title.title) == ("title_changed", "New <b>")
    assert (created.action, created.topic_id, created.title) == ("topic_created", 72, "Plans")
    assert (closed.action, closed.topic_id) == ("topic_closed", 72)
    assert photo.action == "chat_edit_photo"
    assert sink.of(MessageEvent) == []


async def test_join_and_leave_service_messages(harness, sink, peers):
    tg = harness.raw
    group, alice, bob = peers["group"], peers["alice"], peers["bob"]
    await harness.feed(
        tg.service(
            group,
            alice,
            raw.types.MessageActionChatAddUser(users=[bob.id]),
            extra_peers=[bob],
            msg_id=80,
        )
    )
    await harness.feed(
        tg.service(
            group, bob, raw.types.MessageActionChatJoinedByLink(inviter_id=alice.id), msg_id=81
        )
    )
    await harness.feed(
        tg.service(group, bob, raw.types.MessageActionChatDeleteUser(user_id=bob.id), msg_id=82)
    )
    await harness.feed(
        tg.service(
            group,
            alice,
            raw.types.MessageActionChatDeleteUser(user_id=bob.id),
            msg_id=83,
            extra_peers=[bob],
        )
    )
    added, by_link, left, kicked = sink.of(MemberEvent)
    assert (added.action, added.user_id, added.inviter_id, added.source_msg_id) == (
        "join",
        12,
        11,
        80,
    )
    assert (by_link.action, by_link.user_id, by_link.inviter_id) == ("join", 12, 11)
    assert (left.action, left.user_id, left.actor_id) == ("leave", 12, 12)
    assert (kicked.action, kicked.user_id, kicked.actor_id) == ("kick", 12, 11)


async def test_bot_added_by_service_message_is_left_to_the_member_update(harness, sink, peers):
    tg = harness.raw
    await harness.feed(
        tg.service(
            peers["basic"],
            peers["alice"],
            raw.types.MessageActionChatAddUser(users=[tg.bot.id]),
            extra_peers=[tg.bot],
        )
    )
    assert sink.of(MemberEvent) == []


async def test_migration_from_both_sides(harness, sink, peers):
    tg = harness.raw
    basic, alice = peers["basic"], peers["alice"]
    new = tg.supergroup(2002, "Old group")
    await harness.feed(
        tg.service(
            basic, alice, raw.types.MessageActionChatMigrateTo(channel_id=new.id), extra_peers=[new]
        )
    )
    await harness.feed(
        tg.service(
            new,
            alice,
            raw.types.MessageActionChannelMigrateFrom(title="Old group", chat_id=basic.id),
            extra_peers=[basic],
        )
    )
    first, second = sink.of(ChatMigratedEvent)
    assert (first.old_chat_id, first.new_chat_id) == (-55, -1000000002002)
    assert first == ChatMigratedEvent(old_chat_id=-55, new_chat_id=-1000000002002, date=first.date)
    assert (second.old_chat_id, second.new_chat_id) == (-55, -1000000002002)


async def test_duplicate_delivery_gives_the_same_event_twice(harness, sink, peers):
    tg = harness.raw
    update = tg.new_message(peers["group"], peers["alice"], "once", msg_id=90)
    await harness.feed(update)
    await harness.feed(update)
    first, second = sink.of(MessageEvent)
    assert first == second  # the writer's dedupe key makes it count once


async def test_failing_handler_is_logged_counted_and_the_next_update_goes_on(
    harness, sink, peers, plugin, telemetry, monkeypatch, caplog
):
    tg = harness.raw
    calls = {"n": 0}
    original = plugin.recorder.on_message.__func__

    async def flaky(self, message):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return await original(self, message)

    monkeypatch.setattr(type(plugin.recorder), "on_message", flaky)
    # The handlers were bound at attach time; re-attach so the patched method is used.
    harness.client.dispatcher.groups.clear()
    plugin.attach(harness.client)
    import asyncio

    for _ in range(3):
        await asyncio.sleep(0)
    await harness.feed(tg.new_message(peers["group"], peers["alice"], "first", msg_id=100))
    await harness.feed(tg.new_message(peers["group"], peers["alice"], "second", msg_id=101))
    [msg] = sink.of(MessageEvent)
    assert msg.msg_id == 101
    assert metric_value(telemetry, "bot_errors_total", error_type="handler") == 1
    assert any("chat -1000000001001, message 100" in r.getMessage() for r in caplog.records)


def test_an_update_without_a_chat_is_refused_by_name() -> None:
    """kurigram types an update's chat and its id as optional; the converters refuse one
    without them with an error naming the update (the handler guard logs and counts it,
    as the test above shows), instead of failing on ``None.id`` somewhere inside."""
    from types import SimpleNamespace

    from pyrogram import types

    from tgstats_mtproto.convert import chat_id_of, edit_event

    no_chat = types.Message(id=7, chat=None)
    with pytest.raises(ValueError, match="Message without a chat id"):
        chat_id_of(no_chat)
    with pytest.raises(ValueError, match="Message without a chat id"):
        edit_event(no_chat, store_text=False)
    with pytest.raises(ValueError, match="without a chat id"):
        chat_id_of(SimpleNamespace(chat=types.Chat(id=None)))
    assert chat_id_of(SimpleNamespace(chat=types.Chat(id=-1001))) == -1001
