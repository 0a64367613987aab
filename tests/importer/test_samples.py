"""The real Telegram Desktop samples map to exactly the events they describe."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.importer.conftest import SAMPLES, ListSink
from tgstats.events import ChatSnapshot, MessageEvent, ServiceEvent, UserSnapshot
from tgstats.importer import ImportOptions, import_export

CHANNEL = SAMPLES / "channel-2020.json"
DM = SAMPLES / "dm-personal-chat.json"


async def test_channel_sample_old_format(sink: ListSink) -> None:
    summary = await import_export(CHANNEL, sink)
    assert summary.error is None
    assert summary.shape == "single"
    chat_id = -1001292077344
    first, last = sink.of(ChatSnapshot)
    assert first == ChatSnapshot(
        chat_id=chat_id, chat_type="channel", title="test", date=datetime(1970, 1, 1, tzinfo=UTC)
    )
    # The title as of the export: dated at its last message, so newer names win.
    assert (last.title, last.date) == ("test", max(m.date for m in sink.of(MessageEvent)))
    messages = {m.msg_id: m for m in sink.of(MessageEvent)}
    assert sorted(messages) == [2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14, 15, 21, 22, 23, 24, 25, 26]
    assert summary.imported_messages == 18
    # The channel posts as itself: no user, the chat as sender.
    assert all(m.user_id is None and m.sender_chat_id == chat_id for m in messages.values())
    assert sink.of(UserSnapshot) == []
    # Old exports have only local `date`; the default zone is UTC.
    assert messages[2].date == datetime(2020, 11, 12, 12, 54, 7, tzinfo=UTC)
    assert {i for i, m in messages.items() if m.edit_date is not None} == {5, 10, 13, 14, 22}
    assert messages[5].edit_date == datetime(2020, 11, 12, 13, 3, tzinfo=UTC)
    media = {i: m.media_type for i, m in messages.items() if m.media_type != "text"}
    assert media == {
        3: "photo",
        4: "photo",
        23: "photo",
        24: "photo",
        25: "photo",
        7: "voice",
        8: "audio",
        22: "document",
        26: "document",
    }
    # Text arrays flatten; text_link and link parts become links.
    assert messages[14].text == "text link\n\nexample.com\n\nexample@example.com"
    assert set(messages[14].features.urls) == {"http://example.com/", "example.com"}
    assert messages[21].text == "тестирование utf-8."
    assert messages[9].text == "italic in text\n\nitalic on whole line"
    (service,) = sink.of(ServiceEvent)
    assert (service.msg_id, service.action, service.actor_id) == (1, "create_channel", chat_id)
    assert summary.chats[0].stats.edited == 5
    assert sink.flushes == 1


async def test_channel_sample_dates_in_the_named_zone(sink: ListSink) -> None:
    summary = await import_export(CHANNEL, sink, ImportOptions(timezone="Europe/Moscow"))
    assert summary.timezone == "Europe/Moscow"
    first = next(m for m in sink.of(MessageEvent) if m.msg_id == 2)
    assert first.date == datetime(2020, 11, 12, 9, 54, 7, tzinfo=UTC)
    assert "read as Europe/Moscow" in summary.render()


async def test_personal_chat_is_skipped_unless_selected(sink: ListSink) -> None:
    summary = await import_export(DM, sink)
    assert summary.error is None
    assert summary.imported_messages == 0
    assert sink.of(MessageEvent) == []
    assert summary.chats[0].skipped_reason is not None
    assert sum(summary.skipped().values()) == 8


async def test_personal_chat_selected_by_name(sink: ListSink) -> None:
    summary = await import_export(DM, sink, ImportOptions(chats=("bob",)))
    assert summary.error is None
    messages = {m.msg_id: m for m in sink.of(MessageEvent)}
    assert sorted(messages) == [3644, 3645, 3662, 3663, 3672, 3673]
    assert {m.chat_id for m in messages.values()} == {700000000}
    assert messages[3644].user_id == 700000000
    assert messages[3645].user_id == 300000000
    assert messages[3644].features.urls == ("https://google.com",)
    assert messages[3644].features.emojis == ("👀",)
    # date_unixtime wins over date when both are present; alone it is used as is.
    assert messages[3662].date == datetime.fromtimestamp(1652135033, UTC)
    assert messages[3672].media_type == "photo"  # "File not included" is still a photo
    services = {s.msg_id: s.action for s in sink.of(ServiceEvent)}
    assert services == {2675: "joined_telegram", 3674: "phone_call"}
    phone = next(s for s in sink.of(ServiceEvent) if s.msg_id == 3674)
    assert phone.date == datetime.fromtimestamp(1691719862, UTC)
    users = {u.user_id: u.first_name for u in sink.of(UserSnapshot)}
    assert users == {700000000: "Bob", 300000000: "Alice"}
    assert summary.chats[0].stats.service_actions == {"joined_telegram": 1, "phone_call": 1}


async def test_selection_by_bot_api_id(sink: ListSink) -> None:
    summary = await import_export(CHANNEL, sink, ImportOptions(chats=("-1001292077344",)))
    assert summary.imported_messages == 18
    other = ListSink()
    summary = await import_export(CHANNEL, other, ImportOptions(chats=("nope",)))
    assert summary.imported_messages == 0
    assert summary.unmatched_selectors == ["nope"]
    assert "'nope' matched no chat" in summary.render()
