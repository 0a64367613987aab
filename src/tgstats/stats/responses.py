"""Response times: how long questions and newcomers' first messages wait for a reply.

Questions come from ``question_replies`` (the writer keeps each question's first
reply, see ``tgstats.pipeline.questions``), read by ``(chat_id, local_day)``:
O(questions of the period). Newcomers' first messages are looked up per
newcomer (``ix_messages_chat_user_date``) and their first reply through
``ix_messages_reply_target``: O(newcomers). Neither reads the period's messages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.stats.common import fetch_all, pct, user_names
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import ResponderRow, ResponseSummary, ResponseTimes
from tgstats.stats.subqueries import source_params

__all__ = ["MAX_RESPONDERS", "RESPONSE_WINDOW", "response_times"]

#: A reply counts when it comes within this long; later ones do not.
RESPONSE_WINDOW = timedelta(days=7)
MAX_RESPONDERS = 100

# The first message of each member whose first recorded join is in the period (on or
# after that join), and the first reply to it by someone else.
_NEWCOMERS = """
WITH joins AS (
    SELECT e.user_id, min(e.date) AS joined_at
    FROM membership_events e
    WHERE e.chat_id = :chat_id AND e.action = 'join' AND e.user_id IS NOT NULL AND {in_period}
      AND NOT EXISTS (SELECT 1 FROM membership_events p
                      WHERE p.user_id = e.user_id AND p.chat_id = :chat_id
                        AND p.action = 'join' AND p.date < e.date)
    GROUP BY e.user_id
)
SELECT j.user_id AS asker, f.date AS asked_at, r.date AS reply_at, r.poster AS replier
FROM joins j
CROSS JOIN LATERAL (
    SELECT m.msg_id, m.date FROM messages m
    WHERE m.chat_id = :chat_id AND m.user_id = j.user_id AND m.date >= j.joined_at
    ORDER BY m.date, m.msg_id LIMIT 1
) f
LEFT JOIN LATERAL (
    SELECT r.date, coalesce(r.user_id, r.sender_chat_id) AS poster FROM messages r
    WHERE r.chat_id = :chat_id AND r.reply_to_msg_id = f.msg_id
      AND coalesce(r.user_id, r.sender_chat_id) IS NOT NULL
      AND coalesce(r.user_id, r.sender_chat_id) <> j.user_id
    ORDER BY r.date, r.msg_id LIMIT 1
) r ON true
"""


def _summary(rows: Sequence[tuple[datetime, datetime | None]], now: datetime) -> ResponseSummary:
    delays: list[float] = []
    unanswered = waiting = 0
    for asked_at, reply_at in rows:
        if reply_at is not None and reply_at - asked_at <= RESPONSE_WINDOW:
            delays.append(max(0.0, (reply_at - asked_at).total_seconds()))
        elif now - asked_at > RESPONSE_WINDOW:
            unanswered += 1
        else:
            waiting += 1
    delays.sort()
    decided = len(delays) + unanswered
    within = {limit: sum(1 for d in delays if d <= limit) for limit in (300, 3600, 86400)}
    return ResponseSummary(
        asked=len(rows),
        answered=len(delays),
        unanswered=unanswered,
        waiting=waiting,
        unanswered_pct=pct(unanswered, decided),
        median_seconds=delays[(len(delays) - 1) // 2] if delays else None,
        p90_seconds=delays[math.ceil(0.9 * len(delays)) - 1] if delays else None,
        within_5m=within[300],
        within_1h=within[3600],
        within_24h=within[86400],
        within_5m_pct=pct(within[300], decided),
        within_1h_pct=pct(within[3600], decided),
        within_24h_pct=pct(within[86400], decided),
    )


async def response_times(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    *,
    limit: int = 10,
    now: datetime | None = None,
) -> ResponseTimes:
    """Questions asked in the period and newcomers who first joined in it: how long until
    someone else replied (within ``RESPONSE_WINDOW``), the share never answered, and
    the members who replied first most often."""
    if not 1 <= limit <= MAX_RESPONDERS:
        raise ValueError(f"limit: expected 1 to {MAX_RESPONDERS}")
    now = now or datetime.now(UTC)
    params = source_params(scope, period)
    if scope.uses_raw:
        question_filter = (
            "asked_at >= :utc_lo AND asked_at < :utc_hi"
            " AND (asked_at AT TIME ZONE :tz)::date BETWEEN :start AND :end"
        )
        join_filter = (
            "e.date >= :utc_lo AND e.date < :utc_hi"
            " AND (e.date AT TIME ZONE :tz)::date BETWEEN :start AND :end"
        )
    else:
        question_filter = "local_day BETWEEN :start AND :end"
        join_filter = "e.local_day BETWEEN :start AND :end"
    questions = await fetch_all(
        session,
        "SELECT asked_at, first_reply_at AS reply_at, replier_id AS replier"
        f" FROM question_replies WHERE chat_id = :chat_id AND {question_filter}",
        params,
    )
    newcomers = await fetch_all(session, _NEWCOMERS.format(in_period=join_filter), params)
    firsts: dict[str, Counter[int]] = {"questions": Counter(), "newcomers": Counter()}
    for kind, rows in (("questions", questions), ("newcomers", newcomers)):
        for row in rows:
            in_window = row.reply_at is not None and row.reply_at - row.asked_at <= RESPONSE_WINDOW
            if in_window and row.replier is not None:
                firsts[kind][row.replier] += 1
    totals = firsts["questions"] + firsts["newcomers"]
    top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    names = await user_names(session, [uid for uid, _ in top])
    return ResponseTimes(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        window_hours=int(RESPONSE_WINDOW.total_seconds() // 3600),
        questions=_summary([(r.asked_at, r.reply_at) for r in questions], now),
        newcomers=_summary([(r.asked_at, r.reply_at) for r in newcomers], now),
        top_responders=[
            ResponderRow(
                user_id=uid,
                username=names[uid][0],
                display_name=names[uid][1],
                questions=firsts["questions"][uid],
                newcomers=firsts["newcomers"][uid],
                total=total,
            )
            for uid, total in top
        ],
    )
