"""Rollups equal counts computed independently from the raw event list.

Three chats: UTC, Europe/Berlin across the 2026-03-29 DST change, and
Asia/Kathmandu (+05:45). Delivered once, twice, and shuffled within a window,
the database must hold exactly the reference counts; a rebuild from raw rows
must give the same rollups back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import text

from tests.pipeline.reference import (
    expected_rollups,
    generate_stream,
    read_rollups,
    shuffle_within,
    utc,
)
from tests.pipeline.weeks import check_weeks
from tgstats.db.chat_settings import update_chat_settings
from tgstats.db.engine import Database
from tgstats.pipeline.recount import rebuild_chat_rollups, recount_chat

UTC_CHAT, BERLIN_CHAT, KATHMANDU_CHAT = -1001000000001, -1001000000002, -1001000000003
ZONES = {UTC_CHAT: "UTC", BERLIN_CHAT: "Europe/Berlin", KATHMANDU_CHAT: "Asia/Kathmandu"}
CHATS = tuple(ZONES)


async def _configure(db: Database) -> None:
    async with db.session_factory() as session:
        for chat, zone in ZONES.items():
            await update_chat_settings(session, chat, timezone=zone, store_text=chat == UTC_CHAT)
        await session.commit()


def _stream() -> list[Any]:
    # 2026-03-28 18:00 UTC .. 2026-03-30 06:00 UTC: Berlin moves to CEST at 01:00 UTC on the 29th.
    return generate_stream(CHATS, start=utc(2026, 3, 28, 18), hours=36, messages=1500)


async def _count(db: Database, query: str) -> Any:
    async with db.engine.connect() as conn:
        return (await conn.execute(text(query))).scalar_one()


async def test_rollups_equal_reference_across_dst_and_odd_offsets(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    await _configure(db)
    events = _stream()
    async with make_pipeline(batch_size=97) as pipeline:
        await pipeline.sink.put_many(events)
        await pipeline.sink.flush()
    expected = expected_rollups(events, ZONES).normalised()
    actual = await read_rollups(db.engine)
    for table in expected:
        assert actual[table] == expected[table], table
    # The stream runs into Monday 2026-03-30: the week before is sealed, and its week rows
    # are the sum of its days although later batches still added to those days.
    seals = await check_weeks(db.engine)
    assert set(seals.values()) == {date(2026, 3, 30)}
    assert await _count(db, "SELECT count(*) FROM chat_user_week_rollup") > 0
    # The DST chat really has both offsets in play: hours 0..23 on the change day, minus one.
    berlin_hours = {k[2] for k in actual["chat_hour"] if k[0] == BERLIN_CHAT}
    assert 2 not in {h for (c, d, h) in actual["chat_hour"] if c == BERLIN_CHAT
                     and str(d) == "2026-03-29"}  # fmt: skip
    assert len(berlin_hours) > 12
    # store_text only where enabled.
    assert await _count(db, f"SELECT count(*) FROM messages WHERE text IS NOT NULL "
                            f"AND chat_id <> {UTC_CHAT}") == 0  # fmt: skip
    assert await _count(db, f"SELECT count(*) FROM messages WHERE text IS NOT NULL "
                            f"AND chat_id = {UTC_CHAT}") > 0  # fmt: skip


async def test_duplicate_and_shuffled_delivery_counts_once(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    await _configure(db)
    events = _stream()
    async with make_pipeline(batch_size=64) as pipeline:
        await pipeline.sink.put_many(events)
        await pipeline.sink.flush()
        once = await read_rollups(db.engine)
        # The whole stream again, then again shuffled within windows of 16.
        await pipeline.sink.put_many(events)
        await pipeline.sink.put_many(shuffle_within(events, 16))
        await pipeline.sink.flush()
    assert await read_rollups(db.engine) == once
    assert once == expected_rollups(events, ZONES).normalised()
    assert await check_weeks(db.engine)
    messages = sum(1 for e in events if type(e).__name__ == "MessageEvent")
    assert await _count(db, "SELECT count(*) FROM messages") == messages


async def test_shuffled_first_delivery_matches_reference(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    await _configure(db)
    events = _stream()
    shuffled = shuffle_within(events, 16, seed=11)
    async with make_pipeline(batch_size=50) as pipeline:
        await pipeline.sink.put_many(shuffled + events)
        await pipeline.sink.flush()
    assert await read_rollups(db.engine) == expected_rollups(shuffled, ZONES).normalised()
    assert await check_weeks(db.engine)


async def test_rebuild_equals_incremental(db: Database, make_pipeline: Callable[..., Any]) -> None:
    await _configure(db)
    events = _stream()
    async with make_pipeline(batch_size=200) as pipeline:
        await pipeline.sink.put_many(events)
        await pipeline.sink.flush()
    incremental = await read_rollups(db.engine)
    async with db.session_factory() as session:
        for chat in CHATS:
            await rebuild_chat_rollups(session, chat)
        await session.commit()
    assert await read_rollups(db.engine) == incremental
    assert await check_weeks(db.engine)


async def test_rebuild_after_timezone_change_moves_days(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    await _configure(db)
    events = _stream()
    async with make_pipeline(batch_size=200) as pipeline:
        await pipeline.sink.put_many(events)
        await pipeline.sink.flush()
    async with db.session_factory() as session:
        await update_chat_settings(session, UTC_CHAT, timezone="Asia/Kathmandu")
        await session.commit()
    assert await recount_chat(db.session_factory, UTC_CHAT) == "done"
    zones = {**ZONES, UTC_CHAT: "Asia/Kathmandu"}
    expected = expected_rollups(events, zones).normalised()
    actual = await read_rollups(db.engine)
    # Words are never stored, so they stay on the day they were counted: compare the rest.
    for table in expected:
        if table == "terms":
            strip = {k: v for k, v in expected[table].items() if k[2] != "word" or k[0] != UTC_CHAT}
            got = {k: v for k, v in actual[table].items() if k[2] != "word" or k[0] != UTC_CHAT}
            assert got == strip
        else:
            assert actual[table] == expected[table], table
    assert await check_weeks(db.engine)


async def test_recount_builds_beside_live_batches(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    """A time zone recount builds the new zone's numbers without the chat's lock: live
    batches for the chat (new messages, and edits, reactions and deletions of older
    ones) commit meanwhile, and the numbers swapped in count them in the new zone too."""
    await _configure(db)
    events = _stream()
    cut = len(events) * 3 // 4
    async with make_pipeline(batch_size=50) as pipeline:
        await pipeline.sink.put_many(events[:cut])
        await pipeline.sink.flush()
        async with db.session_factory() as session:
            await update_chat_settings(session, UTC_CHAT, timezone="Asia/Kathmandu")
            await session.commit()
        building = asyncio.Event()
        task = asyncio.create_task(
            recount_chat(
                db.session_factory, UTC_CHAT, chunk=5, on_progress=lambda d, t: building.set()
            )
        )
        await building.wait()
        await pipeline.sink.put_many(events[cut:])
        await pipeline.sink.flush()
        assert not task.done()  # the live batches did not wait for the recount
        assert await task == "done"
    zones = {**ZONES, UTC_CHAT: "Asia/Kathmandu"}
    expected = expected_rollups(events, zones).normalised()
    actual = await read_rollups(db.engine)
    for table in expected:
        if table == "terms":  # words stay on the day (and zone) they were counted in
            strip = {k: v for k, v in expected[table].items() if k[2] != "word" or k[0] != UTC_CHAT}
            got = {k: v for k, v in actual[table].items() if k[2] != "word" or k[0] != UTC_CHAT}
            assert got == strip
        else:
            assert actual[table] == expected[table], table
    assert await check_weeks(db.engine)
