"""The coverage ledger (``chat_coverage``) from runs, heartbeats, gaps and imports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tgstats.coverage import (
    capture_heartbeat,
    chat_coverage,
    record_import_span,
    record_lost_updates,
    record_repair_progress,
    start_capture_run,
)
from tgstats.events import ChatSnapshot, MessageEvent
from tgstats.features import extract

SUPER = -1001000000001  # Telegram no longer had a stretch: repaired by id
BASIC = -5002  # the common sequence's stretch lost: missing until an import spans it
QUIET = -1001000000003  # the downtime was caught up
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)


def kinds(coverage: Any) -> list[tuple[str, datetime, datetime]]:
    return [(s.kind, s.start, s.end) for s in coverage.segments]


async def test_runs_gaps_and_imports_make_the_ledger(
    session_factory: Any, make_pipeline: Callable[..., Any]
) -> None:
    async with make_pipeline() as pipeline:
        await pipeline.sink.put_many([
            ChatSnapshot(chat_id=SUPER, chat_type="supergroup", date=T0, seen_by_bot=True),
            ChatSnapshot(chat_id=BASIC, chat_type="group", date=T0, seen_by_bot=True),
            ChatSnapshot(chat_id=QUIET, chat_type="supergroup", date=T0, seen_by_bot=True),
            *(MessageEvent(chat_id=SUPER, msg_id=i, date=T0 + i * timedelta(minutes=5),
                           user_id=1, features=extract("hi")) for i in range(1, 11)),
        ])  # fmt: skip
        await pipeline.sink.flush()
    async with session_factory() as session:
        # The chats were first seen before the first run.
        from sqlalchemy import text

        await session.execute(text("UPDATE chats SET first_seen_at = :t"), {"t": T0 - H})
        run1 = await start_capture_run(session, now=T0)
        for minute in range(0, 61, 30):
            await capture_heartbeat(session, run1, now=T0 + timedelta(minutes=minute))
        await capture_heartbeat(session, run1, stopped=True, now=T0 + H)
        run2 = await start_capture_run(session, now=T0 + 3 * H)
        await capture_heartbeat(session, run2, now=T0 + 3 * H)
        # The restart's catch-up: "too long" for the supergroup and the common sequence.
        gap = await record_lost_updates(
            session, chat_id=SUPER, from_pts=10, to_pts=80, top_msg_id=70,
            now=T0 + 3 * H + timedelta(seconds=5),
        )  # fmt: skip
        await record_lost_updates(
            session, chat_id=None, from_pts=3, to_pts=50, since=T0 + H,
            now=T0 + 3 * H + timedelta(seconds=5),
        )  # fmt: skip
        await capture_heartbeat(session, run2, now=T0 + 4 * H)
        await session.commit()
    now = T0 + 4 * H + timedelta(seconds=10)
    async with session_factory() as session:
        pending = await chat_coverage(session, SUPER, now=now)
    assert kinds(pending) == [
        ("live", T0, T0 + H), ("missing", T0 + H, T0 + 3 * H), ("live", T0 + 3 * H, now),
    ]  # fmt: skip
    assert pending.missing[0].reason == "repair_pending"
    assert (pending.missing[0].from_msg_id, pending.missing[0].to_msg_id) == (11, 70)
    assert pending.complete_since == T0 + 3 * H

    async with session_factory() as session:
        await record_repair_progress(
            session, gap.id, next_msg_id=71, recovered=55, unavailable_ids=range(11, 16)
        )
        await session.commit()
        repaired = await chat_coverage(session, SUPER, now=now)
        basic = await chat_coverage(session, BASIC, now=now)
        quiet = await chat_coverage(session, QUIET, now=now)
    assert kinds(repaired) == [
        ("live", T0, T0 + H), ("repaired", T0 + H, T0 + 3 * H), ("live", T0 + 3 * H, now),
    ]  # fmt: skip
    assert (repaired.segments[1].recovered, repaired.segments[1].unavailable) == (55, 5)
    assert (repaired.missing, repaired.complete_since, repaired.tracked_since) == ([], T0, T0)
    assert kinds(basic) == [
        ("live", T0, T0 + H), ("missing", T0 + H, T0 + 3 * H), ("live", T0 + 3 * H, now),
    ]  # fmt: skip
    assert basic.missing[0].reason == "too_long" and basic.complete_since == T0 + 3 * H
    assert kinds(quiet) == [
        ("live", T0, T0 + H), ("caught_up", T0 + H, T0 + 3 * H), ("live", T0 + 3 * H, now),
    ]  # fmt: skip
    assert quiet.complete_since == T0

    # An export from a day before the bot came up to after the outage fills the hole.
    async with session_factory() as session:
        await record_import_span(
            session, BASIC, started_at=T0 - 24 * H, ended_at=T0 + 5 * H,
            from_msg_id=1, to_msg_id=900, messages=800,
        )  # fmt: skip
        await session.commit()
        filled = await chat_coverage(session, BASIC, now=now)
    assert kinds(filled) == [
        ("imported", T0 - 24 * H, T0), ("live", T0, T0 + H),
        ("imported", T0 + H, T0 + 3 * H), ("live", T0 + 3 * H, now),
    ]  # fmt: skip
    assert (filled.missing, filled.complete_since) == ([], T0 - 24 * H)


async def test_a_bot_removed_and_added_again_leaves_an_absent_stretch(
    session_factory: Any, make_pipeline: Callable[..., Any]
) -> None:
    from sqlalchemy import text

    async with make_pipeline() as pipeline:
        await pipeline.sink.put_many(
            [ChatSnapshot(chat_id=QUIET, chat_type="supergroup", date=T0, seen_by_bot=True)]
        )
        await pipeline.sink.flush()
    async with session_factory() as session:
        await session.execute(text("UPDATE chats SET first_seen_at = :t"), {"t": T0 - H})
        run = await start_capture_run(session, now=T0)
        await capture_heartbeat(session, run, now=T0 + H)
        await session.execute(text("UPDATE chats SET bot_present = false"))
        await capture_heartbeat(session, run, now=T0 + 2 * H)  # the bot is out
        await session.execute(
            text("UPDATE chats SET bot_present = true, bot_status_at = :t"), {"t": T0 + 3 * H}
        )
        await capture_heartbeat(session, run, now=T0 + 4 * H)
        await capture_heartbeat(session, run, stopped=True, now=T0 + 5 * H)
        await session.commit()
        coverage = await chat_coverage(session, QUIET, now=T0 + 6 * H)
        nothing = await chat_coverage(session, -77, now=T0)
    assert kinds(coverage) == [
        ("live", T0, T0 + H), ("bot_absent", T0 + H, T0 + 3 * H), ("live", T0 + 3 * H, T0 + 5 * H),
    ]  # fmt: skip
    assert coverage.complete_since == T0  # the bot being out is no loss of what it counts
    assert (nothing.segments, nothing.complete_since) == ([], None)
