"""The weekly digest: due at the chat's local weekday and hour, sent once per period."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image
from pyrogram import raw
from sqlalchemy import text

from tests.support.recounts import finish_recount
from tgstats.events import MessageEvent, TextFeatures
from tgstats.plugin_api import update_chat_settings
from tgstats_mtproto.testing import bot_api_id
from tgstats_privacy.digest import DigestJob, parse_digest_args

from .conftest import World

ZONE = "Asia/Kathmandu"  # +05:45: the local day and hour are not UTC's


def _job(world: World) -> DigestJob:
    job = world.app.plugin("privacy").digest
    assert isinstance(job, DigestJob)
    return job


async def _subscribe(world: World, chat_id: int, local_now: datetime) -> None:
    async with world.factory() as session:
        await update_chat_settings(session, chat_id, timezone=ZONE)
        await session.commit()
    await finish_recount(world.factory, chat_id)  # the chat has messages: counted again
    await world.say(world.admin, f"/digest on {local_now:%A} {local_now.hour}")
    assert "is on" in world.bot.api.sent_texts()[-1]


async def _seed_weeks(world: World, now: datetime) -> None:
    """Last week: Alice 6 messages, Bob 3; the week before: 4 in all."""
    events = []
    msg = 1
    for days_ago, user, count in ((2, 11, 6), (3, 12, 3), (9, 11, 2), (10, 12, 2)):
        for _ in range(count):
            events.append(MessageEvent(
                chat_id=world.chat_id, msg_id=msg, date=now - timedelta(days=days_ago),
                user_id=user, features=TextFeatures(text_length=3),
            ))  # fmt: skip
            msg += 1
    await world.app.services.get("events").put_many(events)
    await world.app.flush()


def _photos_to(world: World, chat_id: int) -> list[tuple[object, bytes]]:
    return [
        (q, png)
        for q, png in world.bot.api.sent_photos()
        if isinstance(q.peer, raw.types.InputPeerChannel)
        and bot_api_id(world.bot.raw.supergroup(q.peer.channel_id)) == chat_id
    ]


async def test_digest_is_sent_once_per_period_with_top_posters_growth_and_chart(world: World):
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo(ZONE))
    await world.say(world.alice, "hi")  # the bot meets the group (and Alice and Bob) first
    await world.say(world.bob, "hi")
    await _subscribe(world, world.chat_id, local)
    await _seed_weeks(world, now)

    assert await _job(world).run(now=now - timedelta(hours=1)) == []  # not due yet
    [outcome] = await _job(world).run(now=now)
    assert outcome.status == "sent" and outcome.period_end == local.date()
    [(query, png)] = _photos_to(world, world.chat_id)
    caption = query.message
    assert caption.startswith("Weekly digest · Friends & <Co>")  # escaped HTML, shown as text
    assert "Messages: 9 (+125% vs the week before)" in caption
    assert "Active members: 2" in caption
    assert "1. Alice — 6" in caption and "2. Bob — 3" in caption
    with Image.open(io.BytesIO(png)) as image:
        assert image.size[0] >= 800
    assert await world.rows("SELECT status, message_id FROM digest_deliveries") == [
        ("sent", outcome.message_id)
    ]

    # Later the same day, and from two runners at once: nothing more.
    assert await _job(world).run(now=now + timedelta(minutes=30)) == []
    results = await asyncio.gather(
        _job(world).run(now=now + timedelta(minutes=31)),
        _job(world).run(now=now + timedelta(minutes=31)),
    )
    assert results == [[], []]
    assert len(_photos_to(world, world.chat_id)) == 1


async def test_two_runners_on_a_due_period_send_exactly_one(world: World):
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo(ZONE))
    await world.say(world.alice, "hi")
    await _subscribe(world, world.chat_id, local)
    await _seed_weeks(world, now)
    first, second = await asyncio.gather(_job(world).run(now=now), _job(world).run(now=now))
    assert sorted([len(first), len(second)]) == [0, 1]
    assert len(_photos_to(world, world.chat_id)) == 1
    # A second process (its own job, same database) finds the period taken.
    other = DigestJob(
        session_factory=world.factory, services=world.app.services, default_timezone="UTC"
    )
    assert await other.run(now=now) == []
    assert len(_photos_to(world, world.chat_id)) == 1


async def test_a_silent_week_is_recorded_as_skipped_and_nothing_is_posted(world: World):
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo(ZONE))
    await _subscribe(world, world.chat_id, local)  # only today's /digest command: last week silent
    before = len(world.bot.api.sent_photos())
    [outcome] = await _job(world).run(now=now)
    assert outcome.status == "skipped"
    assert len(world.bot.api.sent_photos()) == before
    assert await world.scalar("SELECT status FROM digest_deliveries") == "skipped"
    assert await _job(world).run(now=now) == []


async def test_refused_delivery_is_failed_not_retried(world: World):
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo(ZONE))
    await world.say(world.alice, "hi")
    await _subscribe(world, world.chat_id, local)
    await _seed_weeks(world, now)
    from pyrogram.errors import ChatWriteForbidden

    world.bot.api.fail[raw.functions.messages.SendMedia] = ChatWriteForbidden()
    [outcome] = await _job(world).run(now=now)
    assert outcome.status == "failed"
    assert await _job(world).run(now=now) == []


def test_digest_arguments():
    assert parse_digest_args("") == (0, 9)
    assert parse_digest_args("fri 18") == (4, 18)
    assert parse_digest_args("Sunday 07:00") == (6, 7)
    for bad in ("someday", "25", "mo", "fri -1"):
        try:
            parse_digest_args(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_a_digest_that_could_not_be_prepared_is_tried_again(world: World, monkeypatch):
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo(ZONE))
    await world.say(world.alice, "hi")
    await _subscribe(world, world.chat_id, local)
    await _seed_weeks(world, now)
    job = _job(world)

    async def broken(*args, **kwargs):
        raise ConnectionError("replica went away")

    monkeypatch.setattr(job, "_prepare", broken)
    [outcome] = await job.run(now=now)
    assert outcome.status == "retry"
    assert await world.scalar("SELECT count(*) FROM digest_deliveries") == 0
    monkeypatch.undo()
    [outcome] = await job.run(now=now)
    assert outcome.status == "sent"
    assert len(_photos_to(world, world.chat_id)) == 1


async def test_a_digest_lock_held_elsewhere_means_this_replica_waits_its_turn(world: World):
    from sqlalchemy import text

    from tgstats_privacy.digest import DIGEST_LOCK

    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo(ZONE))
    await world.say(world.alice, "hi")
    await _subscribe(world, world.chat_id, local)
    await _seed_weeks(world, now)
    engine = world.app.services.get("database").engine
    async with engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": DIGEST_LOCK})
        assert await _job(world).run(now=now) == []
        await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DIGEST_LOCK})
    [outcome] = await _job(world).run(now=now)
    assert outcome.status == "sent"


async def test_many_subscriptions_are_read_in_batches_and_capped_per_run(world: World):
    """Forty subscribed chats in several zones; which are due is worked out here with
    zoneinfo. A run reads the due ones four at a time and handles at most ten; the rest
    stay due (the backlog metric says how many) and the next runs take them."""
    import re

    now = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)  # a Monday
    zones = ["UTC", "Asia/Kathmandu", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"]
    chats = [-1_000_000_400_000 - n for n in range(40)]
    due: dict[int, object] = {}
    async with world.factory() as session:
        for n, chat_id in enumerate(chats):
            zone = zones[n % len(zones)]
            local = now.astimezone(ZoneInfo(zone))
            # Mostly today's local weekday, at various hours, some later than now.
            weekday = (local.weekday() + (n % 4 == 3)) % 7
            hour = (n * 5) % 12
            await session.execute(
                text(
                    "INSERT INTO chats (id, type, title, bot_present)"
                    " VALUES (:id, 'supergroup', 'Quiet', :bot)"
                ),
                {"id": chat_id, "bot": n % 7 != 0},
            )
            await session.execute(
                text(
                    "INSERT INTO digest_subscriptions (chat_id, weekday, hour)"
                    " VALUES (:id, :weekday, :hour)"
                ),
                {"id": chat_id, "weekday": weekday, "hour": hour},
            )
            await update_chat_settings(session, chat_id, timezone=zone)
            if n % 7 != 0 and local.weekday() == weekday and local.hour >= hour:
                due[chat_id] = local.date()
        await session.commit()
    assert 10 < len(due) < len(chats)
    job = DigestJob(
        session_factory=world.factory,
        services=world.app.services,
        metrics=world.app.services.get("metrics"),
        due_batch=4,
        max_per_run=10,
    )
    seen: dict[int, object] = {}
    runs = 0
    while True:
        outcomes = await job.run(now=now)
        runs += 1
        assert len(outcomes) <= 10
        for outcome in outcomes:
            assert outcome.chat_id not in seen
            assert outcome.status == "skipped"  # silent chats: claimed, nothing posted
            seen[outcome.chat_id] = outcome.period_end
        metrics = (await world.app.client.get("/metrics", headers=world.app.admin_headers)).text
        backlog = re.search(r'bot_pass_backlog\{[^}]*pass="digest"[^}]*\} ([0-9.]+)', metrics)
        assert backlog is not None
        assert float(backlog.group(1)) == len(due) - len(seen)
        if not outcomes:
            break
    assert seen == due
    assert runs == -(-len(due) // 10) + 1  # the last run finds nothing left
    rows = await world.rows(
        "SELECT chat_id, period_end FROM digest_deliveries WHERE chat_id = ANY(:c)", c=chats
    )
    assert dict(rows) == due
