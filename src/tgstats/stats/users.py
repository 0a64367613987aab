"""Per-member stats: the leaderboard (with lurkers when asked) and one member's profile."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.features import tokenize_words
from tgstats.stats.common import display_name, fetch_all, fetch_one, pct, ratio
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import DayCount, TermCount, UserLeaderboard, UserProfile, UserRow
from tgstats.stats.subqueries import (
    ACTIVE_MEMBER_SQL,
    day_source,
    hour_source,
    source_params,
    user_day_source,
    user_rows,
)

__all__ = ["USER_SORTS", "UserNotFound", "user_profile", "users"]

#: Leaderboard sort keys -> SQL expression over the ranked rows.
USER_SORTS: dict[str, str] = {
    "messages": "messages",
    "share": "messages",
    "active_days": "active_days",
    "average_length": "average_length",
    "media": "media",
    "replies_sent": "replies_sent",
    "replies_received": "replies_received",
    "reactions_given": "reactions_given",
    "reactions_received": "reactions_received",
    "first_message": "first_message_at",
    "last_message": "last_message_at",
    "name": "lower(display_sort)",
}
MAX_LIMIT = 500
#: How many of a member's stored messages the profile reads for top words.
WORDS_SAMPLE = 5000


class UserNotFound(LookupError):
    def __init__(self, chat_id: int, user_id: int) -> None:
        super().__init__(f"user {user_id} has no record in chat {chat_id}")
        self.chat_id = chat_id
        self.user_id = user_id


def _like_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _message_bounds(
    session: AsyncSession, chat_id: int, user_ids: Sequence[int]
) -> dict[int, tuple[datetime | None, datetime | None]]:
    """First and last message time of each member in the chat, ever (index lookups)."""
    if not user_ids:
        return {}
    rows = await fetch_all(
        session,
        """
        SELECT x.uid,
               (SELECT min(date) FROM messages m WHERE m.chat_id = :chat_id AND m.user_id = x.uid)
                   AS first_at,
               (SELECT max(date) FROM messages m WHERE m.chat_id = :chat_id AND m.user_id = x.uid)
                   AS last_at
        FROM unnest(CAST(:ids AS bigint[])) AS x(uid)
        """,
        {"chat_id": chat_id, "ids": list(user_ids)},
    )
    return {row.uid: (row.first_at, row.last_at) for row in rows}


async def users(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    *,
    sort: str = "messages",
    order: str = "desc",
    search: str | None = None,
    include_lurkers: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> UserLeaderboard:
    """The members who posted in the period (plus current members who did not, when
    ``include_lurkers``), sorted, filtered by name and paged."""
    if sort not in USER_SORTS:
        raise ValueError(f"sort: expected one of {', '.join(USER_SORTS)}")
    if order not in ("asc", "desc"):
        raise ValueError("order: expected asc or desc")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: expected 1 to {MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset: expected 0 or more")
    search = (search or "").strip() or None
    rows_sql, rows_params = user_rows(scope, period, sums=True)
    params = (
        source_params(scope, period)
        | rows_params
        | {"limit": limit, "offset": offset, "pattern": _like_pattern(search) if search else None}
    )
    if include_lurkers:
        members_join = (
            "FULL JOIN (SELECT * FROM memberships"
            f" WHERE chat_id = :chat_id AND {ACTIVE_MEMBER_SQL}) mb ON mb.user_id = a.user_id"
        )
        keep = "coalesce(a.messages, 0) > 0 OR mb.user_id IS NOT NULL"
    else:
        members_join = (
            "LEFT JOIN memberships mb ON mb.chat_id = :chat_id AND mb.user_id = a.user_id"
        )
        keep = "a.messages > 0"
    # Without lurkers only posters are listed: drop reaction-only members before the joins.
    posters_only = "" if include_lurkers else "HAVING sum(messages) > 0"
    bounds_needed = sort in ("first_message", "last_message")
    bounds_sql = (
        """,
               (SELECT min(date) FROM messages m WHERE m.chat_id = :chat_id
                 AND m.user_id = b.user_id) AS first_message_at,
               (SELECT max(date) FROM messages m WHERE m.chat_id = :chat_id
                 AND m.user_id = b.user_id) AS last_message_at"""
        if bounds_needed
        else ""
    )
    direction = "ASC" if order == "asc" else "DESC"
    order_by = f"{USER_SORTS[sort]} {direction} NULLS LAST, user_id"
    if search or sort == "name":
        # Names filter or sort: every row gets its name before the page is cut.
        search_sql = (
            "AND (name_username ILIKE :pattern OR display_sort ILIKE :pattern)" if search else ""
        )
        page = f"""named AS (
            SELECT r.*, coalesce(u.username, ch.username) AS name_username,
                   coalesce(nullif(trim(coalesce(u.first_name, ch.title, '') || ' '
                       || coalesce(u.last_name, '')), ''), u.username, r.user_id::text)
                       AS display_sort
            FROM ranked r LEFT JOIN users u ON u.id = r.user_id
            LEFT JOIN chats ch ON r.user_id < 0 AND ch.id = r.user_id
        ), page AS (
            SELECT n.*, count(*) OVER () AS matching FROM named n
            WHERE true {search_sql}
            ORDER BY {order_by}
            LIMIT :limit OFFSET :offset
        )"""
    else:
        # Otherwise the page is cut first and only its members' names are read.
        page = f"""page AS (
            SELECT r.*, count(*) OVER () AS matching FROM ranked r
            ORDER BY {order_by}
            LIMIT :limit OFFSET :offset
        )"""
    rows = await fetch_all(
        session,
        f"""
        WITH agg AS (
            SELECT user_id, sum(messages)::bigint AS messages,
                   sum(active_days)::bigint AS active_days,
                   sum(text_length)::bigint AS text_length, sum(media)::bigint AS media,
                   sum(replies_sent)::bigint AS replies_sent,
                   sum(replies_received)::bigint AS replies_received,
                   sum(reactions_given)::bigint AS reactions_given,
                   sum(reactions_received)::bigint AS reactions_received
            FROM ({rows_sql}) u GROUP BY user_id {posters_only}
        ), base AS (
            SELECT coalesce(a.user_id, mb.user_id) AS user_id,
                   coalesce(a.messages, 0) AS messages, coalesce(a.active_days, 0) AS active_days,
                   coalesce(a.text_length, 0) AS text_length, coalesce(a.media, 0) AS media,
                   coalesce(a.replies_sent, 0) AS replies_sent,
                   coalesce(a.replies_received, 0) AS replies_received,
                   coalesce(a.reactions_given, 0) AS reactions_given,
                   coalesce(a.reactions_received, 0) AS reactions_received,
                   CASE WHEN coalesce(a.messages, 0) > 0
                        THEN round(a.text_length::numeric / a.messages, 2) ELSE 0 END
                       AS average_length,
                   mb.status, mb.joined_at, mb.left_at
            FROM agg a {members_join}
            WHERE {keep}
        ), ranked AS (
            SELECT b.*, rank() OVER (ORDER BY b.messages DESC) AS msg_rank,
                   sum(b.messages) OVER () AS total_messages
                   {bounds_sql}
            FROM base b
        ), {page}
        SELECT p.*, coalesce(u.username, ch.username) AS username,
               coalesce(u.first_name, ch.title) AS first_name, u.last_name
        FROM page p LEFT JOIN users u ON u.id = p.user_id
        LEFT JOIN chats ch ON p.user_id < 0 AND ch.id = p.user_id
        ORDER BY {order_by}
        """,
        params,
    )
    total_messages = (
        int(rows[0].total_messages) if rows else await _period_messages(session, scope, period)
    )
    matching = int(rows[0].matching) if rows else 0
    if bounds_needed:
        bounds = {row.user_id: (row.first_message_at, row.last_message_at) for row in rows}
    else:
        bounds = await _message_bounds(session, scope.chat_id, [row.user_id for row in rows])
    out = []
    for row in rows:
        first_at, last_at = bounds.get(row.user_id, (None, None))
        messages = int(row.messages)
        out.append(
            UserRow(
                user_id=row.user_id,
                username=row.username,
                display_name=display_name(row.user_id, row.first_name, row.last_name, row.username),
                rank=int(row.msg_rank) if messages > 0 else None,
                messages=messages,
                share_pct=pct(messages, total_messages),
                active_days=int(row.active_days),
                average_length=float(row.average_length),
                media=int(row.media),
                replies_sent=int(row.replies_sent),
                replies_received=int(row.replies_received),
                reactions_given=int(row.reactions_given),
                reactions_received=int(row.reactions_received),
                first_message_at=first_at,
                last_message_at=last_at,
                status=row.status,
                joined_at=row.joined_at,
                left_at=row.left_at,
                is_lurker=messages == 0,
            )
        )
    return UserLeaderboard(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        sort=sort,
        order=order,
        search=search,
        include_lurkers=include_lurkers,
        total_messages=total_messages,
        total=matching,
        limit=limit,
        offset=offset,
        rows=out,
    )


async def _period_messages(session: AsyncSession, scope: ChatScope, period: Period) -> int:
    row = await fetch_one(
        session,
        f"SELECT coalesce(sum(messages), 0) AS n FROM ({day_source(scope)}) d",
        source_params(scope, period),
    )
    return int(row.n)


def longest_streak(days: Sequence[date]) -> tuple[int, date | None, date | None]:
    """The longest run of consecutive dates in ``days`` (sorted or not), first run on ties."""
    best: tuple[int, date | None, date | None] = (0, None, None)
    run_start: date | None = None
    previous: date | None = None
    length = 0
    for day in sorted(set(days)):
        if previous is not None and day == previous + timedelta(days=1):
            length += 1
        else:
            run_start, length = day, 1
        previous = day
        if length > best[0]:
            best = (length, run_start, day)
    return best


async def user_profile(
    session: AsyncSession, scope: ChatScope, period: Period, user_id: int, *, words: int = 20
) -> UserProfile:
    """One member's stats in the chat over the period; ``UserNotFound`` when the chat has no
    record of them at all (no message ever, no membership)."""
    params = source_params(scope, period) | {"user_id": user_id}
    who = (
        await fetch_all(
            session,
            """
            SELECT u.username, u.first_name, u.last_name, mb.status, mb.joined_at, mb.left_at,
                   (SELECT min(date) FROM messages m WHERE m.chat_id = :chat_id
                     AND m.user_id = :user_id) AS first_at,
                   (SELECT max(date) FROM messages m WHERE m.chat_id = :chat_id
                     AND m.user_id = :user_id) AS last_at
            FROM (SELECT 1) one
            LEFT JOIN users u ON u.id = :user_id
            LEFT JOIN memberships mb ON mb.chat_id = :chat_id AND mb.user_id = :user_id
            """,
            params,
        )
    )[0]
    if who.status is None and who.first_at is None:
        raise UserNotFound(scope.chat_id, user_id)
    day_rows = await fetch_all(
        session,
        f"SELECT * FROM ({user_day_source(scope)}) u WHERE user_id = :user_id ORDER BY local_day",
        params,
    )
    rows_sql, rows_params = user_rows(scope, period, sums=True)
    ranks = await fetch_one(
        session,
        f"""
        WITH per_user AS (
            SELECT user_id, sum(messages) AS messages FROM ({rows_sql}) u
            GROUP BY user_id HAVING sum(messages) > 0
        )
        SELECT coalesce(sum(messages), 0) AS total,
               coalesce(sum(messages) FILTER (WHERE user_id = :user_id), 0) AS mine,
               count(*) FILTER (WHERE messages > coalesce(
                   (SELECT messages FROM per_user WHERE user_id = :user_id), 0)) AS ahead
        FROM per_user
        """,
        params | rows_params,
    )
    hour_rows = await fetch_all(
        session,
        f"SELECT extract(isodow FROM local_day)::int AS weekday, local_hour AS hour, "
        f"sum(messages)::bigint AS messages FROM ({hour_source(scope, per_user=True)}) h "
        f"GROUP BY 1, 2",
        params,
    )
    totals: dict[str, int] = Counter()
    daily: dict[date, int] = {}
    for row in day_rows:
        for name in (
            "messages",
            "text_length",
            "media",
            "urls",
            "replies_sent",
            "replies_received",
            "reactions_given",
            "reactions_received",
        ):
            totals[name] += int(getattr(row, name))
        if row.messages > 0:
            daily[row.local_day] = int(row.messages)
    hours = [0] * 24
    weekdays = [0] * 7
    for row in hour_rows:
        hours[row.hour] += int(row.messages)
        weekdays[row.weekday - 1] += int(row.messages)
    streak, streak_start, streak_end = longest_streak(list(daily))
    top_words, available, note = await _top_words(session, scope, params, words)
    messages = totals["messages"]
    return UserProfile(
        chat_id=scope.chat_id,
        user_id=user_id,
        period=period,
        timezone=scope.timezone,
        username=who.username,
        display_name=display_name(user_id, who.first_name, who.last_name, who.username),
        status=who.status,
        joined_at=who.joined_at,
        left_at=who.left_at,
        first_message_at=who.first_at,
        last_message_at=who.last_at,
        messages=messages,
        share_pct=pct(messages, int(ranks.total)),
        rank=int(ranks.ahead) + 1 if messages > 0 else None,
        active_days=len(daily),
        longest_streak_days=streak,
        longest_streak_start=streak_start,
        longest_streak_end=streak_end,
        average_length=ratio(totals["text_length"], messages),
        media=totals["media"],
        links=totals["urls"],
        replies_sent=totals["replies_sent"],
        replies_received=totals["replies_received"],
        reactions_given=totals["reactions_given"],
        reactions_received=totals["reactions_received"],
        hours=hours,
        weekdays=weekdays,
        daily=[DayCount(day=day, count=daily.get(day, 0)) for day in period.iter_days()],
        top_words=top_words,
        top_words_available=available,
        top_words_note=note,
    )


async def _top_words(
    session: AsyncSession, scope: ChatScope, params: dict[str, Any], limit: int
) -> tuple[list[TermCount], bool, str | None]:
    """Per-member words exist only where the chat stores text: word counts kept at ingest
    are per chat and day, never per member."""
    if not scope.store_text:
        return (
            [],
            False,
            "per-member words need stored text; this chat keeps only chat-wide word counts",
        )
    rows = await fetch_all(
        session,
        """
        SELECT text FROM messages
        WHERE chat_id = :chat_id AND user_id = :user_id AND text IS NOT NULL
          AND date >= :utc_lo AND date < :utc_hi
          AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end
        ORDER BY date DESC LIMIT :sample
        """,
        params | {"sample": WORDS_SAMPLE},
    )
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(tokenize_words(row.text))
    total = sum(counts.values())
    terms = [
        TermCount(term=word, count=count, share_pct=pct(count, total))
        for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    ]
    note = None if terms else "no stored text from this member in the period"
    return terms, True, note
