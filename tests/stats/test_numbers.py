"""Every stat checked against numbers computed independently from the raw event list.

Two chats: Europe/Berlin across the end of summer time and Asia/Kathmandu
(+05:45). Rollups answer in the chat's zone; a ``tz`` override answers from
raw rows, and is checked against the same truth computed in that zone.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tgstats import stats
from tgstats.stats.period import Period
from tgstats.stats.users import longest_streak

from .conftest import Seeded
from .dataset import BERLIN, KATHMANDU, USERS, ZONES, Truth

PERIOD = Period(start=date(2026, 10, 20), end=date(2026, 10, 30))  # spans 2026-10-25 (DST end)
TODAY = date(2026, 11, 28)

CASES = [
    (BERLIN, None),
    (KATHMANDU, None),
    (BERLIN, "Asia/Kathmandu"),  # override: answered from raw rows
    (KATHMANDU, "America/New_York"),  # override in a zone with its own DST change (Nov 1)
]
IDS = ["berlin", "kathmandu", "berlin-as-kathmandu", "kathmandu-as-new-york"]


async def _scope(session, chat_id: int, tz: str | None) -> stats.ChatScope:
    scope = await stats.load_chat_scope(session, chat_id, tz=tz)
    assert scope.chat_timezone == ZONES[chat_id]
    assert scope.uses_raw == (tz is not None)
    return scope


def _truth(seeded: Seeded, chat_id: int, tz: str | None) -> Truth:
    return Truth(seeded.events, chat_id, tz or ZONES[chat_id])


@pytest.mark.parametrize(("chat_id", "tz"), CASES, ids=IDS)
async def test_summary_matches_events(seeded: Seeded, session, chat_id: int, tz: str | None):
    scope = await _scope(session, chat_id, tz)
    truth = _truth(seeded, chat_id, tz)
    result = await stats.summary(session, scope, PERIOD)
    expected = truth.summary(PERIOD.start, PERIOD.end)
    previous = PERIOD.previous()
    expected_previous = truth.summary(previous.start, previous.end)
    assert expected["messages"] > 100  # the dataset really covers the period
    for name, value in expected.items():
        metric = getattr(result, name)
        assert metric.value == pytest.approx(value), name
        assert metric.previous == pytest.approx(expected_previous[name]), name
        assert metric.change == pytest.approx(value - expected_previous[name], abs=0.011), name
    assert result.timezone == (tz or ZONES[chat_id])
    assert result.previous_period == previous


@pytest.mark.parametrize(("chat_id", "tz"), CASES, ids=IDS)
async def test_daily_timeseries_matches_events(
    seeded: Seeded, session, chat_id: int, tz: str | None
):
    scope = await _scope(session, chat_id, tz)
    truth = _truth(seeded, chat_id, tz)
    result = await stats.timeseries(session, scope, PERIOD, granularity="day", rolling=3)
    expected = truth.daily(PERIOD.start, PERIOD.end)
    assert [p.bucket for p in result.points] == [e["day"] for e in expected]
    for point, want in zip(result.points, expected, strict=True):
        assert point.messages == want["messages"], point.bucket
        assert point.active_users == want["dau"], point.bucket
        assert point.dau == want["dau"], point.bucket
        assert point.wau == want["wau"], point.bucket
        assert point.mau == want["mau"], point.bucket
        assert point.reactions == want["reactions"], point.bucket
        assert point.joins == want["joins"], point.bucket
    # Rolling mean over up to 3 buckets.
    third = result.points[2]
    assert third.messages_avg == pytest.approx(
        round(sum(e["messages"] for e in expected[:3]) / 3, 2)
    )
    assert result.points[0].messages_avg == expected[0]["messages"]


async def test_weekly_and_monthly_buckets(seeded: Seeded, session):
    scope = await _scope(session, BERLIN, None)
    truth = _truth(seeded, BERLIN, None)
    period = Period(start=date(2026, 10, 18), end=date(2026, 11, 2))
    weekly = await stats.timeseries(session, scope, period, granularity="week")
    # Buckets start on Mondays; the first and last are partial weeks.
    assert [p.bucket for p in weekly.points] == [
        date(2026, 10, 12), date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 2)
    ]  # fmt: skip
    assert [p.days for p in weekly.points] == [1, 7, 7, 1]
    for point in weekly.points:
        first = max(point.bucket, period.start)
        last = min(point.bucket + timedelta(days=6), period.end)
        assert point.messages == len(truth.period_messages(first, last))
        assert point.active_users == len(truth.posters_between(first, last))
        assert point.wau == len(truth.posters_between(last - timedelta(days=6), last))
    monthly = await stats.timeseries(session, scope, period, granularity="month")
    assert [p.bucket for p in monthly.points] == [date(2026, 10, 1), date(2026, 11, 1)]
    assert sum(p.messages for p in monthly.points) == len(
        truth.period_messages(period.start, period.end)
    )
    october = monthly.points[0]
    assert october.mau == len(truth.posters_between(date(2026, 10, 2), date(2026, 10, 31)))
    for point in monthly.points:
        first = max(point.bucket, period.start)
        last = min(
            date(point.bucket.year, point.bucket.month + 1, 1) - timedelta(days=1), period.end
        )
        assert point.active_users == len(truth.posters_between(first, last))


@pytest.mark.parametrize(("chat_id", "tz"), CASES, ids=IDS)
async def test_heatmap_matches_events(seeded: Seeded, session, chat_id: int, tz: str | None):
    scope = await _scope(session, chat_id, tz)
    result = await stats.heatmap(session, scope, PERIOD)
    expected = _truth(seeded, chat_id, tz).heatmap(PERIOD.start, PERIOD.end)
    assert result.matrix == expected
    assert result.total == sum(map(sum, expected))
    assert len(result.cells) == 168


@pytest.mark.parametrize(("chat_id", "tz"), CASES, ids=IDS)
async def test_users_leaderboard_matches_events(
    seeded: Seeded, session, chat_id: int, tz: str | None
):
    scope = await _scope(session, chat_id, tz)
    truth = _truth(seeded, chat_id, tz)
    expected = truth.users(PERIOD.start, PERIOD.end)
    posters = {u: s for u, s in expected.items() if s.get("messages", 0) > 0}
    board = await stats.users(session, scope, PERIOD, limit=100)
    assert board.total == len(posters)
    assert board.total_messages == sum(s["messages"] for s in posters.values())
    assert [r.messages for r in board.rows] == sorted(
        (s["messages"] for s in posters.values()), reverse=True
    )
    for row in board.rows:
        want = expected[row.user_id]
        assert row.messages == want["messages"]
        assert row.active_days == want["active_days"]
        assert row.media == want.get("media", 0)
        assert row.replies_sent == want.get("replies_sent", 0)
        assert row.replies_received == want.get("replies_received", 0)
        assert row.reactions_given == want.get("reactions_given", 0)
        assert row.reactions_received == want.get("reactions_received", 0)
        assert row.average_length == pytest.approx(round(want["text_length"] / want["messages"], 2))
        assert row.share_pct == pytest.approx(
            round(want["messages"] * 100 / board.total_messages, 2)
        )
        if row.user_id > 0:
            first, last, _ = USERS[row.user_id]
            assert row.display_name == " ".join(p for p in (first, last) if p)
        else:
            assert row.display_name == f"chat {ZONES[chat_id]}"  # the chat posting as itself


async def test_users_sort_search_paging_and_lurkers(seeded: Seeded, session):
    scope = await _scope(session, BERLIN, None)
    truth = _truth(seeded, BERLIN, None)
    expected = truth.users(PERIOD.start, PERIOD.end)
    by_days = await stats.users(session, scope, PERIOD, sort="active_days", order="asc")
    days = [r.active_days for r in by_days.rows]
    assert days == sorted(days)
    page = await stats.users(session, scope, PERIOD, limit=2, offset=1)
    full = await stats.users(session, scope, PERIOD, limit=100)
    assert [r.user_id for r in page.rows] == [r.user_id for r in full.rows[1:3]]
    assert page.total == full.total
    found = await stats.users(session, scope, PERIOD, search="SCHMI")
    assert [r.user_id for r in found.rows] == [1]
    assert found.rows[0].messages == expected[1]["messages"]
    assert (await stats.users(session, scope, PERIOD, search="100%_")).rows == []
    # Lurkers: current members without a message in the period.
    lurkers = await stats.users(session, scope, PERIOD, include_lurkers=True, limit=100)
    quiet = [r for r in lurkers.rows if r.is_lurker]
    members_now = {1, 2, 3, 4, 5, 6, 7}  # 8 left
    posted = {u for u, s in expected.items() if s.get("messages", 0) > 0}
    assert {r.user_id for r in quiet} == members_now - posted
    assert all(r.messages == 0 and r.rank is None for r in quiet)
    with pytest.raises(ValueError, match=r"^sort:"):
        await stats.users(session, scope, PERIOD, sort="password")


@pytest.mark.parametrize(("chat_id", "tz"), CASES[:3], ids=IDS[:3])
async def test_user_profile_matches_events(seeded: Seeded, session, chat_id: int, tz: str | None):
    scope = await _scope(session, chat_id, tz)
    truth = _truth(seeded, chat_id, tz)
    expected = truth.users(PERIOD.start, PERIOD.end)[1]
    profile = await stats.user_profile(session, scope, PERIOD, 1)
    assert profile.messages == expected["messages"]
    assert profile.hours == truth.hours_of(1, PERIOD.start, PERIOD.end)
    active = truth.active_days_of(1, PERIOD.start, PERIOD.end)
    assert profile.active_days == len(active)
    assert profile.longest_streak_days == longest_streak(active)[0]
    assert sum(d.count for d in profile.daily) == expected["messages"]
    assert profile.rank == 1  # user 1 posts the most by construction
    if chat_id == KATHMANDU:  # stores text: per-member words from the stored text
        assert profile.top_words_available and profile.top_words
    else:
        assert not profile.top_words_available and profile.top_words_note
    with pytest.raises(stats.UserNotFound):
        await stats.user_profile(session, scope, PERIOD, 999)


def test_longest_streak():
    d = date(2026, 1, 1)
    days = [d, d + timedelta(1), d + timedelta(3), d + timedelta(4), d + timedelta(5)]
    assert longest_streak(days) == (3, d + timedelta(3), d + timedelta(5))
    assert longest_streak([]) == (0, None, None)


@pytest.mark.parametrize("chat_id", [BERLIN, KATHMANDU])
async def test_content_matches_events(seeded: Seeded, session, chat_id: int):
    scope = await _scope(session, chat_id, None)
    truth = _truth(seeded, chat_id, None)
    result = await stats.content(session, scope, PERIOD, limit=50)
    media = truth.media(PERIOD.start, PERIOD.end)
    assert {m.media_type: m.messages for m in result.media.types} == dict(media)
    assert result.media.media_messages == sum(n for t, n in media.items() if t != "text")
    for ranking, kind in (
        (result.words, "word"),
        (result.hashtags, "hashtag"),
        (result.mentions, "mention"),
        (result.emoji, "emoji"),
    ):
        want = truth.terms(kind, PERIOD.start, PERIOD.end)
        assert ranking.total == sum(want.values()), kind
        assert ranking.distinct == len(want), kind
        assert {t.term: t.count for t in ranking.terms} == dict(want), kind
    urls = truth.terms("url", PERIOD.start, PERIOD.end)
    domains = truth.terms("domain", PERIOD.start, PERIOD.end)
    assert {t.term: t.count for t in result.links.urls} == dict(urls)
    assert {t.term: t.count for t in result.links.domains} == dict(domains)
    assert "example.org" in dict(domains)  # www. folded into the domain
    with pytest.raises(ValueError, match=r"^kind:"):
        await stats.top_terms(session, scope, PERIOD, "passwords")


@pytest.mark.parametrize(("chat_id", "tz"), CASES[:3], ids=IDS[:3])
async def test_reactions_match_events(seeded: Seeded, session, chat_id: int, tz: str | None):
    scope = await _scope(session, chat_id, tz)
    truth = _truth(seeded, chat_id, tz)
    result = await stats.reactions(session, scope, PERIOD, limit=100)
    assert result.total == truth.summary(PERIOD.start, PERIOD.end)["reactions"]
    assert {t.term: t.count for t in result.top_emoji} == dict(
        truth.reaction_emoji(PERIOD.start, PERIOD.end)
    )
    want = truth.reacted_messages(PERIOD.start, PERIOD.end)
    assert len(result.top_messages) == min(100, len(want))
    for message in result.top_messages:
        assert message.reactions == want[message.msg_id]
    assert [m.reactions for m in result.top_messages] == sorted(want.values(), reverse=True)[:100]
    top = result.top_messages[0]
    if chat_id == BERLIN:
        assert top.link == f"https://t.me/berlin_chat/{top.msg_id}"
    else:
        assert top.link == f"https://t.me/c/1000000002/{top.msg_id}"
    users = truth.users(PERIOD.start, PERIOD.end)
    assert {u.user_id: u.count for u in result.top_givers} == {
        u: s["reactions_given"] for u, s in users.items() if s.get("reactions_given")
    }
    assert {u.user_id: u.count for u in result.top_receivers} == {
        u: s["reactions_received"] for u, s in users.items() if s.get("reactions_received")
    }


@pytest.mark.parametrize(("chat_id", "tz"), CASES[:3], ids=IDS[:3])
async def test_interactions_match_events(seeded: Seeded, session, chat_id: int, tz: str | None):
    scope = await _scope(session, chat_id, tz)
    want = _truth(seeded, chat_id, tz).reply_pairs(PERIOD.start, PERIOD.end)
    result = await stats.interactions(session, scope, PERIOD, limit=100)
    assert {(p.from_user_id, p.to_user_id): p.replies for p in result.pairs} == dict(want)
    assert result.total_replies == sum(want.values())
    for pair in result.pairs:
        assert pair.replies_back == want.get((pair.to_user_id, pair.from_user_id), 0)


@pytest.mark.parametrize(("chat_id", "tz"), CASES[:3], ids=IDS[:3])
async def test_members_match_events(seeded: Seeded, session, chat_id: int, tz: str | None):
    scope = await _scope(session, chat_id, tz)
    truth = _truth(seeded, chat_id, tz)
    period = Period(start=date(2026, 10, 18), end=date(2026, 10, 30))
    result = await stats.members(session, scope, period, inactive_days=14, today=TODAY)
    daily = truth.daily(period.start, period.end)
    assert [d.joins for d in result.days] == [d["joins"] for d in daily]
    assert result.joins == 8 and result.leaves == 1 and result.net == 7
    assert result.members_now == 7
    retention = truth.retention(period.start, period.end, TODAY)
    assert result.retention.newcomers == retention["newcomers"] == 8
    assert result.retention.eligible_7d == retention.get("eligible_7", 0)
    assert result.retention.retained_7d == retention.get("retained_7", 0)
    assert result.retention.retained_30d == retention.get("retained_30", 0)
    # Everyone went quiet by TODAY (the data ends on 2026-11-03).
    inactive = truth.inactive(TODAY, 14)
    assert {m.user_id for m in result.inactive} == inactive
    assert result.inactive_total == len(inactive)
    recent = await stats.members(session, scope, period, inactive_days=10, today=date(2026, 11, 1))
    assert {m.user_id for m in recent.inactive} == truth.inactive(date(2026, 11, 1), 10)
    assert 6 in {m.user_id for m in recent.inactive}  # user 6 stopped posting on day 4
    # A window older than every join: nobody can be silent in it; the counts still come.
    nobody = await stats.members(session, scope, period, inactive_days=3000, today=TODAY)
    assert truth.inactive(TODAY, 3000) == set()
    assert (nobody.inactive, nobody.inactive_total, nobody.members_now) == ([], 0, 7)


@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
async def test_topics_match_events(seeded: Seeded, session, tz: str | None):
    scope = await _scope(session, KATHMANDU, tz)
    want = _truth(seeded, KATHMANDU, tz).topics(PERIOD.start, PERIOD.end)
    result = await stats.topics(session, scope, PERIOD)
    assert {t.topic_id: (t.messages, t.active_users) for t in result.topics} == want
    titles = {t.topic_id: t.title for t in result.topics}
    assert titles[11] == "Trekking" and titles[12] == "Food" and titles[0] == "General"
    assert result.is_forum


async def test_chat_list(seeded: Seeded, session):
    listed = await stats.list_chats(session)
    assert {c.chat_id for c in listed.chats} == {BERLIN, KATHMANDU}
    only = await stats.list_chats(session, chat_ids=[KATHMANDU])
    assert [c.chat_id for c in only.chats] == [KATHMANDU]
    assert only.chats[0].timezone == "Asia/Kathmandu"
    assert only.chats[0].members == 7
    assert only.chats[0].last_active_day is not None


@pytest.mark.parametrize(
    ("max_days", "max_poster_days", "block_cells"),
    [
        (1000, 10**6, 8_000_000),  # bitsets, every poster in one block
        (1000, 10**6, 1),  # bitsets, one poster per block
        (10, 10**6, 3_000),  # a long period with few poster-days: bitsets
        (10, 0, 8_000_000),  # a long, busy period: SQL
    ],
    ids=["bitsets", "bitsets-per-poster", "long-bitsets", "long-sql"],
)
async def test_long_period_active_windows_match_events(
    seeded: Seeded, session, monkeypatch, max_days, max_poster_days, block_cells
):
    """WAU/MAU counted with bitsets (in blocks of posters) or, for long busy periods, in
    SQL: every way agrees with the events."""
    from tgstats.stats import overview

    monkeypatch.setattr(overview, "BITSET_MAX_DAYS", max_days)
    monkeypatch.setattr(overview, "BITSET_MAX_POSTER_DAYS", max_poster_days)
    monkeypatch.setattr(overview, "_BITSET_BLOCK_CELLS", block_cells)
    scope = await _scope(session, KATHMANDU, None)
    truth = _truth(seeded, KATHMANDU, None)
    period = Period(start=date(2026, 10, 1), end=date(2026, 11, 10))
    expected = truth.daily(period.start, period.end)
    result = await stats.timeseries(session, scope, period)
    assert [p.wau for p in result.points] == [e["wau"] for e in expected]
    assert [p.mau for p in result.points] == [e["mau"] for e in expected]
    # Week buckets' distinct posters: from the same bitsets, or counted in SQL.
    weekly = await stats.timeseries(session, scope, period, granularity="week")
    for point in weekly.points:
        first = max(point.bucket, period.start)
        last = min(point.bucket + timedelta(days=6), period.end)
        assert point.active_users == len(truth.posters_between(first, last))


async def test_active_windows_of_a_period_that_ends_long_after_the_last_post(
    seeded: Seeded, session
):
    """A period that runs months past the last message (an all-time view of a chat that
    went quiet): the trailing quiet days are counted (zero posters), not out of range."""
    scope = await _scope(session, KATHMANDU, None)
    truth = _truth(seeded, KATHMANDU, None)
    period = Period(start=date(2026, 10, 1), end=date(2027, 3, 31))
    expected = truth.daily(period.start, period.end)
    result = await stats.timeseries(session, scope, period)
    assert [p.wau for p in result.points] == [e["wau"] for e in expected]
    assert [p.mau for p in result.points] == [e["mau"] for e in expected]
    assert result.points[-1].mau == 0  # nobody posted in the last 30 days
