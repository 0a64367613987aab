"""``/stats``, ``/me`` and ``/top`` end to end: raw MTProto updates in, replies out.

Each test seeds the chat through the real ``EventPipeline``, sends the command
as a Telegram update through kurigram's dispatcher and the MTProto plugin's
command dispatch, and compares the reply with what the stats functions answer
for the same chat and period (and, for a few numbers, with the seed itself).
Replies are checked as Telegram gets them: kurigram has already turned the
HTML into plain text plus entities, so escaped user text shows up literally.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pyrogram import raw

from tgstats import stats
from tgstats.charts import PNG_SIGNATURE
from tgstats_sanitizer import truncate
from tgstats_statsbot.replies import NAME_MAX, number, pct_text, period_label

from .seed import FORUM_RAW_ID, GROUP, GROUP_RAW_ID, GROUP_TITLE, HOSTILE_NAME, build_events


@pytest.fixture
async def seeded(pipeline, db):
    await pipeline.sink.put_many(build_events())
    await pipeline.sink.flush()
    return db


@pytest.fixture
def peers(harness):
    tg = harness.raw
    return {
        "group": tg.supergroup(GROUP_RAW_ID, GROUP_TITLE),
        "forum": tg.supergroup(FORUM_RAW_ID, "Trips", forum=True),
        "alice": tg.user(11, "Alice", username="alice"),
        "eve": tg.user(13, HOSTILE_NAME, username="eve_x"),
        "zed": tg.user(19, "Zed", username="zed"),
    }


async def ask(harness, peers, text, *, who="alice", chat="group", **kwargs):
    """Send ``text`` as a command and return the replies it caused (SendMessage/SendMedia)."""
    before = len(harness.api.calls)
    await harness.feed(harness.raw.new_message(peers[chat], peers[who], text, **kwargs))
    return [
        c
        for c in harness.api.calls[before:]
        if isinstance(c, raw.functions.messages.SendMessage | raw.functions.messages.SendMedia)
    ]


async def ask_text(harness, peers, text, **kwargs) -> str:
    [reply] = await ask(harness, peers, text, **kwargs)
    assert isinstance(reply, raw.functions.messages.SendMessage), type(reply).__name__
    return str(reply.message)


async def expected(db, period_text="30d"):
    async with db.session_factory() as session:
        scope = await stats.load_chat_scope(session, GROUP)
        period = await stats.resolve_period(session, scope, period_text)
        return session, scope, period


async def query(db, fn, period_text="30d", **kwargs):
    async with db.session_factory() as session:
        scope = await stats.load_chat_scope(session, GROUP)
        period = await stats.resolve_period(session, scope, period_text)
        return await fn(session, scope, period, **kwargs)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


# --------------------------------------------------------------------------- text answers


async def test_stats_summary_matches_the_stats_engine(harness, peers, seeded):
    text = await ask_text(harness, peers, "/stats")
    summary = await query(seeded, stats.summary)
    # The seed: Alice 41 messages, Bob 10, Eve 10 in the last 20 days.
    assert summary.messages.value == 61
    assert f"Messages: {number(summary.messages.value)}" in text
    assert f"Active members: {number(summary.active_users.value)}" in text
    assert f"Daily active (avg): {number(summary.average_dau.value)}" in text
    assert f"Joined: {number(summary.new_members.value)}" in text
    assert f"Left: {number(summary.left_members.value)}" in text
    assert f"Reactions: {number(summary.reactions.value)}" in text
    assert f"Replies: {number(summary.replies.value)}" in text
    assert period_label(summary.period) in text
    assert GROUP_TITLE in text  # the hostile title shown literally, not as markup


async def test_stats_summary_with_a_period_shows_the_change(harness, peers, seeded):
    text = await ask_text(harness, peers, "/stats 60d")
    summary = await query(seeded, stats.summary, "60d")
    assert summary.messages.value == 67 and summary.messages.previous == 0
    assert "Messages: 67 (+67)" in text
    text = await ask_text(harness, peers, "/stats 20d")
    summary = await query(seeded, stats.summary, "20d")
    pct = summary.messages.change_pct
    assert pct is not None
    sign = "+" if pct > 0 else "-"
    assert f"Messages: {number(summary.messages.value)} ({sign}{abs(pct):.0f}%)" in text


@pytest.mark.parametrize("command", ["/stats top", "/top", "/top 30d", "/stats@tgstats_bot top"])
async def test_top_lists_members_by_messages(harness, peers, seeded, command):
    text = await ask_text(harness, peers, command)
    board = await query(seeded, stats.users, limit=10)
    assert [r.messages for r in board.rows] == [41, 10, 10]
    for row in board.rows:
        name = truncate(row.display_name, NAME_MAX)
        line = f"{row.rank}. {name} — {number(row.messages)} ({pct_text(row.share_pct)})"
        assert line in text
    assert "1. Alice — 41" in text
    assert text.count("\n1. ") == 1


async def test_words_media_reactions_topics(harness, peers, seeded):
    words = await ask_text(harness, peers, "/stats words")
    ranking = await query(seeded, stats.top_terms, kind="word", limit=10)
    assert ranking.terms, "the seed has words"
    for i, term in enumerate(ranking.terms, 1):
        assert f"{i}. {term.term} — {number(term.count)}" in words

    media = await ask_text(harness, peers, "/stats media")
    breakdown = await query(seeded, stats.media_breakdown)
    for item in breakdown.types:
        assert f"{item.media_type} — {number(item.messages)} ({pct_text(item.share_pct)})" in media
    assert f"{breakdown.media_messages} of {breakdown.total_messages} messages" in media

    [reply] = await ask(harness, peers, "/stats reactions")
    text = reply.message
    result = await query(seeded, stats.reactions, limit=5)
    assert result.total == 10
    assert f"Total: {number(result.total)}" in text
    assert "👍 10" in text
    top = result.top_messages[0]
    assert f"1. {top.display_name}, {top.date:%b %d} — {top.reactions} 👍" in text
    links = [e.url for e in reply.entities or () if isinstance(e, raw.types.MessageEntityTextUrl)]
    assert top.link is not None and top.link in links
    assert f"Received most\n1. Bob — {result.top_receivers[0].count}" in text

    topics = await ask_text(harness, peers, "/stats topics")
    assert "This chat has no topics." in topics


async def test_topics_in_a_forum_and_replies_go_to_the_topic_asked(harness, peers, seeded):
    [reply] = await ask(harness, peers, "/stats topics", chat="forum", topic=5)
    assert isinstance(reply.reply_to, raw.types.InputReplyToMessage)
    assert reply.reply_to.top_msg_id == 5
    async with seeded.session_factory() as session:
        scope = await stats.load_chat_scope(session, utils_forum_id())
        period = await stats.resolve_period(session, scope, "30d")
        result = await stats.topics(session, scope, period)
    rows = [t for t in result.topics if t.messages]
    assert sum(t.messages for t in rows) == 7
    for i, topic in enumerate(rows, 1):
        name = topic.title or "General"
        assert f"{i}. {name} — {topic.messages}" in reply.message
    assert "Nepal <2027>" in reply.message


def utils_forum_id() -> int:
    from pyrogram import utils

    return utils.get_channel_id(FORUM_RAW_ID)


async def test_me_and_user_profiles(harness, peers, seeded):
    for command in ("/me", "/stats me"):
        text = await ask_text(harness, peers, command)
        profile = await query(seeded, stats.user_profile, user_id=11, words=5)
        assert profile.messages == 41
        assert f"Messages: {profile.messages} ({pct_text(profile.share_pct)} of chat, #1)" in text
        assert f"Active days: {profile.active_days} of 30" in text
        assert f"Longest streak: {profile.longest_streak_days} days" in text
        assert f"Reactions: gave {profile.reactions_given}" in text

    text = await ask_text(harness, peers, "/stats user @EVE_X 30d")
    profile = await query(seeded, stats.user_profile, user_id=13, words=5)
    assert f"Messages: {profile.messages} (" in text
    assert HOSTILE_NAME[:31] in text  # escaped, so shown as written (cut to 32 characters)
    assert "(@eve_x)" in text

    text = await ask_text(harness, peers, "/stats user 12")
    assert "Bob" in text and "Messages: 10 (" in text


async def test_me_for_someone_with_no_messages(harness, peers, seeded):
    text = await ask_text(harness, peers, "/me", who="zed")
    assert text == "You have no messages recorded in this chat yet."


# --------------------------------------------------------------------------- charts


@pytest.mark.parametrize(
    ("command", "caption_line"),
    [
        ("/stats history", "Messages: 61 · per day"),
        ("/stats hours", "Busiest: "),
        ("/stats days", "Mon: "),
        ("/stats members", "Members now: "),
    ],
)
async def test_chart_commands_send_valid_pngs(
    harness, peers, seeded, photos, command, caption_line
):
    [reply] = await ask(harness, peers, command)
    assert isinstance(reply, raw.functions.messages.SendMedia)
    [photo] = photos.photos
    width, height = png_size(photo.png)
    assert 800 <= width <= 1280 and 300 <= height <= 800
    assert len(photo.png) > 5_000
    assert caption_line in photo.caption
    assert len(photo.caption) <= 1024


async def test_chart_captions_carry_the_engines_numbers(harness, peers, seeded, photos):
    await ask(harness, peers, "/stats hours 30d")
    heat = await query(seeded, stats.heatmap)
    busiest = max(range(24), key=lambda h: (heat.by_hour[h], -h))
    assert f"Busiest: {busiest:02d}:00-{(busiest + 1) % 24:02d}:00 ({heat.by_hour[busiest]})" in (
        photos.photos[-1].caption
    )
    await ask(harness, peers, "/stats days")
    for name, count in zip(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), heat.by_weekday):
        assert f"{name}: {count} (" in photos.photos[-1].caption
    await ask(harness, peers, "/stats members 30d")
    members = await query(seeded, stats.members)
    assert (members.joins, members.leaves) == (2, 1)
    caption = photos.photos[-1].caption
    assert f"Joined: {members.joins} · left: {members.leaves} · net: +{members.net}" in caption
    assert f"Members now: {members.members_now}" in caption
    # Where they came from and how they went, as the seed says (one link, one add).
    assert "Came in: invite link 1 · added by a member 1" in caption
    assert "Top links: Spring 1" in caption
    assert "Top inviters: Alice 2" in caption
    assert "Went: left 1 · kicked 0 · banned 0" in caption
    assert "Still posting after 1w/2w/4w/8w/12w:" in caption
    await ask(harness, peers, "/stats history 2w")
    series = await query(seeded, stats.timeseries, "2w")
    total = sum(p.messages for p in series.points)
    assert f"Messages: {total} · per day" in photos.photos[-1].caption


async def test_chart_reply_goes_to_the_topic_asked(harness, peers, seeded, photos):
    [reply] = await ask(harness, peers, "/stats history all", chat="forum", topic=6)
    assert isinstance(reply, raw.functions.messages.SendMedia)
    assert reply.reply_to.top_msg_id == 6
    assert png_size(photos.photos[0].png)[0] > 0


async def test_a_period_without_messages_answers_in_text(harness, peers, seeded):
    text = await ask_text(harness, peers, "/stats history 2020-01")
    assert "No messages in this period." in text
    text = await ask_text(harness, peers, "/stats hours 2020-01-01..2020-01-31")
    assert "No messages in this period." in text


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("/stats lastweek", "unknown period"),
        ("/stats top 2026-13", "no month 13"),
        ("/stats 2026-10-31..2026-10-01", "after its end"),
        ("/top <b>x</b>", "unknown period"),
        ("/me 9999d", "period length"),
        ("/stats user", "name the member"),
    ],
)
async def test_wrong_arguments_get_the_usage_line(harness, peers, seeded, command, problem):
    text = await ask_text(harness, peers, command)
    assert problem in text
    assert "Usage: /" in text
    if command.startswith("/stats"):
        assert "/stats user @name [period]" in text


async def test_unknown_member_is_answered_politely(harness, peers, seeded):
    text = await ask_text(harness, peers, "/stats user @nobody_here")
    assert text == "I don't know @nobody_here in this chat."
    text = await ask_text(harness, peers, "/stats user <script>")
    assert text.startswith("<script> does not look like a @username")


async def test_chat_without_records_and_private_chats(harness, peers, seeded):
    tg = harness.raw
    empty = tg.supergroup(4040, "Fresh")
    await harness.feed(tg.new_message(empty, peers["alice"], "/stats"))
    assert harness.api.sent_texts()[-1].startswith("No stats for this chat yet")
    await harness.feed(tg.new_message(peers["alice"], peers["alice"], "/stats"))
    assert harness.api.sent_texts()[-1].startswith("Stats are kept for group chats")


async def test_hostile_names_are_escaped_everywhere(harness, peers, seeded):
    top = await ask_text(harness, peers, "/top")
    assert f"2. {truncate(HOSTILE_NAME, NAME_MAX)} — 10" in top  # shown literally, cut
    [reply] = await ask(harness, peers, "/top")
    # No markup from the name became formatting: only the heading's bold/italic entities.
    bold = [e for e in reply.entities or () if isinstance(e, raw.types.MessageEntityBold)]
    for entity in bold:
        assert "Eve" not in reply.message[entity.offset : entity.offset + entity.length]


async def test_user_named_by_a_text_mention(harness, peers, seeded):
    """Members without a username are picked from Telegram's list: a text mention with an id."""
    bob = harness.raw.user(12, "Bob")
    command = "/stats user Bob"
    entity = raw.types.MessageEntityMentionName(offset=12, length=3, user_id=12)
    text = await ask_text(harness, peers, command, entities=[entity], extra_peers=[bob])
    assert text.startswith("👤 Bob")
    assert "Messages: 10 (" in text


