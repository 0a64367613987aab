"""Every kind of export message maps to the right events (generated exports, both formats)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.importer.conftest import ListSink
from tgstats.events import (
    ChatMigratedEvent,
    ChatSnapshot,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionCountEvent,
    ReactionEvent,
    ServiceEvent,
)
from tgstats.importer import ImportOptions, import_export

T0 = 1_700_000_000
CHAT = -1001234567890


def msg(msg_id: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": msg_id,
        "type": "message",
        "date": "2023-11-14T22:13:20",
        "date_unixtime": str(T0 + msg_id),
        "from": "Alice",
        "from_id": "user101",
        "text": "",
        "text_entities": [],
    }
    base.update(fields)
    return base


def service(msg_id: int, action: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": msg_id,
        "type": "service",
        "date": "2023-11-14T22:13:20",
        "date_unixtime": str(T0 + msg_id),
        "actor": "Alice",
        "actor_id": "user101",
        "action": action,
        "text": "",
    }
    base.update(fields)
    return base


def at(msg_id: int) -> datetime:
    return datetime.fromtimestamp(T0 + msg_id, UTC)


EVERY_KIND: dict[str, Any] = {
    "name": "Team chat",
    "type": "private_supergroup",
    "id": 1234567890,
    "messages": [
        service(1, "migrate_from_group", title="Team chat (old)"),
        # Members named in service messages: Bob is known (he writes below), Zed never is.
        service(2, "invite_members", members=["Bob", "Zed", "Mallory"]),
        msg(3, **{"from": "Bob", "from_id": "user102", "text": "hi all"}),
        msg(
            4,
            text=[
                {"type": "mention", "text": "@bobby"},
                " see ",
                {"type": "text_link", "text": "this", "href": "https://a.example/x"},
                " #news 😀",
            ],
            text_entities=[
                {"type": "mention", "text": "@bobby"},
                {"type": "plain", "text": " see "},
                {"type": "text_link", "text": "this", "href": "https://a.example/x"},
                {"type": "plain", "text": " "},
                {"type": "hashtag", "text": "#news"},
                {"type": "plain", "text": " 😀"},
            ],
            reply_to_message_id=3,
            edited="2023-11-14T22:20:00",
            edited_unixtime=str(T0 + 1000),
        ),
        msg(5, **{"from": "Team chat", "from_id": "channel1234567890", "text": "anon admin"}),
        msg(6, file="(File not included.)", media_type="sticker", sticker_emoji="👍"),
        msg(7, file="voice_messages/a.ogg", media_type="voice_message"),
        msg(8, file="round_video_messages/a.mp4", media_type="video_message"),
        msg(9, file="video_files/a.gif.mp4", media_type="animation"),
        msg(10, file="video_files/a.mp4", media_type="video_file"),
        msg(11, file="files/a.mp3", media_type="audio_file"),
        msg(12, photo="(File not included. Change data exporting settings to download.)"),
        msg(13, file="files/report.pdf"),
        msg(14, poll={"question": "Lunch?", "closed": False, "total_voters": 0, "answers": []}),
        msg(15, forwarded_from="News Channel", text="fwd"),
        msg(
            16,
            text="nice",
            reactions=[
                {
                    "type": "emoji",
                    "count": 3,
                    "emoji": "👍",
                    "recent": [
                        {"from": "Bob", "from_id": "user102", "date": "2023-11-14T22:30:00"}
                    ],
                },
                {"type": "custom_emoji", "count": 1, "document_id": "5368324170671202286"},
            ],
        ),
        {"id": 17, "type": "unsupported", "date": "2023-11-14T22:13:20"},
        msg(18, text="has extras", some_new_field=1, another_field={"x": 1}),
        service(19, "remove_members", members=["Alice"]),  # Alice leaves by herself
        service(20, "remove_members", members=["Bob"]),  # Alice removes Bob
        service(21, "join_group_by_link", actor="Carol", actor_id="user103", inviter="Alice"),
        service(22, "pin_message", message_id=3),
        service(23, "edit_group_title", title="Team chat 2"),
        service(24, "topic_created", title="Releases"),
        msg(25, text="in topic", reply_to_message_id=24),
        msg(26, text="reply in topic", reply_to_message_id=25),
        service(27, "boost_apply", boosts=1),
        msg(28, text=[{"type": "bot_command", "text": "/stats@tgstats_bot"}, " week"]),
    ],
}


async def test_every_kind(write_export: Callable[..., Path], sink: ListSink) -> None:
    summary = await import_export(write_export(EVERY_KIND), sink)
    assert summary.error is None, summary.error
    messages = {m.msg_id: m for m in sink.of(MessageEvent)}
    assert sorted(messages) == [3, 4, 5, *range(6, 17), 18, 25, 26, 28]
    assert {m.chat_id for m in messages.values()} == {CHAT}

    m4 = messages[4]
    assert m4.user_id == 101
    assert m4.date == at(4)
    assert m4.text == "@bobby see this #news 😀"
    assert m4.features.mentions == ("bobby",)
    assert m4.features.urls == ("https://a.example/x",)
    assert m4.features.hashtags == ("news",)
    assert m4.features.emojis == ("😀",)
    assert (m4.reply_to_msg_id, m4.reply_to_user_id) == (3, 102)
    assert m4.edit_date == datetime.fromtimestamp(T0 + 1000, UTC)

    assert (messages[5].user_id, messages[5].sender_chat_id) == (None, CHAT)  # anonymous admin
    assert {i: messages[i].media_type for i in range(6, 15)} == {
        6: "sticker",
        7: "voice",
        8: "video_note",
        9: "animation",
        10: "video",
        11: "audio",
        12: "photo",
        13: "document",
        14: "poll",
    }
    assert messages[15].forward_origin == ForwardOrigin(origin="hidden_user", name="News Channel")
    assert messages[28].features.commands == ("stats",)

    # Forum topics: a message "replying" to the topic root is in the topic, not a reply.
    assert (messages[25].topic_id, messages[25].reply_to_msg_id) == (24, None)
    assert (messages[26].topic_id, messages[26].reply_to_msg_id) == (24, 25)

    (count,) = sink.of(ReactionCountEvent)
    assert count.msg_id == 16
    assert count.counts == (("👍", 3), ("custom:5368324170671202286", 1))
    (reaction,) = sink.of(ReactionEvent)
    assert (reaction.msg_id, reaction.user_id, reaction.added) == (16, 102, ("👍",))
    assert reaction.date == datetime(2023, 11, 14, 22, 30, tzinfo=UTC)

    members = sorted(sink.of(MemberEvent), key=lambda e: (e.source_msg_id, e.date))
    simple = [(e.source_msg_id, e.user_id, e.action, e.inviter_id) for e in members]
    assert simple == [
        (2, 102, "join", 101),  # Bob: his name is matched to the id his messages carry
        (2, None, "join", 101),  # Zed: counted without a user
        (2, None, "join", 101),  # Mallory too, as a separate row
        (19, 101, "leave", None),
        (20, 102, "kick", None),
        (21, 103, "join", 101),
    ]
    unknown_dates = [e.date for e in members if e.user_id is None]
    assert len(set(unknown_dates)) == 2
    # How each joined: added by Alice (invite_members), Carol by a link; leaves say none.
    assert [e.join_source for e in members] == ["added", "added", "added", None, None, "link"]

    services = {s.msg_id: s for s in sink.of(ServiceEvent)}
    assert {i: s.action for i, s in services.items()} == {
        1: "migrate_from_group",
        22: "pin_message",
        23: "edit_group_title",
        24: "topic_created",
        27: "boost_apply",
    }
    assert services[23].title == "Team chat 2"
    assert (services[24].topic_id, services[24].title) == (24, "Releases")
    snapshots = sink.of(ChatSnapshot)
    # The first creates the chat without renaming a known one; the last is dated at the
    # export's last message (names as of the export win only over older ones).
    assert snapshots[0] == ChatSnapshot(
        chat_id=CHAT,
        chat_type="supergroup",
        title="Team chat",
        date=datetime(1970, 1, 1, tzinfo=UTC),
    )
    assert snapshots[-1].is_forum is True
    assert snapshots[-1].date == max(e.date for e in sink.of(MessageEvent))

    stats = summary.chats[0].stats
    assert stats.messages == 18
    assert stats.skipped == {"unsupported message": 1}
    assert stats.unknown_fields == {"some_new_field": 1, "another_field": 1}
    assert stats.members_without_user == 2
    text = summary.render()
    assert "unsupported message 1" in text and "some_new_field 1" in text


async def test_same_file_maps_identically(write_export: Callable[..., Path]) -> None:
    path = write_export(EVERY_KIND)
    first, second = ListSink(), ListSink()
    await import_export(path, first)
    await import_export(path, second)
    assert first.events == second.events


OLD_FORMAT: dict[str, Any] = {
    "name": "Old group",
    "type": "private_group",
    "id": 4242,
    "messages": [
        {
            "id": 1,
            "type": "message",
            "date": "2017-03-01T10:00:00",
            "from": "Ann",
            "from_id": 501,
            "text": "plain int ids",
        },
        {
            "id": 2,
            "type": "message",
            "date": "2017-03-01T10:05:00",
            "edited": "2017-03-01T10:06:00",
            "from": "Ben",
            "from_id": 502,
            "text": ["see ", {"type": "link", "text": "http://x.org"}],
        },
        {
            "id": 3,
            "type": "service",
            "date": "2017-03-01T11:00:00",
            "actor": "Ann",
            "actor_id": 501,
            "action": "invite_members",
            "members": ["Ben"],
            "text": "",
        },
        {
            "id": 4,
            "type": "service",
            "date": "2017-03-01T12:00:00",
            "actor": "Ann",
            "actor_id": 501,
            "action": "migrate_to_supergroup",
            "text": "",
        },
    ],
}


async def test_old_format_basic_group(write_export: Callable[..., Path], sink: ListSink) -> None:
    summary = await import_export(
        write_export(OLD_FORMAT), sink, ImportOptions(timezone="Asia/Kolkata")
    )
    assert summary.error is None
    messages = {m.msg_id: m for m in sink.of(MessageEvent)}
    assert {m.chat_id for m in messages.values()} == {-4242}  # basic group: -<id>
    assert (messages[1].user_id, messages[2].user_id) == (501, 502)
    # 10:00 in India (+05:30) is 04:30 UTC.
    assert messages[1].date == datetime(2017, 3, 1, 4, 30, tzinfo=UTC)
    assert messages[2].edit_date == datetime(2017, 3, 1, 4, 36, tzinfo=UTC)
    assert messages[2].features.urls == ("http://x.org",)
    (member,) = sink.of(MemberEvent)
    assert (member.user_id, member.action, member.inviter_id) == (502, "join", 501)
    (migrate,) = sink.of(ServiceEvent)
    assert migrate.action == "migrate_to_supergroup"
    assert sink.of(ChatMigratedEvent) == []  # the new id is not in a one-chat export


def account(chats: list[dict[str, Any]], left: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 1, "first_name": "Me", "names": ["a", "b"]},
        "contacts": {"about": "x", "list": [{"user_id": 7, "first_name": "X", "date": "2020"}]},
        "chats": {"about": "y", "list": chats},
        "left_chats": {"about": "z", "list": left},
    }


def chat(export_id: int, kind: str, name: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "type": kind, "id": export_id, "messages": messages}


ACCOUNT = account(
    [
        chat(11, "personal_chat", "Friend", [msg(1), msg(2)]),
        chat(22, "private_group", "Old team", [msg(1), service(2, "migrate_to_supergroup")]),
        chat(
            33,
            "private_supergroup",
            "New team",
            [service(1, "migrate_from_group", title="Old team"), msg(2), msg(3)],
        ),
        chat(44, "public_channel", "News", [msg(1)]),
        chat(55, "public_supergroup", "Empty", []),
    ],
    [chat(66, "private_supergroup", "Left group", [msg(1), msg(2), msg(3), msg(4)])],
)


async def test_account_shape_defaults(write_export: Callable[..., Path], sink: ListSink) -> None:
    summary = await import_export(write_export(ACCOUNT), sink)
    assert summary.error is None
    assert summary.shape == "account"
    per_chat: dict[int, int] = {}
    for m in sink.of(MessageEvent):
        per_chat[m.chat_id] = per_chat.get(m.chat_id, 0) + 1
    assert per_chat == {-22: 1, -1000000000033: 2, -1000000000066: 4}
    assert sink.of(ChatMigratedEvent) == [
        ChatMigratedEvent(old_chat_id=-22, new_chat_id=-1000000000033, date=at(1))
    ]
    assert summary.migrations == 1
    skipped = {c.label: c.skipped_reason for c in summary.chats if c.skipped_reason}
    assert set(skipped) == {"Friend", "News"}
    assert summary.skipped() == {skipped["Friend"]: 2, skipped["News"]: 1}


async def test_account_shape_selection(write_export: Callable[..., Path], sink: ListSink) -> None:
    options = ImportOptions(chats=("News", "66", "-22"))
    summary = await import_export(write_export(ACCOUNT), sink, options)
    chats = {m.chat_id for m in sink.of(MessageEvent)}
    assert chats == {-1000000000044, -1000000000066, -22}
    assert summary.unmatched_selectors == []
    assert summary.imported_messages == 6


async def test_account_shape_with_old_dates(write_export: Callable[..., Path]) -> None:
    old = [dict(m, date_unixtime=None) for m in OLD_FORMAT["messages"]]
    for m in old:
        del m["date_unixtime"]
    document = account([chat(4242, "private_group", "Old group", old)], [])
    sink = ListSink()
    summary = await import_export(write_export(document), sink, ImportOptions(timezone="UTC"))
    assert summary.error is None
    first = next(m for m in sink.of(MessageEvent) if m.msg_id == 1)
    assert first.date == datetime(2017, 3, 1, 10, 0, tzinfo=UTC)
    assert first.date - datetime(2017, 3, 1, tzinfo=UTC) == timedelta(hours=10)
