"""Retention cohorts: newcomers grouped by the week (month) they first joined.

Newcomers come from ``membership_events`` (one row per join); whether they
posted on a day comes from ``chat_user_day_rollup`` (one row per member and day
with activity, read by its primary key for the newcomers only), so a cohort
table costs O(newcomers' active days), never a pass over messages. With a
``tz`` override the days come from the newcomers' raw messages instead.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.stats.common import fetch_all, pct
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import Cohort, CohortCell, CohortStats
from tgstats.stats.subqueries import source_params

__all__ = ["COHORT_OFFSETS", "cohorts"]

#: The offsets shown per granularity: weeks (months) after the join week (month).
COHORT_OFFSETS = {"week": (1, 2, 4, 8, 12), "month": (1, 2, 3, 6, 12)}


def _bucket(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _shift(bucket: date, offset: int, granularity: str) -> date:
    """The bucket ``offset`` weeks (months) after ``bucket``."""
    if granularity == "week":
        return bucket + timedelta(weeks=offset)
    months = bucket.year * 12 + bucket.month - 1 + offset
    return date(months // 12, months % 12 + 1, 1)


def _bucket_end(bucket: date, granularity: str) -> date:
    return _shift(bucket, 1, granularity) - timedelta(days=1)


async def _newcomers(session: AsyncSession, scope: ChatScope, period: Period) -> dict[int, date]:
    """Members whose first recorded join in the chat falls in the period -> its local day."""
    if scope.uses_raw:
        join_day = "(e.date AT TIME ZONE :tz)::date"
        in_period = f"e.date >= :utc_lo AND e.date < :utc_hi AND {join_day} BETWEEN :start AND :end"
    else:
        join_day = "e.local_day"
        in_period = "e.local_day BETWEEN :start AND :end"
    rows = await fetch_all(
        session,
        f"""
        SELECT e.user_id, min({join_day}) AS day
        FROM membership_events e
        WHERE e.chat_id = :chat_id AND e.action = 'join' AND e.user_id IS NOT NULL
          AND {in_period}
          AND NOT EXISTS (SELECT 1 FROM membership_events p
                          WHERE p.user_id = e.user_id AND p.chat_id = :chat_id
                            AND p.action = 'join' AND p.date < e.date)
        GROUP BY e.user_id
        """,
        source_params(scope, period),
    )
    return {int(row.user_id): row.day for row in rows}


async def _active_days(
    session: AsyncSession, scope: ChatScope, user_ids: list[int], since: date
) -> dict[int, list[date]]:
    """Each member's local days with a message from ``since`` on."""
    if scope.uses_raw:
        sql = """
            SELECT DISTINCT m.user_id, (m.date AT TIME ZONE :tz)::date AS day
            FROM messages m
            WHERE m.chat_id = :chat_id AND m.user_id = ANY(CAST(:ids AS bigint[]))
              AND m.date >= (CAST(:since AS date)::timestamp AT TIME ZONE :tz)
        """
    else:
        sql = """
            SELECT user_id, local_day AS day FROM chat_user_day_rollup
            WHERE chat_id = :chat_id AND user_id = ANY(CAST(:ids AS bigint[]))
              AND local_day >= :since AND messages > 0
        """
    rows = await fetch_all(
        session,
        sql,
        {"chat_id": scope.chat_id, "ids": user_ids, "since": since, "tz": scope.timezone},
    )
    days: dict[int, list[date]] = defaultdict(list)
    for row in rows:
        days[int(row.user_id)].append(row.day)
    return days


async def cohorts(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    *,
    granularity: str = "week",
    today: date | None = None,
) -> CohortStats:
    """Newcomers per join week (month) of the period and how many posted in later ones.

    A newcomer is a member whose first recorded join in the chat is in the
    period; their cohort is the week (ISO, Monday first) or calendar month of
    that join's local day. ``posted`` counts those with a message on or after
    their join day (up to now); the cell for offset ``k`` counts those with a
    message in the week (month) ``k`` after the cohort's own, and is None until
    that week (month) has ended.
    """
    if granularity not in COHORT_OFFSETS:
        raise ValueError(f"granularity: expected one of {', '.join(COHORT_OFFSETS)}")
    today = today or scope.today()
    offsets = COHORT_OFFSETS[granularity]
    joined = await _newcomers(session, scope, period)
    active = (
        await _active_days(session, scope, sorted(joined), min(joined.values())) if joined else {}
    )
    members: dict[date, list[int]] = defaultdict(list)
    for user_id, day in joined.items():
        members[_bucket(day, granularity)].append(user_id)
    out: list[Cohort] = []
    bucket = _bucket(period.start, granularity)
    while bucket <= period.end:
        ids = members.get(bucket, [])
        posted = 0
        counts = dict.fromkeys(offsets, 0)
        for user_id in ids:
            join_day = joined[user_id]
            days = [d for d in active.get(user_id, ()) if d >= join_day]
            posted += bool(days)
            buckets = {_bucket(d, granularity) for d in days}
            for k in offsets:
                counts[k] += _shift(bucket, k, granularity) in buckets
        cells = []
        for k in offsets:
            over = _bucket_end(_shift(bucket, k, granularity), granularity) <= today
            cells.append(
                CohortCell(
                    offset=k,
                    active=counts[k] if over else None,
                    active_pct=pct(counts[k], len(ids)) if over else None,
                )
            )
        out.append(
            Cohort(
                start=max(bucket, period.start),
                end=min(_bucket_end(bucket, granularity), period.end),
                newcomers=len(ids),
                posted=posted,
                posted_pct=pct(posted, len(ids)),
                cells=cells,
            )
        )
        bucket = _shift(bucket, 1, granularity)
    return CohortStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        granularity=granularity,
        offsets=list(offsets),
        today=today,
        cohorts=out,
    )
