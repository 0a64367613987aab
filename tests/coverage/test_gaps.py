"""Lost stretches and their repair bookkeeping (``tgstats.coverage``), on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tgstats.coverage import (
    chat_gaps,
    get_gap,
    missing_message_ids,
    record_lost_updates,
    record_repair_progress,
    repairable_gaps,
    request_repair,
)
from tgstats.events import ChatSnapshot, MessageEvent
from tgstats.features import extract

CHAT = -1001234567890
T0 = datetime(2026, 5, 10, 12, tzinfo=UTC)


def msg(msg_id: int) -> MessageEvent:
    return MessageEvent(
        chat_id=CHAT, msg_id=msg_id, date=T0 + timedelta(minutes=msg_id), user_id=1,
        features=extract("hi"),
    )  # fmt: skip


async def stored(make_pipeline: Callable[..., Any], ids: list[int]) -> None:
    async with make_pipeline() as pipeline:
        await pipeline.sink.put_many(
            [ChatSnapshot(chat_id=CHAT, chat_type="supergroup", date=T0), *map(msg, ids)]
        )
        await pipeline.sink.flush()


async def test_a_supergroup_loss_spans_the_ids_after_the_last_stored(
    session_factory: Any, make_pipeline: Callable[..., Any]
) -> None:
    await stored(make_pipeline, [1, 2, 3, 4, 10, 50])  # 50: a live message after the loss
    async with session_factory() as session:
        gap = await record_lost_updates(session, chat_id=CHAT, from_pts=5, to_pts=90, top_msg_id=40)
        common = await record_lost_updates(session, chat_id=None, from_pts=7, to_pts=9)
        await session.commit()
    assert (gap.from_msg_id, gap.to_msg_id, gap.next_msg_id, gap.state) == (11, 40, 11, "open")
    assert gap.started_at == T0 + timedelta(minutes=10)  # the last message before the hole
    assert (common.chat_id, common.sequence, common.state) == (None, "common", "unrepairable")
    async with session_factory() as session:
        assert [g.id for g in await repairable_gaps(session)] == [gap.id]
        assert [g.id for g in await chat_gaps(session, CHAT, basic_group=False)] == [gap.id]
        assert [g.id for g in await chat_gaps(session, -5, basic_group=True)] == [common.id]


async def test_nothing_missing_is_repaired_at_once(
    session_factory: Any, make_pipeline: Callable[..., Any]
) -> None:
    await stored(make_pipeline, [1, 2, 3])
    async with session_factory() as session:
        gap = await record_lost_updates(session, chat_id=CHAT, from_pts=1, to_pts=4, top_msg_id=3)
        await session.commit()
    assert gap.state == "repaired" and gap.repaired_at is not None
    async with session_factory() as session:
        assert await repairable_gaps(session) == []


async def test_missing_ids_skip_stored_purged_and_unavailable_ones(
    session_factory: Any, make_pipeline: Callable[..., Any]
) -> None:
    await stored(make_pipeline, [1, 3, 8])
    async with session_factory() as session:
        await session.execute(
            text("INSERT INTO purged_message_ranges VALUES (:c, 4, 5)"), {"c": CHAT}
        )
        gap = await request_repair(session, CHAT)
        await session.commit()
    assert gap is not None and (gap.from_msg_id, gap.to_msg_id) == (1, 8)
    async with session_factory() as session:
        ids, following = await missing_message_ids(session, CHAT, 1, 8, limit=100)
        assert (ids, following) == ([2, 6, 7], 9)
        ids, following = await missing_message_ids(session, CHAT, 1, 8, limit=2)
        assert (ids, following) == ([2, 6], 7)
        # 6 came back, 2 and 7 did not: the chunk up to 7 is done, 8 is left
        moved = await record_repair_progress(
            session, gap.id, next_msg_id=8, recovered=1, unavailable_ids=[2, 7]
        )
        await session.commit()
    assert moved is not None and (moved.state, moved.remaining) == ("repairing", 1)
    async with session_factory() as session:
        assert (await missing_message_ids(session, CHAT, 1, 8))[0] == [6]  # not stored yet
        done = await record_repair_progress(session, gap.id, next_msg_id=9, recovered=0)
        await session.commit()
    assert done is not None and (done.state, done.recovered, done.unavailable) == (
        "repaired", 1, 2,
    )  # fmt: skip
    async with session_factory() as session:
        again = await get_gap(session, gap.id)
        runs = (await session.execute(
            text("SELECT low, high FROM unavailable_message_ranges WHERE chat_id = :c"
                 " ORDER BY low"), {"c": CHAT},
        )).all()  # fmt: skip
    assert again == done
    assert [tuple(r) for r in runs] == [(2, 2), (7, 7)]


async def test_a_failed_chunk_says_why(
    session_factory: Any, make_pipeline: Callable[..., Any]
) -> None:
    await stored(make_pipeline, [1, 9])
    async with session_factory() as session:
        gap = await request_repair(session, CHAT)
        assert gap is not None
        failed = await record_repair_progress(
            session, gap.id, next_msg_id=10, recovered=0, error="Telegram refused: CHANNEL_PRIVATE"
        )
        await session.commit()
    assert failed is not None and failed.state == "failed"
    assert "CHANNEL_PRIVATE" in (failed.error or "")
    async with session_factory() as session:
        assert await repairable_gaps(session) == []
        assert await request_repair(session, -42) is None  # nothing stored: no range
