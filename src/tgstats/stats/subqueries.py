"""The SQL sub-queries the stats functions read their counts from (per-day sources and
per-period row sets).

Each ``*_source`` returns the SQL of a subquery with the same columns whichever
way it is answered:

- **rollups** (the normal case): the rollup tables, counted in the chat's time
  zone at ingest, filtered by ``local_day``; O(days) rows.
- **raw rows** (a request's ``tz`` differs from the chat's zone): the raw
  ``messages`` / ``message_reactions`` / ``membership_events`` rows with their
  UTC timestamps converted by ``AT TIME ZONE`` into the requested zone. Slower
  (O(messages) in the period) but the local days and hours are right for that
  zone. The UTC prefilter is widened by a day on each side so that it stays
  index-friendly and never cuts a local day short.

The stats functions wrap a source as ``FROM (<source>) AS d``; PostgreSQL
inlines the subquery, so the rollup path keeps its index scans. All sources
share one parameter dict (``source_params``).

The ``*_rows`` sources are for sums over a period (not per day): whole ISO
weeks of the period that the writer has sealed come from the week rollups (one
row per member and week instead of up to seven), the days at the period's edges
and any unsealed week from the day rollups. The seal is read in the same
statement, so a concurrent seal never shows a week twice or not at all. They
take their own bounds (``key`` prefixes the parameter names, so one statement
can read two periods) and return ``(sql, params)``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tgstats.stats.period import ChatScope, Period

__all__ = [
    "ACTIVE_MEMBER_SQL",
    "MEMBER_REPLIES_SQL",
    "day_source",
    "hour_source",
    "media_source",
    "reply_pair_rows",
    "reply_pair_source",
    "reply_pair_top",
    "source_params",
    "term_rows",
    "topic_rows",
    "topic_source",
    "user_day_source",
    "user_rows",
    "whole_weeks",
]

#: Membership statuses that mean "no longer in the chat".
GONE_STATUSES = ("left", "banned", "kicked")
ACTIVE_MEMBER_SQL = "status NOT IN ('left', 'banned', 'kicked')"
#: A member event counted as a leave (as ``tgstats.pipeline.rollups.membership_effect`` does):
#: a ban of someone already gone is no leave.
LEAVE_EVENT_SQL = (
    "action IN ('leave', 'kick', 'ban')"
    " AND (old_status IS NULL OR old_status NOT IN ('left', 'kicked', 'banned'))"
)

# Raw rows of the chat in the period, with their local day/hour in the requested zone.
_RAW_MESSAGES = """
    SELECT m.*, coalesce(m.user_id, m.sender_chat_id) AS poster,
           (m.date AT TIME ZONE :tz)::date AS lday,
           extract(hour FROM m.date AT TIME ZONE :tz)::int AS lhour
    FROM messages m
    WHERE m.chat_id = :chat_id AND m.date >= :utc_lo AND m.date < :utc_hi
