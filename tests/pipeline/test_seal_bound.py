"""A batch seals weeks for a bounded number of chats; the others are sealed by their own
next batches, and the week rollups equal their days throughout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.pipeline.weeks import check_weeks, monday
from tgstats.db.engine import Database
from tgstats.events import MessageEvent
from tgstats.pipeline.rollups import SEALS_PER_BATCH

CHATS = [-1_002_500_000_000 - n for n in range(SEALS_PER_BATCH * 2 + 5)]


def _messages(day: datetime, first_id: int) -> list[MessageEvent]:
    return [
        MessageEvent(chat_id=chat_id, msg_id=first_id + k, date=day + timedelta(minutes=k),
                     user_id=100 + k)
        for chat_id in CHATS
        for k in range(2)
    ]  # fmt: skip


async def _sealed(db: Database) -> dict[int, Any]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, rollup_sealed_before FROM chats WHERE id = ANY(:c)"), {"c": CHATS}
        )
        return {row[0]: row[1] for row in rows}


async def test_one_batch_seals_at_most_the_bound_and_later_batches_the_rest(
    db: Database, make_pipeline: Callable[..., Any]
) -> None:
    now = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    this_week = monday(now.date())
    two_weeks_ago = now - timedelta(days=14)
    async with make_pipeline(batch_size=10_000, flush_interval_ms=200) as pipeline:
        await pipeline.sink.put_many(_messages(two_weeks_ago, 1))
        await pipeline.sink.flush()
        before = await _sealed(db)
        # One batch brings this week to every chat: every chat could seal now.
        await pipeline.sink.put_many(_messages(now, 10))
        await pipeline.sink.flush()
        after = await _sealed(db)
        moved = [c for c in CHATS if after[c] != before[c] and after[c] == this_week]
        assert len(moved) == SEALS_PER_BATCH
        assert await check_weeks(db.engine)
        # Each further batch seals the next chats, until none is left behind.
        rounds = 0
        while any(seal != this_week for seal in (await _sealed(db)).values()):
            rounds += 1
            assert rounds <= 3
            await pipeline.sink.put_many(_messages(now + timedelta(minutes=2), 100 * (rounds + 1)))
            await pipeline.sink.flush()
        assert rounds == 2
        seals = await check_weeks(db.engine)
        assert all(seals[c] == this_week for c in CHATS)