async def test_stats_commands_are_rate_limited(harness, peers, seeded, bot_services):
    class OnePerMinute:
        def __init__(self):
            self.used = set()

        async def hit(self, key, *, per_minute, per_hour):
            from tgstats.plugin_api import RateLimitResult

            allowed = key not in self.used
            self.used.add(key)
            return RateLimitResult(
                allowed=allowed, limit=1, remaining=0, reset_after=60, retry_after=60
            )

    bot_services.register("rate_limiter", OnePerMinute())
    first = await ask_text(harness, peers, "/stats")
    assert first.startswith("📊")
    second = await ask_text(harness, peers, "/stats history")
    assert second.startswith("Too many commands")
    assert await ask(harness, peers, "/top") == []  # told once per window, then quiet


async def test_answers_are_cached_until_the_chat_gets_new_data(
    harness, peers, seeded, pipeline, bot_services
):
    from datetime import timedelta

    from tgstats.events import MessageEvent
    from tgstats_cache import MemoryStore, StatsCache

    from .seed import today_midnight

    cache = StatsCache(MemoryStore(1000), default_ttl=300)
    bot_services.register("cache", cache)
    assert "Messages: 61" in await ask_text(harness, peers, "/stats")
    late = MessageEvent(
        chat_id=GROUP, msg_id=9999, date=today_midnight() - timedelta(hours=5), user_id=12
    )
    await pipeline.sink.put(late)
    await pipeline.sink.flush()
    # Same data version: the cached answer.
    assert "Messages: 61" in await ask_text(harness, peers, "/stats")
    await cache.bump_data_version([GROUP])  # what the app does after each committed batch
    assert "Messages: 62" in await ask_text(harness, peers, "/stats")


