"""Telegram's own member count of each chat (``chat_member_counts``).

The bot sees only the joins and leaves that happen while it runs, so the
members it knows of (``memberships``) can be far fewer than a chat has. The
Telegram plugin asks Telegram for the participant count (``channels.
getFullChannel`` / ``messages.getFullChat``) and records it here: one row per
chat and UTC day, the day's latest count, so "members now" is the newest row
and growth over a period the difference between two days' counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["MemberCount", "latest_member_counts", "member_count_change", "record_member_count"]


class MemberCount(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    count: int
    counted_at: datetime


async def record_member_count(
    session: AsyncSession, chat_id: int, count: int, *, now: datetime | None = None
) -> None:
    """Telegram says the chat has ``count`` members now. Caller commits."""
    now = now or datetime.now(UTC)
    await session.execute(
        text(
            "INSERT INTO chat_member_counts (chat_id, day, count, counted_at)"
            " VALUES (:c, :day, :n, :at) ON CONFLICT (chat_id, day) DO UPDATE"
            " SET count = EXCLUDED.count, counted_at = EXCLUDED.counted_at"
            " WHERE chat_member_counts.counted_at <= EXCLUDED.counted_at"
        ),
        {"c": chat_id, "day": now.astimezone(UTC).date(), "n": count, "at": now},
    )


async def latest_member_counts(
    session: AsyncSession, chat_ids: list[int]
) -> dict[int, MemberCount]:
    """Each chat's newest count (chats never counted are absent)."""
    rows = await session.execute(
        text(
            "SELECT DISTINCT ON (chat_id) chat_id, count, counted_at FROM chat_member_counts"
            " WHERE chat_id = ANY(CAST(:ids AS bigint[])) ORDER BY chat_id, day DESC"
        ),
        {"ids": chat_ids},
    )
    return {
        int(chat_id): MemberCount(chat_id=int(chat_id), count=int(count), counted_at=at)
        for chat_id, count, at in rows
    }


async def member_count_change(
    session: AsyncSession, chat_id: int, start: date, end: date
) -> int | None:
    """Telegram's count on the last counted day up to ``end`` minus that on the last
    counted day before ``start`` (or, without one, the first in the period); None
    with fewer than two counts to compare."""
    row = (
        await session.execute(
            text(
                "SELECT"
                " (SELECT count FROM chat_member_counts WHERE chat_id = :c AND day <= :e"
                "  ORDER BY day DESC LIMIT 1) AS last,"
                " coalesce((SELECT count FROM chat_member_counts WHERE chat_id = :c AND day < :s"
                "  ORDER BY day DESC LIMIT 1),"
                " (SELECT count FROM chat_member_counts WHERE chat_id = :c AND day >= :s"
                "  AND day <= :e ORDER BY day LIMIT 1)) AS first,"
                " (SELECT count(*) FROM chat_member_counts WHERE chat_id = :c AND day <= :e) AS n"
            ),
            {"c": chat_id, "s": start, "e": end},
        )
    ).one()
    if row.last is None or row.first is None or int(row.n) < 2:
        return None
    return int(row.last) - int(row.first)
