"""Where the stats functions read their per-day counts from.

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
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from tgstats.stats.period import ChatScope, Period

__all__ = [
    "ACTIVE_MEMBER_SQL",
    "day_source",
    "hour_source",
    "media_source",
    "reply_pair_source",
    "source_params",
    "topic_source",
    "user_day_source",
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