"""
_RAW_FILTER = "lday BETWEEN :start AND :end"


def source_params(scope: ChatScope, period: Period) -> dict[str, Any]:
    """Bind parameters for every source: chat, local bounds, zone and a widened UTC window."""
    lo = datetime.combine(period.start - timedelta(days=1), time(), tzinfo=UTC)
    hi = datetime.combine(period.end + timedelta(days=2), time(), tzinfo=UTC)
    return {
        "chat_id": scope.chat_id,
        "start": period.start,
        "end": period.end,
        "tz": scope.timezone,
        "utc_lo": lo,
        "utc_hi": hi,
    }


def day_source(scope: ChatScope) -> str:
    """Per local day: messages, active_users, text_length, media, replies, forwards, urls,
    edits, deletions, reactions, joins, leaves."""
    if not scope.uses_raw:
        return """
            SELECT local_day, messages, active_users, text_length, media, replies, forwards,
                   urls, edits, deletions, reactions, joins, leaves
            FROM chat_day_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end
        """
    return f"""
        SELECT local_day, sum(messages)::bigint AS messages,
               sum(active_users)::bigint AS active_users, sum(text_length)::bigint AS text_length,
               sum(media)::bigint AS media, sum(replies)::bigint AS replies,
               sum(forwards)::bigint AS forwards, sum(urls)::bigint AS urls,
               sum(edits)::bigint AS edits, sum(deletions)::bigint AS deletions,
               sum(reactions)::bigint AS reactions, sum(joins)::bigint AS joins,
               sum(leaves)::bigint AS leaves
        FROM (
            SELECT lday AS local_day, count(*) AS messages,
                   count(DISTINCT poster) AS active_users,
                   sum(text_length) AS text_length,
                   count(*) FILTER (WHERE media_type <> 'text') AS media,
                   count(*) FILTER (WHERE reply_to_msg_id IS NOT NULL) AS replies,
                   count(*) FILTER (WHERE forward_origin IS NOT NULL) AS forwards,
                   sum(url_count) AS urls,
                   0 AS edits, 0 AS deletions, 0 AS reactions, 0 AS joins, 0 AS leaves
            FROM ({_RAW_MESSAGES}) rm WHERE {_RAW_FILTER} GROUP BY lday
            UNION ALL
            SELECT (edit_date AT TIME ZONE :tz)::date, 0, 0, 0, 0, 0, 0, 0, count(*),
                   0, 0, 0, 0
            FROM message_edits
            WHERE chat_id = :chat_id AND edit_date >= :utc_lo AND edit_date < :utc_hi
            GROUP BY 1
            UNION ALL
            SELECT (deleted_at AT TIME ZONE :tz)::date, 0, 0, 0, 0, 0, 0, 0, 0, count(*),
                   0, 0, 0
            FROM messages
            WHERE chat_id = :chat_id AND is_deleted AND deleted_at >= :utc_lo
              AND deleted_at < :utc_hi
            GROUP BY 1
            UNION ALL
            SELECT (added_at AT TIME ZONE :tz)::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0
            FROM message_reactions
            WHERE chat_id = :chat_id AND removed_at IS NULL
              AND added_at >= :utc_lo AND added_at < :utc_hi
            GROUP BY 1
            UNION ALL
            SELECT (date AT TIME ZONE :tz)::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                   count(*) FILTER (WHERE action = 'join'),
                   count(*) FILTER (WHERE {LEAVE_EVENT_SQL})
            FROM membership_events
            WHERE chat_id = :chat_id AND date >= :utc_lo AND date < :utc_hi
            GROUP BY 1
        ) parts
        WHERE local_day BETWEEN :start AND :end
        GROUP BY local_day
    """


def user_day_source(scope: ChatScope) -> str:
    """Per user and local day: messages, text_length, media, urls, replies_sent,
    replies_received, reactions_given, reactions_received."""
    if not scope.uses_raw:
        return """
            SELECT user_id, local_day, messages, text_length, media, urls, replies_sent,
                   replies_received, reactions_given, reactions_received
            FROM chat_user_day_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end
        """
    return f"""
        SELECT user_id, local_day, sum(messages)::bigint AS messages,
               sum(text_length)::bigint AS text_length, sum(media)::bigint AS media,
               sum(urls)::bigint AS urls, sum(replies_sent)::bigint AS replies_sent,
               sum(replies_received)::bigint AS replies_received,
               sum(reactions_given)::bigint AS reactions_given,
               sum(reactions_received)::bigint AS reactions_received
        FROM (
            SELECT poster AS user_id, lday AS local_day, count(*) AS messages,
                   sum(text_length) AS text_length,
                   count(*) FILTER (WHERE media_type <> 'text') AS media,
                   sum(url_count) AS urls,
                   count(*) FILTER (WHERE reply_to_msg_id IS NOT NULL) AS replies_sent,
                   0 AS replies_received, 0 AS reactions_given, 0 AS reactions_received
            FROM ({_RAW_MESSAGES}) rm
            WHERE {_RAW_FILTER} AND poster IS NOT NULL
            GROUP BY poster, lday
            UNION ALL
            SELECT reply_to_user_id, lday, 0, 0, 0, 0, 0, count(*), 0, 0
            FROM ({_RAW_MESSAGES}) rm
            WHERE {_RAW_FILTER} AND poster IS NOT NULL AND reply_to_msg_id IS NOT NULL
              AND reply_to_user_id IS NOT NULL
            GROUP BY reply_to_user_id, lday
            UNION ALL
            SELECT coalesce(r.user_id, r.actor_chat_id), (r.added_at AT TIME ZONE :tz)::date,
                   0, 0, 0, 0, 0, 0, count(*), 0
            FROM message_reactions r
            WHERE r.chat_id = :chat_id AND r.removed_at IS NULL
              AND coalesce(r.user_id, r.actor_chat_id) IS NOT NULL
              AND r.added_at >= :utc_lo AND r.added_at < :utc_hi
            GROUP BY 1, 2
            UNION ALL
            SELECT coalesce(m.user_id, m.sender_chat_id), (r.added_at AT TIME ZONE :tz)::date,
                   0, 0, 0, 0, 0, 0, 0, count(*)
            FROM message_reactions r
            JOIN messages m ON m.chat_id = r.chat_id AND m.msg_id = r.msg_id
            WHERE r.chat_id = :chat_id AND r.removed_at IS NULL
              AND coalesce(m.user_id, m.sender_chat_id) IS NOT NULL
              AND r.added_at >= :utc_lo AND r.added_at < :utc_hi
            GROUP BY 1, 2
        ) parts
        WHERE local_day BETWEEN :start AND :end
        GROUP BY user_id, local_day
    """


def hour_source(scope: ChatScope, *, per_user: bool = False) -> str:
    """Per local day and hour: messages (of one user, ``:user_id``, when ``per_user``)."""
    if not scope.uses_raw:
        if per_user:
            return """
                SELECT local_day, local_hour, messages FROM chat_user_hour_rollup
                WHERE chat_id = :chat_id AND user_id = :user_id
                  AND local_day BETWEEN :start AND :end
            """
        return """
            SELECT local_day, local_hour, messages FROM chat_hour_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end
        """
    user_filter = "AND poster = :user_id" if per_user else ""
    return f"""
        SELECT lday AS local_day, lhour AS local_hour, count(*)::bigint AS messages
        FROM ({_RAW_MESSAGES}) rm
        WHERE {_RAW_FILTER} {user_filter}
        GROUP BY lday, lhour
    """


def media_source(scope: ChatScope) -> str:
    """Per local day and media type: messages."""
    if not scope.uses_raw:
        return """
            SELECT local_day, media_type, messages FROM chat_media_day_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end
        """
    return f"""
        SELECT lday AS local_day, media_type, count(*)::bigint AS messages
        FROM ({_RAW_MESSAGES}) rm WHERE {_RAW_FILTER}
        GROUP BY lday, media_type
    """


def topic_source(scope: ChatScope) -> str:
    """Per forum topic (0 = none), user and local day: messages."""
    if not scope.uses_raw:
        return """
            SELECT topic_id, user_id, local_day, messages FROM chat_topic_user_day_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end
        """
    return f"""
        SELECT coalesce(topic_id, 0) AS topic_id, poster AS user_id,
               lday AS local_day, count(*)::bigint AS messages
        FROM ({_RAW_MESSAGES}) rm WHERE {_RAW_FILTER} AND poster IS NOT NULL
        GROUP BY 1, 2, 3
    """


def reply_pair_source(scope: ChatScope) -> str:
    """Per local day, replier and replied-to member: replies."""
    if not scope.uses_raw:
        return """
            SELECT local_day, from_user_id, to_user_id, replies FROM reply_pair_day_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end
        """
    return f"""
        SELECT lday AS local_day, poster AS from_user_id, reply_to_user_id AS to_user_id,
               count(*)::bigint AS replies
        FROM ({_RAW_MESSAGES}) rm
        WHERE {_RAW_FILTER} AND poster IS NOT NULL AND reply_to_msg_id IS NOT NULL
          AND reply_to_user_id IS NOT NULL
        GROUP BY 1, 2, 3
    """


# --------------------------------------------------------------------------- week rows

#: A chat's seal: week rollups hold every ISO week starting before it (None: none).
_SEAL_SQL = (
    "(SELECT CASE WHEN c.rollup_sealed_from IS NOT DISTINCT FROM c.migrated_from_chat_id"
    " AND c.migrated_to_chat_id IS NULL THEN c.rollup_sealed_before END"
    " FROM chats c WHERE c.id = :chat_id)"
)


def whole_weeks(period: Period) -> tuple[date, date] | None:
    """``[first Monday, end of the last whole week)`` inside the period, or None."""
    first = period.start + timedelta(days=(7 - period.start.weekday()) % 7)
    after = period.end + timedelta(days=1)
    last = after - timedelta(days=after.weekday())
    return (first, last) if first < last else None


def _day_list(first: str, last: str) -> str:
    """A condition naming each day of ``[first, last]`` (SQL dates): one index descent per
    day, where a range would read every key between (e.g. every kind of term)."""
    return (
        "local_day = ANY(ARRAY(SELECT CAST(d AS date) FROM generate_series("
        f"{first}, {last}, interval '1 day') AS d))"
    )


#: Edge days a sealed week stands in for: its week row minus its other days (see
#: ``_split``) when at most this many of its days lie outside the period.
MAX_SUBTRACTED_DAYS = 2


def _split(
    scope: ChatScope,
    period: Period,
    key: str,
    day_sql: str,
    week_sql: str,
    *,
    day_list: bool = False,
    minus_sql: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """``day_sql`` (a ``{days}`` condition on ``local_day``) over the period, with its
    sealed whole weeks taken from ``week_sql`` (a ``{weeks}`` condition on ``week``).
    ``day_list``: the days are named one by one (``_day_list``) instead of as ranges.

    ``minus_sql`` (``day_sql`` with every counter negated): a sealed week cut by
    the period's edge, with at most ``MAX_SUBTRACTED_DAYS`` of its days outside,
    comes as its week row plus those days negated (e.g. Tuesday to Sunday = the
    week minus Monday: 2 rows per member instead of 6). The rows are then only
    good for sums: a consumer groups them and filters on the sums (``HAVING``).
    """
    params: dict[str, Any] = {
        "chat_id": scope.chat_id, f"{key}start": period.start, f"{key}end": period.end,
    }  # fmt: skip
    start, end = f"CAST(:{key}start AS date)", f"CAST(:{key}end AS date)"

    def days(first: str, last: str) -> str:
        """Days ``first`` to ``last``, both included."""
        if day_list:
            return _day_list(first, last)
        return f"local_day >= {first} AND local_day <= {last}"

    weeks = whole_weeks(period)
    if weeks is None:
        return day_sql.format(days=days(start, end)), params
    params[f"{key}wk_lo"], params[f"{key}wk_hi"] = weeks
    lo, hi = f"CAST(:{key}wk_lo AS date)", f"CAST(:{key}wk_hi AS date)"
    # Weeks [lo, sealed) come from week rows; days before lo and from sealed on, from days.
    sealed = f"greatest({lo}, least({hi}, coalesce({_SEAL_SQL}, {lo})))"

    def edge_week(minus: str, week: str, own_days: str, days_outside: str) -> list[str]:
        """An edge's days, or, once its week is sealed, the week's row minus the week's
        days outside the period."""
        is_sealed = f"coalesce({_SEAL_SQL} > {week}, false)"
        return [
            day_sql.format(days=f"{own_days} AND NOT {is_sealed}"),
            week_sql.format(weeks=f"week = {week} AND {is_sealed}"),
            minus.format(days=f"{days_outside} AND {is_sealed}"),
        ]

    parts = []
    before = (weeks[0] - period.start).days  # edge days before the first whole week
    outside = (7 - before) % 7  # days of that week before the period
    if minus_sql is not None and before and outside <= MAX_SUBTRACTED_DAYS:
        # The week of the first edge: its row minus its days before the period, when sealed.
        first_week = f"CAST(:{key}wk_first AS date)"
        params[f"{key}wk_first"] = weeks[0] - timedelta(days=7)
        parts += edge_week(
            minus_sql, first_week, days(start, f"{lo} - 1"), days(first_week, f"{start} - 1")
        )
    else:
        parts.append(day_sql.format(days=days(start, f"{lo} - 1")))
    after = (period.end - weeks[1]).days + 1  # edge days after the last whole week
    if minus_sql is not None and after > 0 and 7 - after <= MAX_SUBTRACTED_DAYS:
        # Days from the seal on; the last edge's week, when sealed, as its row minus its
        # days after the period (then the seal is past it and no day is read twice).
        last_week = f"CAST(:{key}wk_last AS date)"
        params[f"{key}wk_last"] = weeks[1]
        parts += edge_week(
            minus_sql, last_week, days(sealed, end), days(f"{end} + 1", f"{last_week} + 6")
        )
    else:
        parts.append(day_sql.format(days=days(sealed, end)))
    parts.append(week_sql.format(weeks=f"week >= {lo} AND week < {sealed}"))
    return " UNION ALL ".join(parts), params


_USER_SUMS = (
    "messages, text_length, media, urls, replies_sent, replies_received, reactions_given,"
    " reactions_received"
)
#: The counters as integers (a row's counts fit; a sum of integers is a bigint, summed
#: without the numeric arithmetic a sum of bigints takes, ~20% faster per row). An
#: impossible row over 2**31 would fail the query, never count wrong.
_USER_INTS = ", ".join(f"CAST({name} AS int) AS {name}" for name in _USER_SUMS.split(", "))


def user_rows(
    scope: ChatScope, period: Period, key: str = "", *, sums: bool = False
) -> tuple[str, dict[str, Any]]:
    """Per user and day or sealed week of the period: the ``user_day_source`` counters,
    ``local_day`` (a week's Monday), ``active_days`` (days with messages) and
    ``active_mask`` (bit d: posted on ``local_day`` + d days).

    ``sums``: the rows are only summed per user (filters on the sums, in ``HAVING``),
    so an edge week may come as its row minus days (``_split``); ``active_mask`` is
    then 0 on those rows."""
    if scope.uses_raw:
        sql = (
            "SELECT u.*, (u.messages > 0)::int AS active_days, (u.messages > 0)::int AS"
            f" active_mask FROM ({user_day_source(scope)}) u"
        )
        return sql, source_params(scope, period)
    negated = ", ".join(f"-CAST({name} AS int)" for name in _USER_SUMS.split(", "))
    return _split(
        scope,
        period,
        key,
        f"SELECT user_id, local_day, {_USER_INTS}, (messages > 0)::int AS active_days,"
        " (messages > 0)::int AS active_mask FROM chat_user_day_rollup"
        " WHERE chat_id = :chat_id AND {days}",
        f"SELECT user_id, week, {_USER_INTS}, bit_count(active_mask::int::bit(7))::int,"
        " active_mask::int FROM chat_user_week_rollup WHERE chat_id = :chat_id AND {weeks}",
        minus_sql=(
            f"SELECT user_id, local_day, {negated}, -(messages > 0)::int, 0"
            " FROM chat_user_day_rollup WHERE chat_id = :chat_id AND {days}"
        )
        if sums
        else None,
    )


def topic_rows(scope: ChatScope, period: Period) -> tuple[str, dict[str, Any]]:
    """Per forum topic (0 = none) and user, per day or sealed week: messages (only good
    for sums per topic and user: see ``_split``'s ``minus_sql``)."""
    if scope.uses_raw:
        return topic_source(scope), source_params(scope, period)
    return _split(
        scope,
        period,
        "",
        "SELECT topic_id, user_id, CAST(messages AS int) AS messages"
        " FROM chat_topic_user_day_rollup WHERE chat_id = :chat_id AND {days}",
        "SELECT topic_id, user_id, CAST(messages AS int) FROM chat_topic_user_week_rollup"
        " WHERE chat_id = :chat_id AND {weeks}",
        minus_sql="SELECT topic_id, user_id, -CAST(messages AS int) FROM chat_topic_user_day_rollup"
        " WHERE chat_id = :chat_id AND {days}",
    )


def reply_pair_rows(scope: ChatScope, period: Period) -> tuple[str, dict[str, Any]]:
    """Per replier and replied-to member, per day or sealed week: replies."""
    if scope.uses_raw:
        return reply_pair_source(scope), source_params(scope, period)
    return _split(
        scope,
        period,
        "",
        "SELECT from_user_id, to_user_id, CAST(replies AS int) AS replies"
        " FROM reply_pair_day_rollup WHERE chat_id = :chat_id AND {days}",
        "SELECT from_user_id, to_user_id, CAST(replies AS int) FROM reply_pair_week_rollup"
        " WHERE chat_id = :chat_id AND {weeks}",
    )


#: The period's replies between members (``chat_day_rollup.member_replies``): the
#: interactions total, one row per day. A chat-level count like the summary's.
MEMBER_REPLIES_SQL = (
    "SELECT coalesce(sum(member_replies), 0)::bigint FROM chat_day_rollup"
    " WHERE chat_id = :chat_id AND local_day >= :start AND local_day <= :end"
)
#: How many of each block's largest pair rows ``reply_pair_top`` reads for a period of
#: up to four blocks (a month); see ``pair_head_depth`` for longer ones.
PAIR_HEAD_DEPTH = 200
#: The most weeks ``reply_pair_top`` takes as blocks (a quarter: each adds to the bound).
MAX_PAIR_BLOCKS = 13


def pair_head_depth(blocks: int) -> int:
    """Rows read from each block's head for a period of ``blocks`` blocks. The bound is
    the sum of the heads' smallest rows, so it grows with the blocks while the top pairs'
    sums grow more slowly: longer periods read deeper heads to stay decidable (on the
    bench seed: 2 months decided at 400 rows a week, 3 at 800, 30 days at 200)."""
    if blocks <= 4:
        return PAIR_HEAD_DEPTH
    return PAIR_HEAD_DEPTH * (2 if blocks <= 9 else 4)


def _pair_in_weeks(replier: str, replied_to: str) -> str:
    """One pair's replies in the ``blocks`` weeks (consecutive Mondays: one range of
    ``ix_reply_pair_week_rollup_pair``) minus their ``outside`` days (key lookups)."""
    return f"""(
        coalesce((SELECT sum(replies) FROM reply_pair_week_rollup r
                  WHERE r.chat_id = :chat_id AND r.from_user_id = {replier}
                    AND r.to_user_id = {replied_to}
                    AND r.week >= (SELECT min(week) FROM blocks)
                    AND r.week <= (SELECT max(week) FROM blocks)), 0)
        - coalesce((SELECT sum(replies) FROM reply_pair_day_rollup r
                    WHERE r.chat_id = :chat_id AND r.local_day = ANY(ARRAY(SELECT day FROM outside))
                      AND r.from_user_id = {replier} AND r.to_user_id = {replied_to}), 0))"""


def reply_pair_top(
    scope: ChatScope, period: Period, *, limit: int, depth: int | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The period's top ``limit`` (replier, replied-to) pairs, other members only, without
    summing every pair: a threshold top-N over the period's blocks. None when the
    period has no week that could be a block, or more than ``MAX_PAIR_BLOCKS``: the
    bound grows with each block, and past a quarter the caller sums every pair faster.

    The blocks are the sealed weeks with at most ``MAX_SUBTRACTED_DAYS`` days outside
    the period (a week row; those days are subtracted) and the other days of the
    period, summed per pair (``open``). From each block the ``depth`` (default
    ``pair_head_depth``) largest rows are read (week rows through
    ``ix_reply_pair_week_rollup_top``); every pair seen there is summed exactly by
    key lookups. A pair seen in no head has, in each full
    head's block, at most that head's smallest row (rows count up from zero, so a
    week row bounds the week's days in the period), so at most ``bound`` replies in
    all. The answer is exact when ``bound`` is below the last listed pair (or below 1
    while fewer than ``limit`` pairs are listed); otherwise the caller sums every
    pair. When none of the weeks is sealed (a chat whose seal lags or was reset),
    ``open`` already sums every pair of the period: the answer is read from it
    (no heads, bound 0). One row at least: ``from_user_id`` is NULL when no pair is
    listed.

    Columns: ``from_user_id``, ``to_user_id``, ``replies``, ``replies_back`` (the
    other direction), ``bound``, ``total`` (``MEMBER_REPLIES_SQL``)."""
    weeks = []
    week = period.start - timedelta(days=period.start.weekday())
    while week <= period.end:
        outside = max(0, (period.start - week).days) + max(0, (week - period.end).days + 6)
        if outside <= MAX_SUBTRACTED_DAYS:
            weeks.append(week)
        week += timedelta(days=7)
    if not 1 <= len(weeks) <= MAX_PAIR_BLOCKS:
        return None
    params: dict[str, Any] = {
        "chat_id": scope.chat_id, "start": period.start, "end": period.end,
        "pair_weeks": weeks, "depth": depth or pair_head_depth(len(weeks)), "limit": limit,
    }  # fmt: skip
    sql = f"""
        WITH blocks AS MATERIALIZED (
            SELECT week FROM unnest(CAST(:pair_weeks AS date[])) AS w(week) WHERE week < {_SEAL_SQL}
        ), outside AS MATERIALIZED (
            SELECT CAST(d AS date) AS day
            FROM blocks, generate_series(blocks.week, blocks.week + 6, interval '1 day') AS d
            WHERE d < CAST(:start AS date) OR d > CAST(:end AS date)
        ), open AS MATERIALIZED (
            SELECT from_user_id, to_user_id, sum(CAST(replies AS int))::bigint AS replies
            FROM reply_pair_day_rollup
            WHERE chat_id = :chat_id AND from_user_id <> to_user_id
              AND local_day = ANY(ARRAY(
                  SELECT CAST(d AS date) FROM generate_series(
                      CAST(:start AS date), CAST(:end AS date), interval '1 day') AS d
                  WHERE CAST(d AS date) - (extract(isodow FROM d)::int - 1)
                        NOT IN (SELECT week FROM blocks)))
            GROUP BY from_user_id, to_user_id
        ), heads AS MATERIALIZED (
            SELECT b.week, h.from_user_id, h.to_user_id, h.replies
            FROM blocks b CROSS JOIN LATERAL (
                SELECT from_user_id, to_user_id, replies FROM reply_pair_week_rollup r
                WHERE r.chat_id = :chat_id AND r.week = b.week AND r.from_user_id <> r.to_user_id
                ORDER BY r.replies DESC LIMIT :depth
            ) AS h
            UNION ALL
            SELECT NULL, * FROM (
                SELECT from_user_id, to_user_id, replies FROM open
                WHERE EXISTS (SELECT FROM blocks)
                ORDER BY replies DESC LIMIT :depth
            ) AS o
        ), bound AS (
            SELECT coalesce(sum(lowest) FILTER (WHERE n = :depth), 0)::bigint AS replies
            FROM (SELECT count(*) AS n, min(replies) AS lowest FROM heads GROUP BY week) AS h
        ), priced AS MATERIALIZED (
            SELECT c.from_user_id, c.to_user_id,
                   ({_pair_in_weeks("c.from_user_id", "c.to_user_id")}
                    + coalesce(o.replies, 0))::bigint AS replies
            FROM (SELECT DISTINCT from_user_id, to_user_id FROM heads) AS c
            LEFT JOIN open o USING (from_user_id, to_user_id)
            UNION ALL
            SELECT from_user_id, to_user_id, replies FROM open WHERE NOT EXISTS (SELECT FROM blocks)
        ), top AS (
            SELECT * FROM priced WHERE replies > 0
            ORDER BY replies DESC, from_user_id, to_user_id LIMIT :limit
        )
        SELECT t.from_user_id, t.to_user_id, t.replies,
               ({_pair_in_weeks("t.to_user_id", "t.from_user_id")}
                + coalesce(o.replies, 0))::bigint AS replies_back,
               bound.replies AS bound, ({MEMBER_REPLIES_SQL}) AS total
        FROM bound
        LEFT JOIN top t ON true
        LEFT JOIN open o ON o.from_user_id = t.to_user_id AND o.to_user_id = t.from_user_id
        ORDER BY t.replies DESC, t.from_user_id, t.to_user_id
    """
    return sql, params


def term_rows(scope: ChatScope, period: Period) -> tuple[str, dict[str, Any]]:
    """Per term of kind ``:kind``, per day or sealed week: count (always the chat's days;
    only good for sums per term: see ``_split``'s ``minus_sql``).

    Day rows are keyed (chat, day, kind, term): each day is looked up on its own, so
    a rare kind does not read the day's words."""
    return _split(
        scope,
        period,
        "",
        "SELECT term, CAST(count AS int) AS count FROM chat_term_day_rollup"
        " WHERE chat_id = :chat_id AND kind = :kind AND {days}",
        "SELECT term, CAST(count AS int) FROM chat_term_week_rollup"
        " WHERE chat_id = :chat_id AND kind = :kind AND {weeks}",
        day_list=True,
        minus_sql="SELECT term, -CAST(count AS int) FROM chat_term_day_rollup"
        " WHERE chat_id = :chat_id AND kind = :kind AND {days}",
    )