async def test_hours_are_local_to_the_chat_zone(harness, peers, db, pipeline, photos):
    """+05:45: 18:20 UTC is 00:05 the next day in Kathmandu, so midnight is the busiest hour."""
    from datetime import timedelta

    from tgstats.events import ChatSnapshot, MessageEvent
    from tgstats.plugin_api import update_chat_settings

    from .seed import today_midnight

    async with db.session_factory() as session:
        await update_chat_settings(session, GROUP, timezone="Asia/Kathmandu")
        await session.commit()
    base = today_midnight() - timedelta(days=3)
    events = [ChatSnapshot(chat_id=GROUP, chat_type="supergroup", title="Kathmandu")]
    events += [
        MessageEvent(chat_id=GROUP, msg_id=i, date=base + timedelta(hours=18, minutes=20 + i))
        for i in range(3)
    ]
    events.append(MessageEvent(chat_id=GROUP, msg_id=10, date=base + timedelta(hours=3)))
    await pipeline.sink.put_many(events)
    await pipeline.sink.flush()
    await ask(harness, peers, "/stats hours")
    caption = photos.photos[-1].caption
    assert "Busiest: 00:00-01:00 (3)" in caption
    assert "Time zone: Asia/Kathmandu" in caption
    await ask(harness, peers, "/stats days")
    local_day = (base + timedelta(hours=18, minutes=20)).date() + timedelta(days=1)
    weekday = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[local_day.weekday()]
    assert f"{weekday}: 3 (75%)" in photos.photos[-1].caption


