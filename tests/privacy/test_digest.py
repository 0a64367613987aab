"""The weekly digest: due at the chat's local weekday and hour, sent once per period."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image
from pyrogram import raw

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
