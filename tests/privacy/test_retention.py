"""The retention job on real PostgreSQL: what it removes, its preview, its lock, removed chats."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tgstats.events import (
    BotMembershipEvent,
    EditEvent,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    TextFeatures,
)
from tgstats.plugin_api import update_chat_settings
from tgstats_mtproto.testing import bot_api_id
from tgstats_privacy.retention import RETENTION_LOCK, RetentionJob

from .conftest import World

OTHER_CHAT = -1000000009999  # no settings row: the defaults (90 / 365 days) apply
AGES = (1, 10, 40, 70, 100)  # days


def _message(chat_id: int, msg_id: int, at: datetime, user_id: int = 11) -> MessageEvent:
    return MessageEvent(
        chat_id=chat_id,
        msg_id=msg_id,
        date=at,
        user_id=user_id,
        text=f"text {msg_id}",
        features=TextFeatures(text_length=7),
    )


async def _seed(world: World, now: datetime) -> None:
    async with world.factory() as session:
        await update_chat_settings(
            session, world.chat_id, store_text=True, text_retention_days=30,
            metadata_retention_days=60,
        )  # fmt: skip
        await session.commit()
    sink = world.app.services.get("events")
    events = []
    for i, age in enumerate(AGES):
        at = now - timedelta(days=age)
        events.append(_message(world.chat_id, 100 + i, at))
        events.append(_message(world.chat_id, 200 + i, at, user_id=12))
        events.append(ReactionEvent(chat_id=world.chat_id, msg_id=100 + i, date=at, user_id=12,
                                    added=("👍",)))  # fmt: skip
        events.append(EditEvent(chat_id=world.chat_id, msg_id=100 + i, user_id=11,
                                edit_date=at + timedelta(hours=1), text="edited"))  # fmt: skip
        events.append(MemberEvent(chat_id=world.chat_id, user_id=20 + i, date=at, action="join"))
    events.append(_message(OTHER_CHAT, 1, now - timedelta(days=400)))
    events.append(_message(OTHER_CHAT, 2, now - timedelta(days=100)))
    await sink.put_many(events)
    await world.app.flush()


def _job(world: World, **kwargs) -> RetentionJob:
    engine = world.app.services.get("database").engine
    return RetentionJob(engine=engine, grace_days=30, **kwargs)


async def test_preview_is_exactly_what_the_run_removes_and_rollups_stay(world: World):
    now = datetime.now(UTC)
    await _seed(world, now)
    rollups = (
        "SELECT chat_id, sum(messages), sum(reactions), sum(joins) FROM chat_day_rollup"
        " GROUP BY 1 ORDER BY 1"
    )
    before = await world.rows(rollups)

    response = await world.app.client.get(
        f"/api/v1/chats/{world.chat_id}/retention/preview", headers=world.app.admin_headers
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["text_retention_days"] == 30 and preview["metadata_retention_days"] == 60
    # Ages 70 and 100 go (two messages each); ages 40 keep the message but lose the text.
    assert preview["remove"] == {
        "messages": 4, "message_edits": 2, "message_reactions": 2, "reaction_counts": 0,
        "service_messages": 0, "membership_events": 2, "message_texts": 2,
    }  # fmt: skip
    other = (
        await world.app.client.get(
            f"/api/v1/chats/{OTHER_CHAT}/retention/preview", headers=world.app.admin_headers
        )
    ).json()
    # Defaults: the 400-day-old message goes; no text was stored there (store_text is off).
    assert other["metadata_retention_days"] == 365
    assert other["remove"]["messages"] == 1 and other["remove"]["message_texts"] == 0

    report = await _job(world, batch_size=3).run()  # small batches: several rounds per kind
    assert not report.skipped
    expected = {k: preview["remove"][k] + other["remove"][k] for k in preview["remove"]}
    assert {k: v for k, v in report.removed.items() if k in expected} == expected

    left = await world.rows(
        "SELECT msg_id, text IS NOT NULL FROM messages WHERE chat_id = :c ORDER BY msg_id",
        c=world.chat_id,
    )
    assert left == [(100, True), (101, True), (102, False), (200, True), (201, True), (202, False)]
    assert await world.rows(rollups) == before  # every count stays
    recorded = await world.scalar("SELECT removed FROM retention_runs")
    assert recorded["messages"] == expected["messages"]
    # Nothing is left to remove.
    again = (
        await world.app.client.get(
            f"/api/v1/chats/{world.chat_id}/retention/preview", headers=world.app.admin_headers
        )
    ).json()
    assert set(again["remove"].values()) == {0}


async def test_preview_needs_access_and_a_known_chat(world: World):
    response = await world.app.client.get(f"/api/v1/chats/{world.chat_id}/retention/preview")
    assert response.status_code == 401
    response = await world.app.client.get(
        "/api/v1/chats/-100123/retention/preview", headers=world.app.admin_headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404


async def test_two_concurrent_runners_one_runs_the_other_skips(world: World):
    now = datetime.now(UTC)
    await _seed(world, now)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        holding.set()
        await release.wait()

    first = asyncio.create_task(_job(world, after_lock=hold).run())
    await holding.wait()
    second = await _job(world).run()  # while the first holds the lock
    assert second.skipped and second.removed == {}
    assert (
        await world.scalar("SELECT count(*) FROM messages WHERE chat_id = :c", c=world.chat_id)
        == 10
    )
    release.set()
    report = await first
    assert not report.skipped and report.removed["messages"] == 5
    assert await world.scalar("SELECT count(*) FROM retention_runs") == 1
    # The lock is free again: a third run proceeds (and finds nothing).
    third = await _job(world).run()
    assert not third.skipped and sum(third.removed.values()) == 0


async def test_a_lock_held_by_another_process_means_skip(world: World):
    engine = world.app.services.get("database").engine
    async with engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": RETENTION_LOCK})
        assert (await _job(world).run()).skipped
        await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RETENTION_LOCK})
    assert not (await _job(world).run()).skipped


async def test_chat_data_goes_after_the_grace_period_unless_the_bot_is_back(world: World):
    now = datetime.now(UTC)
    gone, recent, back = -1000000000701, -1000000000702, -1000000000703
    sink = world.app.services.get("events")
    events = []
    for chat_id in (gone, recent, back):
        events.append(_message(chat_id, 1, now - timedelta(days=2)))
    events.append(BotMembershipEvent(chat_id=gone, date=now - timedelta(days=31), added=False))
    events.append(BotMembershipEvent(chat_id=recent, date=now - timedelta(days=29), added=False))
    events.append(BotMembershipEvent(chat_id=back, date=now - timedelta(days=40), added=False))
    events.append(BotMembershipEvent(chat_id=back, date=now - timedelta(days=3), added=True))
    await sink.put_many(events)
    await world.app.flush()
    preview = (
        await world.app.client.get(
            f"/api/v1/chats/{gone}/retention/preview", headers=world.app.admin_headers
        )
    ).json()
    assert preview["chat_scheduled_for_deletion_at"] is not None

    report = await _job(world).run(now=now)
    assert report.chats_deleted == [gone]
    for table in ("chats", "messages", "chat_day_rollup", "chat_user_day_rollup"):
        key = "id" if table == "chats" else "chat_id"
        counts = dict(await world.rows(f"SELECT {key}, count(*) FROM {table} GROUP BY 1"))
        assert gone not in counts, table
        assert counts.get(recent) and counts.get(back), table


async def test_the_plugin_runs_retention_on_its_schedule_with_metrics_and_a_log_line(
    db, make_settings, caplog
):
    import logging

    from tgstats.plugin_api.testing import running_app

    now = datetime.now(UTC)
    caplog.set_level(logging.INFO, logger="tgstats.privacy")
    # A sixth cron field is seconds: every second, as a periodic job of the queue.
    settings = make_settings(RETENTION_SCHEDULE="* * * * * *", JOBS_WORKER="1")
    async with running_app(settings) as app:
        sink = app.services.get("events")
        await sink.put_many([_message(OTHER_CHAT, 1, now - timedelta(days=400))])
        await sink.flush()
        factory = app.services.get("session_factory")
        for _ in range(300):
            async with factory() as session:
                runs = (
                    await session.execute(text("SELECT count(*) FROM retention_runs"))
                ).scalar_one()
                left = (await session.execute(text("SELECT count(*) FROM messages"))).scalar_one()
            if runs >= 2 and left == 0:
                break
            await asyncio.sleep(0.1)
        assert runs >= 2 and left == 0
        metrics = (await app.client.get("/metrics", headers=app.admin_headers)).text
    assert re.search(r'bot_retention_rows_removed_total\{kind="messages",[^}]*\} 1\.0', metrics)
    assert re.search(r'bot_retention_runs_total\{[^}]*result="done"\} [2-9]', metrics)
    assert any("retention: removed messages=1" in r.getMessage() for r in caplog.records)


async def test_bot_removed_through_telegram_then_grace_period_then_gone(world: World):
    tg = world.bot.raw
    kept = tg.supergroup(4300, "Comes back")
    real_now = tg.now
    await world.say(world.alice, "hello")
    await world.say(world.alice, "hello", chat=kept)
    tg.now = real_now - 31 * 86400  # the bot was banned 31 days ago, from both
    for chat in (world.group, kept):
        await world.bot.feed(
            tg.channel_member(chat, tg.bot, world.admin, old=tg.participant(tg.bot),
                              new=tg.banned(tg.bot, world.admin.id))
        )  # fmt: skip
    tg.now = real_now - 86400  # and added back to one of them yesterday
    await world.bot.feed(
        tg.channel_member(kept, tg.bot, world.admin, old=None, new=tg.participant(tg.bot))
    )
    tg.now = real_now
    await world.app.flush()
    assert (
        await world.scalar("SELECT bot_present FROM chats WHERE id = :c", c=world.chat_id) is False
    )

    report = await _job(world).run()
    assert report.chats_deleted == [world.chat_id]
    assert (
        await world.scalar("SELECT count(*) FROM messages WHERE chat_id = :c", c=world.chat_id) == 0
    )
    assert await world.scalar("SELECT count(*) FROM chats WHERE id = :c", c=world.chat_id) == 0
    assert (
        await world.scalar("SELECT count(*) FROM messages WHERE chat_id = :c", c=bot_api_id(kept))
        == 1
    )


async def test_many_chats_in_small_batches_remove_exactly_what_each_chats_limits_say(
    world: World,
):
    """Forty chats, seven per transaction, three rows per statement: what stays is what each
    chat's own limits keep (worked out below from the seeded messages), the purged-id
    record holds exactly the removed ids, and the pass's duration and backlog are metrics."""
    now = datetime.now(UTC)
    chats = [-1_000_000_300_000 - n for n in range(40)]
    limits: dict[int, tuple[int, int]] = {}  # chat -> (text days, metadata days)
    async with world.factory() as session:
        for n, chat_id in enumerate(chats):
            if n % 3 == 0:
                continue  # no settings row: the defaults, text never stored
            text_days, meta_days = 10 + n, 30 + 2 * n
            await update_chat_settings(
                session, chat_id, store_text=True, text_retention_days=text_days,
                metadata_retention_days=meta_days,
            )  # fmt: skip
            limits[chat_id] = (text_days, meta_days)
        await session.commit()
    ages = {chat_id: [1 + (n * 7 + k * 13) % 400 for k in range(n % 5 + 1)] for n, chat_id in
            enumerate(chats)}  # fmt: skip
    events = [
        _message(chat_id, msg_id, now - timedelta(days=age, hours=1))
        for chat_id, chat_ages in ages.items()
        for msg_id, age in enumerate(sorted(chat_ages, reverse=True), start=1)
    ]
    await world.app.services.get("events").put_many(events)
    await world.app.flush()

    kept: dict[int, set[int]] = {}
    texts: dict[int, set[int]] = {}
    removed = cleared = 0
    for chat_id, chat_ages in ages.items():
        text_days, meta_days = limits.get(chat_id, (90, 365))
        for msg_id, age in enumerate(sorted(chat_ages, reverse=True), start=1):
            if age >= meta_days:
                removed += 1
                continue
            kept.setdefault(chat_id, set()).add(msg_id)
            if chat_id in limits:
                if age >= text_days:
                    cleared += 1
                else:
                    texts.setdefault(chat_id, set()).add(msg_id)
    assert removed and cleared  # the seed exercises both

    job = _job(world, batch_size=3, chats_per_batch=7, metrics=world.app.services.get("metrics"))
    report = await job.run(now=now)
    assert report.removed["messages"] == removed
    assert report.removed["message_texts"] == cleared
    left: dict[int, set[int]] = {}
    with_text: dict[int, set[int]] = {}
    for chat_id, msg_id, has_text in await world.rows(
        "SELECT chat_id, msg_id, text IS NOT NULL FROM messages WHERE chat_id = ANY(:c)",
        c=chats,
    ):
        left.setdefault(chat_id, set()).add(msg_id)
        if has_text:
            with_text.setdefault(chat_id, set()).add(msg_id)
    assert left == kept
    assert with_text == texts
    purged: dict[int, set[int]] = {}
    last_high: dict[int, int] = {}
    for chat_id, low, high in await world.rows(
        "SELECT chat_id, low, high FROM purged_message_ranges WHERE chat_id = ANY(:c)"
        " ORDER BY chat_id, low",
        c=chats,
    ):
        # Runs never overlap nor touch: rows removed three at a time were merged.
        assert low > last_high.get(chat_id, low - 2) + 1, (chat_id, low)
        last_high[chat_id] = high
        purged.setdefault(chat_id, set()).update(range(low, high + 1))
    for chat_id, chat_ages in ages.items():
        gone = set(range(1, len(chat_ages) + 1)) - kept.get(chat_id, set())
        assert purged.get(chat_id, set()) == gone, chat_id

    metrics = (await world.app.client.get("/metrics", headers=world.app.admin_headers)).text
    assert re.search(r'bot_pass_duration_seconds_count\{[^}]*pass="retention"[^}]*\} 1\.0', metrics)
    assert re.search(r'bot_pass_backlog\{[^}]*pass="retention"[^}]*\} 0\.0', metrics)
    # A second run finds nothing left to do.
    again = await job.run(now=now)
    assert sum(again.removed.values()) == 0