async def test_chart_falls_back_to_text_when_photos_are_not_allowed(harness, peers, seeded):
    from pyrogram.errors import ChatSendPhotosForbidden

    harness.api.fail[raw.functions.messages.SendMedia] = ChatSendPhotosForbidden()
    replies = await ask(harness, peers, "/stats history")
    assert [type(r).__name__ for r in replies] == ["SendMedia", "SendMessage"]
    assert replies[1].message.startswith("📈 Activity")
    assert "Messages: 61 · per day" in replies[1].message
    assert harness.api.sent_photos() == []


async def test_chart_falls_back_to_text_when_drawing_fails(harness, peers, seeded, monkeypatch):
    from tgstats.plugin_api import charts  # what the statsbot plugin draws with

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(charts, "hours_png", broken)
    text = await ask_text(harness, peers, "/stats hours")
    assert text.startswith("🕐 Messages by hour")


async def test_me_from_an_anonymous_admin(harness, peers, seeded):
    text = await ask_text(harness, peers, "/me", who="group")
    assert text.startswith("I cannot tell who you are")


async def test_replies_in_the_chats_language(harness, peers, seeded):
    """With ``locale`` = ru the same numbers come back in Russian, with Russian plurals,
    number separators, weekday names and dates (spelled out here, not read from the catalog)."""
    from tgstats.plugin_api import update_chat_settings

    async with seeded.session_factory() as session:
        await update_chat_settings(session, GROUP, locale="ru")
        await session.commit()
    text = await ask_text(harness, peers, "/stats")
    summary = await query(seeded, stats.summary)
    assert summary.messages.value == 61  # the seed, counted by hand
    assert text.startswith("📊 Статистика чата")
    assert "(30 дней)" in text
    assert "Сообщений: 61 " in text and f"Ответов: {int(summary.replies.value)}" in text
    assert f"Медиа: {int(summary.media_messages.value)} (" in text and "%)" in text
    months = [
        "янв.",
        "февр.",
        "мар.",
        "апр.",
        "мая",
        "июн.",
        "июл.",
        "авг.",
        "сент.",
        "окт.",
        "нояб.",
        "дек.",
    ]
    start = summary.period.start
    assert f"{start.day} {months[start.month - 1]} {start.year}" in text

    top = await ask_text(harness, peers, "/top")
    assert "🏆 Самые активные" in top
    assert "1. Alice — 41 (" in top
    assert "61 сообщ. от 3 участников" in top  # 3: the "few" form

    days = await ask(harness, peers, "/stats days")
    [photo] = days
    caption = photo.message
    assert "Сообщения по дням недели" in caption
    assert "пн: " in caption and "вс: " in caption and "Часовой пояс: " in caption

    wrong = await ask_text(harness, peers, "/stats 2026-13")
    assert wrong.startswith(
        "Не могу разобрать этот период.\nИспользование: /stats [период] (сводка)"
    )
    assert "Периоды: 7d, 30d" in wrong


