"""Engagement scores: worked examples by hand, the seeded chats, the API route, /leaderboard."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tgstats.plugin_api import CommandContext, PluginContext, ServiceRegistry
from tgstats.settings import Settings
from tgstats.stats import load_chat_scope
from tgstats.stats.period import Period
from tgstats_engagement import EngagementPlugin, UserCounts, engagement, score

from .conftest import Seeded
from .dataset import BERLIN, ZONES, Truth

PERIOD = Period(start=date(2026, 10, 20), end=date(2026, 10, 30))


def test_worked_example_from_the_docs():
    # 10 days; 50 messages on 5 days; 4000 characters; 10 links; 10 media; 30 reactions
    # received; 20 replies sent; 40 reactions given.
    counts = UserCounts(
        messages=50, active_days=5, text_length=4000, links=10, media=10,
        reactions_received=30, replies_sent=20, reactions_given=40, period_days=10,
    )  # fmt: skip
    parts = score(counts)
    # activity: 50/10 = 5 per day of 10 -> 50
    assert parts["activity"] == 50.0
    # consistency: 5 of 10 days -> 50
    assert parts["consistency"] == 50.0
    # quality: length 80/80 -> 1, links 0.2/0.25 -> 0.8, media 0.2/0.25 -> 0.8,
    # reactions received 0.6/1 -> 0.6: 100 * (.35*1 + .15*.8 + .15*.8 + .35*.6) = 80
    assert parts["quality"] == 80.0
    # interaction: replies 0.4/0.5 -> 0.8, reactions given 0.8/1 -> 0.8: 100 * (.5*.8 + .5*.8)
    assert parts["interaction"] == 80.0
    # total: .30*50 + .25*50 + .25*80 + .20*80 = 15 + 12.5 + 20 + 16
    assert parts["total"] == 63.5


def test_second_worked_example_with_caps():
    # 1 day; 25 messages (over the 10/day cap); short texts; no links; reactions galore.
    counts = UserCounts(
        messages=25, active_days=1, text_length=500, links=0, media=5,
        reactions_received=50, replies_sent=0, reactions_given=5, period_days=1,
    )  # fmt: skip
    parts = score(counts)
    assert parts["activity"] == 100.0  # 25/day, capped at 10/day
    assert parts["consistency"] == 100.0
    # length 20/80 = .25; links 0; media .2/.25 = .8; reactions 2/1 capped at 1
    # 100 * (.35*.25 + 0 + .15*.8 + .35*1) = 100 * (.0875 + .12 + .35) = 55.75
    assert parts["quality"] == 55.75
    # replies 0; reactions given .2/1 = .2 -> 100 * .5 * .2 = 10
    assert parts["interaction"] == 10.0
    # .3*100 + .25*100 + .25*55.75 + .2*10 = 30 + 25 + 13.9375 + 2 = 70.9375
    assert parts["total"] == 70.94


def test_no_messages_scores_zero():
    counts = UserCounts(
        messages=0, active_days=0, text_length=0, links=0, media=0,
        reactions_received=3, replies_sent=0, reactions_given=9, period_days=7,
    )  # fmt: skip
    assert score(counts)["total"] == 0.0


async def test_engagement_of_seeded_chat_matches_events(seeded: Seeded, session):
    scope = await load_chat_scope(session, BERLIN)
    board = await engagement(session, scope, PERIOD, limit=50)
    truth = Truth(seeded.events, BERLIN, ZONES[BERLIN]).users(PERIOD.start, PERIOD.end)
    posters = {u: s for u, s in truth.items() if s.get("messages", 0) > 0}
    assert board.total == len(posters)
    totals = [s.total for s in board.scores]
    assert totals == sorted(totals, reverse=True)
    for entry in board.scores:
        want = posters[entry.user_id]
        links = sum(
            len(m.features.urls)
            for m in Truth(seeded.events, BERLIN, ZONES[BERLIN]).period_messages(
                PERIOD.start, PERIOD.end
            )
            if (m.user_id if m.user_id is not None else m.sender_chat_id) == entry.user_id
        )
        expected = score(
            UserCounts(
                messages=int(want["messages"]),
                active_days=int(want["active_days"]),
                text_length=int(want["text_length"]),
                links=links,
                media=int(want.get("media", 0)),
                reactions_received=int(want.get("reactions_received", 0)),
                replies_sent=int(want.get("replies_sent", 0)),
                reactions_given=int(want.get("reactions_given", 0)),
                period_days=PERIOD.days,
            )
        )
        assert entry.total == expected["total"], entry.user_id
        assert entry.quality == expected["quality"], entry.user_id
        assert entry.consistency == round(100 * want["active_days"] / PERIOD.days, 2)


async def test_engagement_api_route(seeded: Seeded, make_settings, app_client, admin_headers):
    async with app_client(make_settings()) as client:
        response = await client.get(
            f"/api/v1/chats/{BERLIN}/engagement",
            params={"from": "2026-10-20", "to": "2026-10-30", "limit": 3},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["scores"]) == 3 and body["scores"][0]["rank"] == 1
        assert body["weights"] == {
            "activity": 0.3, "consistency": 0.25, "quality": 0.25, "interaction": 0.2,
        }  # fmt: skip
        as_csv = await client.get(
            f"/api/v1/chats/{BERLIN}/engagement",
            params={"from": "2026-10-20", "to": "2026-10-30", "format": "csv"},
            headers=admin_headers,
        )
        assert as_csv.text.startswith("user_id,username,display_name,rank,total")
        assert (await client.get(f"/api/v1/chats/{BERLIN}/engagement")).status_code == 401
        missing = await client.get("/api/v1/chats/-1007/engagement", headers=admin_headers)
        assert missing.status_code == 404


async def test_leaderboard_command(seeded: Seeded):
    replies: list[str] = []

    async def reply(text: str = "", **kwargs: Any) -> None:
        replies.append(text)

    async def is_admin() -> bool:
        return False

    services = ServiceRegistry()
    services.register("session_factory", seeded.db.session_factory)
    services.register("read_session_factory", seeded.db.stats_session_factory)
    plugin = EngagementPlugin(
        context=PluginContext(plugin_id="engagement", settings=Settings(), services=services)
    )
    [command] = plugin.commands()
    assert command.name == "leaderboard"

    def ctx(args: str, chat_id: int = BERLIN) -> CommandContext:
        return CommandContext(
            command="leaderboard", args=args, chat_id=chat_id, chat_type="supergroup",
            message_id=1, user_id=1, sender_chat_id=None, topic_id=None, services=services,
            settings=Settings(), reply=reply, is_admin=is_admin,
        )  # fmt: skip

    await command.handler(ctx("2026-10-20..2026-10-30"))
    text = replies[-1]
    assert text.startswith("<b>Engagement</b> · 2026-10-20..2026-10-30 (Europe/Berlin)")
    assert "1. Anna Schmidt — <b>" in text
    assert "=cmd|&#x27; /C calc&#x27;!A0" in text  # names are HTML-escaped
    assert len(text.splitlines()) <= 12
    await command.handler(ctx("nonsense"))
    assert "unknown period" in replies[-1] and "Usage" in replies[-1]
    await command.handler(ctx("30d", chat_id=-100123))
    assert replies[-1] == "No stats for this chat yet."


@pytest.mark.parametrize("bad", ["limit=0", "limit=500"])
async def test_engagement_limit_validation(seeded: Seeded, session, bad: str):
    scope = await load_chat_scope(session, BERLIN)
    with pytest.raises(ValueError, match=r"^limit:"):
        await engagement(session, scope, PERIOD, limit=int(bad.split("=")[1]))


def test_vectorised_totals_equal_score_bit_for_bit():
    import random

    from tgstats_engagement import totals

    rng = random.Random(7)
    counts = [
        UserCounts(
            messages=(m := rng.choice([0, 1, 2, 3, 7, rng.randint(1, 5000)])),
            active_days=rng.randint(0, 31),
            text_length=rng.randint(0, 300 * max(m, 1)),
            links=rng.randint(0, m),
            media=rng.randint(0, m),
            reactions_received=rng.randint(0, 3 * m),
            replies_sent=rng.randint(0, m),
            reactions_given=rng.randint(0, 4 * m + 5),
            period_days=rng.choice([1, 7, 30, 31, 90, 365]),
        )
        for _ in range(20000)
    ]
    want = [score(c)["total"] for c in counts]
    assert totals(counts) == want
    assert len(set(want)) > 1000 and 0.0 in want
    assert totals([]) == []
