"""Membership stats (joins, leaves, newcomer retention, inactive members) and forum topics."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.member_counts import latest_member_counts, member_count_change
from tgstats.stats.common import display_name, fetch_all, fetch_one, pct
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import (
    InactiveMember,
    MemberDay,
    MemberStats,
    Retention,
    TopicRow,
    TopicStats,
)
from tgstats.stats.subqueries import (
    ACTIVE_MEMBER_SQL,
    day_source,
    source_params,
    topic_rows,
    user_rows,
)

__all__ = ["members", "topics"]

MAX_INACTIVE_DAYS = 3660
MAX_LIMIT = 500


def _local_midnight_utc(day: date, scope: ChatScope) -> datetime:
    """The UTC instant a local day starts in the scope's zone (DST-aware)."""
    return datetime.combine(day, time(), tzinfo=scope.zone()).astimezone(UTC)


async def _retention(
    session: AsyncSession, scope: ChatScope, period: Period, today: date
) -> Retention:
    """Newcomers (first join in the period) and whether they posted N days after joining.

    A newcomer is retained at N days when they have a message on or after the
    local day ``join day + N``. Only those who joined at least N days before
    today are eligible; the others cannot have answered yet.
    """
    join_day = "(e.date AT TIME ZONE :tz)::date" if scope.uses_raw else "e.local_day"
    row = await fetch_one(
        session,
        f"""
        WITH newcomers AS (
            SELECT e.user_id, min({join_day}) AS day
            FROM membership_events e
            WHERE e.chat_id = :chat_id AND e.action = 'join' AND e.user_id IS NOT NULL
              AND e.date >= :utc_lo AND e.date < :utc_hi
              AND {join_day} BETWEEN :start AND :end
            GROUP BY e.user_id
        ), marked AS (
            SELECT n.day,
                   EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = :chat_id
                           AND m.user_id = n.user_id
                           AND m.date >= ((n.day + 7)::timestamp AT TIME ZONE :tz)) AS kept_7,
                   EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = :chat_id
                           AND m.user_id = n.user_id
                           AND m.date >= ((n.day + 30)::timestamp AT TIME ZONE :tz)) AS kept_30
            FROM newcomers n
        )
        SELECT count(*) AS newcomers,
               count(*) FILTER (WHERE day + 7 <= :today) AS eligible_7,
               count(*) FILTER (WHERE day + 7 <= :today AND kept_7) AS retained_7,
               count(*) FILTER (WHERE day + 30 <= :today) AS eligible_30,
               count(*) FILTER (WHERE day + 30 <= :today AND kept_30) AS retained_30
        FROM marked
        """,
        source_params(scope, period) | {"today": today},
    )
    return Retention(
        newcomers=int(row.newcomers),
        eligible_7d=int(row.eligible_7),
        retained_7d=int(row.retained_7),
        retained_7d_pct=pct(int(row.retained_7), int(row.eligible_7)),
        eligible_30d=int(row.eligible_30),
        retained_30d=int(row.retained_30),
        retained_30d_pct=pct(int(row.retained_30), int(row.eligible_30)),
    )


