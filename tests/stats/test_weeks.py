"""Periods made of sealed whole weeks (week rollups) plus edge days (day rollups).

The writer sealed every ISO week before Monday 2026-11-02 while the dataset was
fed (its last day is 2026-11-03). The periods below cross the October/November
edge, start and end mid-week, contain the Berlin DST change (2026-10-25) inside
a sealed week, and one contains an unsealed whole week; every stat that sums
over members, terms, topics or reply pairs must still match the raw events.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.pipeline.weeks import check_weeks
from tgstats import stats
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.subqueries import user_rows, whole_weeks
from tgstats_engagement import engagement

from .conftest import Seeded
from .dataset import BERLIN, KATHMANDU, Truth

PERIODS = [
    Period(start=date(2026, 10, 19), end=date(2026, 11, 1)),  # two whole sealed weeks
    Period(start=date(2026, 10, 21), end=date(2026, 11, 3)),  # edges + one sealed week
    Period(start=date(2026, 10, 14), end=date(2026, 11, 2)),  # DST week inside, edges
    Period(start=date(2026, 10, 21), end=date(2026, 11, 8)),  # a whole week not sealed
    # Edge weeks as their rows minus the days outside (Tuesday start, Friday end).
    Period(start=date(2026, 10, 13), end=date(2026, 10, 30)),
    # The same with a Wednesday start and a Saturday end.
    Period(start=date(2026, 10, 14), end=date(2026, 10, 31)),
]
IDS = ["weeks", "edges", "dst", "unsealed", "minus", "minus-short"]
CHATS = [BERLIN, KATHMANDU]


def test_whole_weeks():
    assert whole_weeks(PERIODS[0]) == (date(2026, 10, 19), date(2026, 11, 2))
    assert whole_weeks(PERIODS[1]) == (date(2026, 10, 26), date(2026, 11, 2))
    assert whole_weeks(Period(start=date(2026, 10, 20), end=date(2026, 10, 30))) is None
    assert whole_weeks(Period(start=date(2026, 10, 26), end=date(2026, 11, 1))) == (
        date(2026, 10, 26), date(2026, 11, 2),
    )  # fmt: skip


def test_edge_weeks_minus_days_only_where_few_days_are_outside():
    scope = ChatScope(chat_id=BERLIN, chat_timezone="Europe/Berlin")
    for period, first, last in [
        (PERIODS[4], date(2026, 10, 12), date(2026, 10, 26)),
        (PERIODS[5], date(2026, 10, 12), date(2026, 10, 26)),
        (PERIODS[1], date(2026, 10, 19), None),  # Wednesday start; Tuesday end: 5 days out
        (PERIODS[0], None, None),
    ]:
        sql, params = user_rows(scope, period, sums=True)
        assert (params.get("wk_first"), params.get("wk_last")) == (first, last)
        assert ("wk_first" in sql, "wk_last" in sql) == (first is not None, last is not None)
        assert "wk_first" not in user_rows(scope, period)[0]  # not for bitsets


async def test_weeks_are_sealed_and_equal_their_days(seeded: Seeded):
    seals = await check_weeks(seeded.db.engine)
    assert seals[BERLIN] == seals[KATHMANDU] == date(2026, 11, 2)


@pytest.mark.parametrize("period", PERIODS, ids=IDS)
@pytest.mark.parametrize("chat_id", CHATS)
async def test_member_sums_over_weeks(seeded: Seeded, session, chat_id: int, period: Period):
    scope = await stats.load_chat_scope(session, chat_id)
    truth = Truth(seeded.events, chat_id, scope.timezone)
    expected = truth.users(period.start, period.end)
    posters = {u: s for u, s in expected.items() if s.get("messages", 0) > 0}
    assert len(posters) > 3

    summary = await stats.summary(session, scope, period)
    previous = period.previous()
    assert summary.active_users.value == len(posters)
    assert summary.active_users.previous == len(truth.posters_between(previous.start, previous.end))

    board = await stats.users(session, scope, period, limit=100)
    assert board.total == len(posters)
    for row in board.rows:
        want = expected[row.user_id]
        got = (row.messages, row.active_days, row.replies_sent, row.replies_received,
               row.reactions_given, row.reactions_received, row.media)  # fmt: skip
        assert got == (
            want["messages"], want["active_days"], want.get("replies_sent", 0),
            want.get("replies_received", 0), want.get("reactions_given", 0),
            want.get("reactions_received", 0), want.get("media", 0),
        ), row.user_id  # fmt: skip

    scores = await engagement(session, scope, period, limit=200)
    assert {s.user_id: (s.messages, s.active_days) for s in scores.scores} == {
        u: (s["messages"], s["active_days"]) for u, s in posters.items()
    }

    reactions = await stats.reactions(session, scope, period, limit=100)
    assert {u.user_id: u.count for u in reactions.top_givers} == {
        u: s["reactions_given"] for u, s in expected.items() if s.get("reactions_given")
    }
    assert {u.user_id: u.count for u in reactions.top_receivers} == {
        u: s["reactions_received"] for u, s in expected.items() if s.get("reactions_received")
    }

    profile = await stats.user_profile(session, scope, period, 1)
    ranked = sorted((s["messages"] for s in posters.values()), reverse=True)
    assert profile.rank == ranked.index(posters[1]["messages"]) + 1


@pytest.mark.parametrize("period", PERIODS, ids=IDS)
@pytest.mark.parametrize("chat_id", CHATS)
async def test_windows_pairs_terms_topics_over_weeks(
    seeded: Seeded, session, chat_id: int, period: Period
):
    scope = await stats.load_chat_scope(session, chat_id)
    truth = Truth(seeded.events, chat_id, scope.timezone)

    series = await stats.timeseries(session, scope, period)
    expected = truth.daily(period.start, period.end)
    assert [(p.active_users, p.wau, p.mau) for p in series.points] == [
        (e["dau"], e["wau"], e["mau"]) for e in expected
    ]

    want = truth.reply_pairs(period.start, period.end)
    pairs = await stats.interactions(session, scope, period, limit=100)
    assert {(p.from_user_id, p.to_user_id): p.replies for p in pairs.pairs} == dict(want)
    assert pairs.total_replies == sum(want.values())
    for pair in pairs.pairs:
        assert pair.replies_back == want.get((pair.to_user_id, pair.from_user_id), 0)

    for kind in ("word", "hashtag", "emoji", "url", "reaction"):
        ranking = await stats.top_terms(session, scope, period, kind, limit=200)
        terms = (
            truth.reaction_emoji(period.start, period.end)
            if kind == "reaction"
            else truth.terms(kind, period.start, period.end)
        )
        assert {t.term: t.count for t in ranking.terms} == dict(terms), kind
        assert (ranking.total, ranking.distinct) == (sum(terms.values()), len(terms)), kind

    if chat_id == KATHMANDU:
        topics = await stats.topics(session, scope, period)
        assert {t.topic_id: (t.messages, t.active_users) for t in topics.topics} == truth.topics(
            period.start, period.end
        )


@pytest.mark.parametrize("chat_id", CHATS)
async def test_inactive_members_over_a_sealed_week(seeded: Seeded, session, chat_id: int):
    scope = await stats.load_chat_scope(session, chat_id)
    truth = Truth(seeded.events, chat_id, scope.timezone)
    today = date(2026, 11, 3)  # window 2026-10-21..11-03 holds the sealed week 10-26..11-01
    result = await stats.members(session, scope, PERIODS[1], inactive_days=14, today=today)
    assert {m.user_id for m in result.inactive} == truth.inactive(today, 14)
