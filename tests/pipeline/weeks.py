"""Week rollups must equal their sealed weeks' day rows, summed here in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# week table -> (day table, key columns besides chat_id and the day/week, counters)
WEEK_TABLES = {
    "chat_user_week_rollup": (
        "chat_user_day_rollup",
        ("user_id",),
        ("messages", "text_length", "media", "urls", "replies_sent", "replies_received",
         "reactions_given", "reactions_received", "edits", "deletions"),
    ),
    "chat_term_week_rollup": ("chat_term_day_rollup", ("kind", "term"), ("count",)),
    "chat_topic_user_week_rollup": (
        "chat_topic_user_day_rollup", ("topic_id", "user_id"), ("messages",),
    ),
    "reply_pair_week_rollup": (
        "reply_pair_day_rollup", ("from_user_id", "to_user_id"), ("replies",),
    ),
}  # fmt: skip


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def check_weeks(engine: AsyncEngine) -> dict[int, date]:
    """Assert every week table equals its day table summed over each chat's sealed weeks
    (and the activity masks match the days with messages); returns the seals."""
    async with engine.connect() as conn:
        seals = {
            row[0]: row[1]
            for row in await conn.execute(
                text(
                    "SELECT id, rollup_sealed_before FROM chats WHERE rollup_sealed_before"
                    " IS NOT NULL AND rollup_sealed_from IS NOT DISTINCT FROM"
                    " migrated_from_chat_id AND migrated_to_chat_id IS NULL"
                )
            )
        }
        for week_table, (day_table, keys, counters) in WEEK_TABLES.items():
            cols = ", ".join((*keys, *counters))
            expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(counters))
            masks: dict[tuple[Any, ...], int] = defaultdict(int)
            for row in await conn.execute(
                text(f"SELECT chat_id, local_day, {cols} FROM {day_table}")
            ):
                chat_id, day = row[0], row[1]
                if chat_id not in seals or day >= seals[chat_id]:
                    continue
                key = (chat_id, monday(day), *row[2 : 2 + len(keys)])
                sums = expected[key]
                for i, value in enumerate(row[2 + len(keys) :]):
                    sums[i] += value
                if week_table == "chat_user_week_rollup" and row[2 + len(keys)] > 0:
                    masks[key] |= 1 << day.weekday()
            mask_col = ", active_mask" if week_table == "chat_user_week_rollup" else ""
            actual: dict[tuple[Any, ...], list[int]] = {}
            for row in await conn.execute(
                text(f"SELECT chat_id, week, {cols}{mask_col} FROM {week_table}")
            ):
                key = tuple(row[: 2 + len(keys)])
                actual[key] = list(row[2 + len(keys) : 2 + len(keys) + len(counters)])
                assert row[0] in seals, f"{week_table}: rows of an unsealed chat {row[0]}"
                assert row[1] < seals[row[0]], f"{week_table}: week {row[1]} not sealed"
                if mask_col:
                    assert row[-1] == masks.get(key, 0), f"{week_table}: mask of {key}"
            assert actual == dict(expected), week_table
    return seals
