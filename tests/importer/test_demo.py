"""``seed_demo``: a realistic group, idempotent, and current relative to "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tgstats.db.chat_settings import get_chat_settings
from tgstats.demo import DEMO_CHAT_ID, build_demo_events, seed_demo
from tgstats.events import MemberEvent, MessageEvent, ReactionEvent, ServiceEvent
from tgstats.settings import Settings

NOW = datetime(2026, 3, 15, 18, 30, tzinfo=UTC)


def test_demo_events_are_deterministic_and_varied() -> None:
    events, messages, days = build_demo_events(seed=7, now=NOW)
    again, _, _ = build_demo_events(seed=7, now=NOW)
    assert events == again
    assert days == 120
    msgs = [e for e in events if isinstance(e, MessageEvent)]
    assert len(msgs) == messages > 4000
    assert all(m.date <= NOW for m in msgs)
    assert max(m.date for m in msgs) > NOW - timedelta(hours=12)
    assert min(m.date for m in msgs) < NOW - timedelta(days=110)
    assert {m.media_type for m in msgs} >= {
        "text",
        "photo",
        "video",
        "animation",
        "sticker",
        "voice",
        "video_note",
        "audio",
        "document",
        "poll",
        "location",
        "contact",
        "dice",
    }
    per_user: dict[int, int] = {}
    for m in msgs:
        assert m.user_id is not None
        per_user[m.user_id] = per_user.get(m.user_id, 0) + 1
    assert len(per_user) == 12
    ranked = sorted(per_user.values(), reverse=True)
    assert ranked[0] > 10 * ranked[-1]  # skewed activity
    # A daily rhythm in Berlin time: evenings are busier than the small hours.
    berlin = [m.date.astimezone(ZoneInfo("Europe/Berlin")).hour for m in msgs]
    assert sum(1 for h in berlin if 19 <= h <= 21) > 5 * sum(1 for h in berlin if 2 <= h <= 4)
    assert sum(1 for m in msgs if m.reply_to_msg_id) > 500
    assert sum(1 for m in msgs if m.edit_date) > 100
    assert {m.topic_id for m in msgs} == {None, 2, 3}
    topics = [e for e in events if isinstance(e, ServiceEvent) and e.action == "topic_created"]
    assert [(t.topic_id, t.title) for t in topics] == [(2, "Releases"), (3, "Off-topic")]
    members = [e for e in events if isinstance(e, MemberEvent)]
    assert {e.action for e in members} == {"join", "leave"}
    assert all(e.user_id is not None for e in members)
    assert sum(1 for e in events if isinstance(e, ReactionEvent)) > 500
    # A day later the earlier days are the same events: reseeding adds, never duplicates.
    later, _, _ = build_demo_events(seed=7, now=NOW + timedelta(days=1))
    later_ids = {(m.chat_id, m.msg_id): m for m in later if isinstance(m, MessageEvent)}
    overlap = [m for m in msgs if m.date >= NOW + timedelta(days=1) - timedelta(days=119)]
    assert all(later_ids[(m.chat_id, m.msg_id)] == m for m in overlap)


async def test_seed_demo_is_idempotent(session_factory: Any) -> None:
    first = await seed_demo(session_factory, settings=Settings(), now=NOW)
    assert first.chat_id == DEMO_CHAT_ID
    assert "messages from 12 members over 120 days" in str(first)

    async def totals() -> tuple[int, ...]:
        async with session_factory() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT (SELECT count(*) FROM messages),"
                        " (SELECT count(*) FROM membership_events),"
                        " (SELECT count(*) FROM message_reactions),"
                        " (SELECT count(*) FROM forum_topics),"
                        " (SELECT coalesce(sum(messages), 0) FROM chat_day_rollup)"
                    )
                )
            ).one()
        return tuple(int(v) for v in row)

    seeded = await totals()
    assert seeded[0] == first.messages
    assert seeded[4] == first.messages
    assert seeded[3] == 2
    await seed_demo(session_factory, settings=Settings(), now=NOW)
    assert await totals() == seeded
    async with session_factory() as session:
        chat_settings = await get_chat_settings(session, DEMO_CHAT_ID)
        last_days = (
            await session.execute(
                text(
                    "SELECT count(DISTINCT local_day) FROM chat_day_rollup WHERE chat_id = :c "
                    "AND local_day > :d"
                ),
                {"c": DEMO_CHAT_ID, "d": (NOW - timedelta(days=30)).date()},
            )
        ).scalar_one()
    assert chat_settings.timezone == "Europe/Berlin"
    assert last_days >= 29
    # A day later: the new day's messages are added, nothing is counted twice.
    later = await seed_demo(session_factory, settings=Settings(), now=NOW + timedelta(days=1))
    after = await totals()
    assert after[0] == seeded[0] + (later.messages - first.messages) + _dropped(NOW)
    assert after[4] == after[0]


def _dropped(now: datetime) -> int:
    """Messages of the day that slid out of the 120-day window (kept in the database)."""
    before, _, _ = build_demo_events(seed=7, now=now)
    after, _, _ = build_demo_events(seed=7, now=now + timedelta(days=1))
    keys = {(e.chat_id, e.msg_id) for e in after if isinstance(e, MessageEvent)}
    return sum(
        1 for e in before if isinstance(e, MessageEvent) and (e.chat_id, e.msg_id) not in keys
    )


def test_demo_prints_only_an_admin_token_it_generated(
    database_url: str, monkeypatch: Any, capsys: Any
) -> None:
    """An operator's own ADMIN_API_TOKEN never reaches the terminal; a generated one does."""
    import argparse

    from tgstats import cli

    served: list[dict[str, str]] = []
    monkeypatch.setattr(cli, "_run_granian", lambda host, port, workers, env: served.append(env))
    monkeypatch.setenv("DATABASE_URL", database_url)
    secret = "operator-chosen-secret-" + "7" * 20
    monkeypatch.setenv("ADMIN_API_TOKEN", secret)
    assert cli.cmd_demo(argparse.Namespace(port=18080)) == 0
    shown = capsys.readouterr().out
    assert secret not in shown and "Sign in with your ADMIN_API_TOKEN" in shown
    assert served[-1]["ADMIN_API_TOKEN"] == secret

    monkeypatch.delenv("ADMIN_API_TOKEN")
    assert cli.cmd_demo(argparse.Namespace(port=18080)) == 0
    shown = capsys.readouterr().out
    generated = served[-1]["ADMIN_API_TOKEN"]
    assert len(generated) >= 24 and f"Sign in with the admin token: {generated}" in shown