def question_events() -> list:
    """Yesterday evening, after everything the seed has: Eve asks and Bob answers 12
    minutes later; Alice asks and only answers herself (so it is still waiting)."""
    from datetime import timedelta

    from tgstats.events import MessageEvent
    from tgstats.features import extract

    from .seed import today_midnight

    evening = today_midnight() - timedelta(hours=1)
    return [
        MessageEvent(chat_id=GROUP, msg_id=9001, date=evening, user_id=13,
                     features=extract("anyone here?")),
        MessageEvent(chat_id=GROUP, msg_id=9002, date=evening + timedelta(minutes=5),
                     user_id=11, features=extract("why？")),
        MessageEvent(chat_id=GROUP, msg_id=9003, date=evening + timedelta(minutes=12),
                     user_id=12, reply_to_msg_id=9001, features=extract("yes")),
        MessageEvent(chat_id=GROUP, msg_id=9004, date=evening + timedelta(minutes=20),
                     user_id=11, reply_to_msg_id=9002, features=extract("me")),
    ]  # fmt: skip


async def test_answers_tell_how_fast_questions_got_a_reply(harness, peers, seeded, pipeline):
    await pipeline.sink.put_many(question_events())
    await pipeline.sink.flush()
    text = await ask_text(harness, peers, "/stats answers 7d")
    result = await query(seeded, stats.response_times, "7d")
    assert (result.questions.asked, result.questions.answered, result.questions.waiting) == (
        2, 1, 1,
    )  # fmt: skip
    assert result.questions.median_seconds == 12 * 60
    assert "Questions: 2 · answered 1 · never 0" in text
    assert f"median wait 12 min · within 1 h {pct_text(100.0)}" in text
    assert "still waiting: 1" in text
    assert "1. Bob — 1" in text
