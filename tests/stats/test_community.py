"""Member flow (join sources, invite links, inviters, leave kinds) and retention cohorts,
compared with ``community.Truth`` computed from the events alone, through the stats
functions and the REST API (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from tgstats import stats
from tgstats.db.chat_settings import update_chat_settings
from tgstats.db.engine import Database, open_database
from tgstats.settings import DatabaseSettings
from tgstats.stats.member_flow import invite_link_label
from tgstats.stats.period import ChatScope, Period

from . import community
from .community import CHAT, ZONE, Truth
from .conftest import _truncate, feed

SCOPE = ChatScope(chat_id=CHAT, chat_timezone=ZONE)
PERIODS = [
    Period(start=date(2026, 7, 6), end=date(2026, 11, 22)),  # the whole history
    Period(start=date(2026, 8, 12), end=date(2026, 10, 29)),  # mid-week edges, DST inside
    Period(start=date(2026, 10, 25), end=date(2026, 10, 25)),  # the DST day
]
TODAY = date(2026, 11, 10)  # some cells are not over yet


@pytest.fixture(scope="module")
async def seeded(database_url: str):
    database = open_database(database_url, DatabaseSettings(pool_size=4, max_overflow=4))
    await _truncate(database)
    async with database.session_factory() as session:
        await update_chat_settings(session, CHAT, timezone=ZONE)
        await session.commit()
    events, texts = community.add_conversations(community.build())
    await feed(database, events)
    yield database, events, texts
    await database.dispose()


@pytest.fixture
async def session(seeded):
    database: Database = seeded[0]
    async with database.stats_session_factory() as s:
        yield s


@pytest.mark.parametrize("period", PERIODS, ids=["all", "edges", "dst-day"])
async def test_member_flow_matches_the_events(seeded, session, period):
    truth = Truth(seeded[1]).flow(period.start, period.end)
    flow = await stats.member_flow(session, SCOPE, period, limit=100)
    assert flow.joins == truth["joins"]
    assert {s.source: s.joins for s in flow.sources if s.joins} == truth["sources"]
    assert [s.source for s in flow.sources][-1] == "unknown"
    assert sum(s.joins for s in flow.sources) == flow.joins
    by_label = {link.label: link.joins for link in flow.invite_links}
    assert by_label == {
        invite_link_label(link, community.LINKS[link]): n for link, n in truth["links"].items()
    }
    assert {i.user_id: i.joins for i in flow.top_inviters} == truth["inviters"]
    assert flow.leave_kinds.left == truth["leaves"]["left"]
    assert flow.leave_kinds.kicked == truth["leaves"]["kicked"]
    assert flow.leave_kinds.banned == truth["leaves"]["banned"]
    # The same joins and leaves as the summary's, which come from the day rollups.
    summary = await stats.summary(session, SCOPE, period)
    assert (flow.joins, flow.leaves) == (
        summary.new_members.value, summary.left_members.value,
    )  # fmt: skip


async def test_member_flow_top_n_and_an_unnamed_link_is_never_shown_whole(seeded, session):
    flow = await stats.member_flow(session, SCOPE, PERIODS[0], limit=2)
    truth = Truth(seeded[1]).flow(PERIODS[0].start, PERIODS[0].end)
    expected = sorted(truth["inviters"].items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    assert [(i.user_id, i.joins) for i in flow.top_inviters] == expected
    assert all("ZZZZyyyy" not in link.label for link in flow.invite_links)
    assert invite_link_label("https://t.me/+ZZZZyyyyXXXX2222", None) == "t.me/+ZZZZ…"
    assert invite_link_label("https://t.me/+abc", "Spring") == "Spring"


async def test_member_flow_under_another_time_zone(seeded, session):
    scope = SCOPE.with_timezone("Asia/Kathmandu")
    period = PERIODS[1]
    flow = await stats.member_flow(session, scope, period)
    truth = Truth(seeded[1])
    truth.zone = __import__("zoneinfo").ZoneInfo("Asia/Kathmandu")
    expected = truth.flow(period.start, period.end)
    assert flow.joins == expected["joins"]
    assert flow.leave_kinds.banned == expected["leaves"]["banned"]


@pytest.mark.parametrize("granularity", ["week", "month"])
@pytest.mark.parametrize("period", PERIODS[:2], ids=["all", "edges"])
async def test_cohorts_match_the_events(seeded, session, period, granularity):
    result = await stats.cohorts(session, SCOPE, period, granularity=granularity, today=TODAY)
    offsets = stats.COHORT_OFFSETS[granularity]
    truth = Truth(seeded[1]).cohorts(period.start, period.end, granularity, offsets, TODAY)
    assert result.offsets == list(offsets)
    assert len(result.cohorts) == len(truth)
    assert sum(c.newcomers for c in result.cohorts) > 50
    for cohort, expected in zip(result.cohorts, truth, strict=True):
        assert (cohort.newcomers, cohort.posted) == (expected["newcomers"], expected["posted"])
        assert {c.offset: c.active for c in cohort.cells} == expected["cells"]
    assert result.cohorts[0].start == period.start
    assert result.cohorts[-1].end == period.end
    # Some cells are still open on TODAY, some are over and not empty.
    cells = [c for cohort in result.cohorts for c in cohort.cells]
    assert any(c.active is None for c in cells) and any(c.active for c in cells)


async def test_cohorts_under_another_time_zone_and_bad_granularity(seeded, session):
    scope = SCOPE.with_timezone("America/New_York")
    truth = Truth(seeded[1])
    truth.zone = __import__("zoneinfo").ZoneInfo("America/New_York")
    period = PERIODS[1]
    result = await stats.cohorts(session, scope, period, today=TODAY)
    expected = truth.cohorts(period.start, period.end, "week", (1, 2, 4, 8, 12), TODAY)
    assert [(c.newcomers, c.posted) for c in result.cohorts] == [
        (e["newcomers"], e["posted"]) for e in expected
    ]
    with pytest.raises(ValueError, match=r"^granularity"):
        await stats.cohorts(session, SCOPE, period, granularity="day")


async def test_api_member_flow_and_cohorts_json_csv_and_errors(
    seeded, make_settings, app_client, admin_headers
):
    today = SCOPE.today()
    q = {"from": "2026-07-06", "to": "2026-11-22"}
    base = f"/api/v1/chats/{CHAT}"
    truth = Truth(seeded[1])
    async with app_client(make_settings()) as client:
        flow = (await client.get(f"{base}/member-flow", params=q, headers=admin_headers)).json()
        expected = truth.flow(date(2026, 7, 6), date(2026, 11, 22))
        assert flow["joins"] == expected["joins"]
        assert flow["leave_kinds"] == expected["leaves"]
        response = await client.get(
            f"{base}/member-flow", params={**q, "format": "csv"}, headers=admin_headers
        )
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert {r["key"]: int(r["count"]) for r in rows if r["section"] == "leave"} == expected[
            "leaves"
        ]
        body = (
            await client.get(
                f"{base}/cohorts", params={**q, "granularity": "month"}, headers=admin_headers
            )
        ).json()
        months = truth.cohorts(
            date(2026, 7, 6), date(2026, 11, 22), "month", (1, 2, 3, 6, 12), today
        )
        assert [c["newcomers"] for c in body["cohorts"]] == [m["newcomers"] for m in months]
        assert [[cell["active"] for cell in c["cells"]] for c in body["cohorts"]] == [
            [m["cells"][k] for k in (1, 2, 3, 6, 12)] for m in months
        ]
        response = await client.get(
            f"{base}/cohorts", params={**q, "format": "csv"}, headers=admin_headers
        )
        rows = list(csv.DictReader(io.StringIO(response.text)))
        weeks = truth.cohorts(date(2026, 7, 6), date(2026, 11, 22), "week", (1, 2, 4, 8, 12), today)
        assert [int(r["newcomers"]) for r in rows] == [w["newcomers"] for w in weeks]
        assert [r["week_1"] for r in rows] == [
            "" if w["cells"][1] is None else str(w["cells"][1]) for w in weeks
        ]
        for path, params, name in [
            ("cohorts", {"granularity": "year"}, "granularity"),
            ("member-flow", {"limit": "0"}, "limit"),
            ("member-flow", {"from": "2026-13-01"}, "from"),
        ]:
            response = await client.get(f"{base}/{path}", params=params, headers=admin_headers)
            assert response.status_code == 400, response.text
            assert name in response.text
        assert (await client.get(f"{base}/cohorts")).status_code == 401
        assert (
            await client.get("/api/v1/chats/-1009/cohorts", headers=admin_headers)
        ).status_code == 404


NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.mark.parametrize("period", PERIODS, ids=["all", "edges", "dst-day"])
async def test_response_times_match_the_events(seeded, session, period):
    _, events, texts = seeded
    truth = community.Conversations(events)
    result = await stats.response_times(session, SCOPE, period, limit=100, now=NOW)
    for kind, pairs in (
        ("questions", truth.questions(period.start, period.end, texts)),
        ("newcomers", truth.newcomers(period.start, period.end)),
    ):
        expected = truth.summary(pairs, NOW)
        got = getattr(result, kind)
        assert (got.asked, got.answered, got.unanswered, got.waiting) == (
            expected["asked"], expected["answered"], expected["unanswered"], expected["waiting"],
        ), kind  # fmt: skip
        assert got.median_seconds == expected["median"], kind
        assert got.within_1h == expected["within_1h"], kind
    if period.days > 30:
        assert result.questions.asked > 100 and result.questions.unanswered > 0
        assert result.newcomers.answered > 0
    # Who replied first, counted from the same pairs.
    firsts = Counter()
    for m, r in truth.questions(period.start, period.end, texts) + truth.newcomers(
        period.start, period.end
    ):
        if r is not None and r.date - m.date <= timedelta(days=7):
            firsts[r.user_id] += 1
    assert {row.user_id: row.total for row in result.top_responders} == dict(firsts)


async def test_response_times_under_another_zone_and_bad_limit(seeded, session):
    _, events, texts = seeded
    truth = community.Conversations(events, zone_name="Asia/Tokyo")
    period = PERIODS[1]
    result = await stats.response_times(session, SCOPE.with_timezone("Asia/Tokyo"), period, now=NOW)
    expected = truth.summary(truth.questions(period.start, period.end, texts), NOW)
    assert result.questions.asked == expected["asked"]
    assert result.questions.answered == expected["answered"]
    with pytest.raises(ValueError, match=r"^limit"):
        await stats.response_times(session, SCOPE, period, limit=0)


async def test_api_response_times_json_and_csv(seeded, make_settings, app_client, admin_headers):
    _, events, texts = seeded
    truth = community.Conversations(events)
    q = {"from": "2026-07-06", "to": "2026-11-22"}
    base = f"/api/v1/chats/{CHAT}"
    now = datetime.now(UTC)
    async with app_client(make_settings()) as client:
        body = (await client.get(f"{base}/response-times", params=q, headers=admin_headers)).json()
        expected = truth.summary(truth.questions(date(2026, 7, 6), date(2026, 11, 22), texts), now)
        assert body["questions"]["asked"] == expected["asked"]
        assert body["questions"]["answered"] == expected["answered"]
        assert body["questions"]["waiting"] == 0  # all of it is weeks old
        assert body["window_hours"] == 168
        response = await client.get(
            f"{base}/response-times", params={**q, "format": "csv"}, headers=admin_headers
        )
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert rows[0]["kind"] == "questions" and int(rows[0]["asked"]) == expected["asked"]
        assert rows[1]["kind"] == "newcomers"
        assert [r["kind"] for r in rows[2:]] == ["responder"] * len(body["top_responders"])
        bad = await client.get(
            f"{base}/response-times", params={"limit": "x"}, headers=admin_headers
        )
        assert bad.status_code == 400 and "limit" in bad.text