async def members(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    *,
    inactive_days: int = 30,
    limit: int = 50,
    today: date | None = None,
) -> MemberStats:
    """Joins, leaves and net per day; newcomer retention; members silent for ``inactive_days``.

    A current member is inactive when they have not posted on any of the last
    ``inactive_days`` local days (today included) and joined before that window
    (or their join time is unknown). Longest-standing members come first.
    """
    if not 1 <= inactive_days <= MAX_INACTIVE_DAYS:
        raise ValueError(f"inactive_days: expected 1 to {MAX_INACTIVE_DAYS}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: expected 1 to {MAX_LIMIT}")
    today = today or scope.today()
    params = source_params(scope, period)
    day_rows = await fetch_all(
        session, f"SELECT local_day, joins, leaves FROM ({day_source(scope)}) d", params
    )
    by_day = {row.local_day: (int(row.joins), int(row.leaves)) for row in day_rows}
    days = []
    for day in period.iter_days():
        joins, leaves = by_day.get(day, (0, 0))
        days.append(MemberDay(day=day, joins=joins, leaves=leaves, net=joins - leaves))
    window = Period(start=today - timedelta(days=inactive_days - 1), end=today)
    cutoff = _local_midnight_utc(window.start, scope)
    # Who posted in the window comes from one pass over its user-days; the page's last
    # message times are then looked up for its members only (index probes).
    recent_sql, recent_params = user_rows(scope, window, sums=True)
    # One statement: the silent members counted and the page of them (a top-N sort, not
    # a window over all of them), and the current members counted. One row at least;
    # ``user_id`` is NULL when no member is silent.
    found = await fetch_all(
        session,
        f"""
        WITH recent AS (
            SELECT user_id FROM ({recent_sql}) u GROUP BY user_id HAVING sum(messages) > 0
        ), silent AS MATERIALIZED (
            SELECT mb.user_id, mb.status, mb.joined_at, u.username, u.first_name, u.last_name
            FROM memberships mb
            LEFT JOIN users u ON u.id = mb.user_id
            WHERE mb.chat_id = :chat_id AND mb.{ACTIVE_MEMBER_SQL}
              AND NOT EXISTS (SELECT 1 FROM recent r WHERE r.user_id = mb.user_id)
              AND (mb.joined_at IS NULL OR mb.joined_at < :cutoff)
              AND coalesce(u.is_bot, false) = false
        )
        SELECT page.*, counts.total, counts.members_now
        FROM (
            SELECT (SELECT count(*) FROM silent) AS total,
                   (SELECT count(*) FROM memberships
                    WHERE chat_id = :chat_id AND {ACTIVE_MEMBER_SQL}) AS members_now
        ) AS counts
        LEFT JOIN LATERAL (
            SELECT * FROM silent ORDER BY joined_at ASC NULLS FIRST, user_id LIMIT :limit
        ) AS page ON true
        ORDER BY page.joined_at ASC NULLS FIRST, page.user_id
        """,
        recent_params | {"cutoff": cutoff, "limit": limit},
    )
    inactive_rows = [row for row in found if row.user_id is not None]
    members_now = int(found[0].members_now)
    last_seen = await fetch_all(
        session,
        """
        SELECT x.uid, (SELECT max(date) FROM messages m
                       WHERE m.chat_id = :chat_id AND m.user_id = x.uid) AS last_at
        FROM unnest(CAST(:ids AS bigint[])) AS x(uid)
        """,
        {"chat_id": scope.chat_id, "ids": [row.user_id for row in inactive_rows]},
    )
    last_at = {row.uid: row.last_at for row in last_seen}
    zone = scope.zone()
    inactive = []
    for row in inactive_rows:
        last = last_at.get(row.user_id)
        inactive.append(
            InactiveMember(
                user_id=row.user_id,
                username=row.username,
                display_name=display_name(row.user_id, row.first_name, row.last_name, row.username),
                status=row.status,
                joined_at=row.joined_at,
                last_message_at=last,
                days_inactive=(today - last.astimezone(zone).date()).days if last else None,
            )
        )
    joins = sum(d.joins for d in days)
    leaves = sum(d.leaves for d in days)
    official = (await latest_member_counts(session, [scope.chat_id])).get(scope.chat_id)
    return MemberStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        joins=joins,
        leaves=leaves,
        net=joins - leaves,
        members_now=members_now,
        days=days,
        retention=await _retention(session, scope, period, today),
        inactive_days=inactive_days,
        inactive_total=int(found[0].total),
        inactive=inactive,
        telegram_members=official.count if official is not None else None,
        telegram_members_at=official.counted_at if official is not None else None,
        telegram_net=await member_count_change(session, scope.chat_id, period.start, period.end),
    )


async def topics(session: AsyncSession, scope: ChatScope, period: Period) -> TopicStats:
    """Messages and active members per forum topic (topic 0 = outside any topic)."""
    # Hash aggregates (per topic and member, then per topic) instead of count(DISTINCT),
    # which would sort every topic-member-day row.
    topic_sql, params = topic_rows(scope, period)
    rows = await fetch_all(
        session,
        f"""
        WITH per_member AS (
            SELECT topic_id, user_id, sum(messages) AS messages
            FROM ({topic_sql}) t GROUP BY topic_id, user_id
        ), per_topic AS (
            SELECT topic_id, sum(messages)::bigint AS messages,
                   count(*) FILTER (WHERE messages > 0 AND user_id <> 0) AS active_users
            FROM per_member GROUP BY topic_id HAVING sum(messages) > 0
        )
        SELECT p.topic_id, p.messages, p.active_users, ft.title,
               coalesce(ft.closed, false) AS closed
        FROM per_topic p
        LEFT JOIN forum_topics ft ON ft.chat_id = :chat_id AND ft.topic_id = p.topic_id
        ORDER BY p.messages DESC, p.topic_id
        """,
        params,
    )
    total = sum(int(row.messages) for row in rows)
    return TopicStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        is_forum=scope.is_forum,
        topics=[
            TopicRow(
                topic_id=row.topic_id,
                title=row.title if row.topic_id else (row.title or "General"),
                closed=bool(row.closed),
                messages=int(row.messages),
                active_users=int(row.active_users),
                share_pct=pct(int(row.messages), total),
            )
            for row in rows
        ],
    )
