"""How members respond to each other: reactions and reply pairs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.stats.common import fetch_all, fetch_one, user_names
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import (
    InteractionStats,
    ReactedMessage,
    ReactionStats,
    ReplyPair,
    TermCount,
    UserCount,
)
from tgstats.stats.sources import day_source, reply_pair_source, source_params, user_day_source

__all__ = ["interactions", "reactions"]

MAX_ROWS = 100


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_ROWS:
        raise ValueError(f"limit: expected 1 to {MAX_ROWS}")


def _in_period_sql(scope: ChatScope) -> str:
    """A message row ``m`` sent on a local day of the period."""
    if scope.uses_raw:
        return "(m.date AT TIME ZONE :tz)::date BETWEEN :start AND :end"
    return "m.local_day BETWEEN :start AND :end"


async def _top_messages(
    session: AsyncSession, scope: ChatScope, params: dict[str, object], limit: int
) -> list[ReactedMessage]:
    """Messages of the period with the most reactions now.

    Per message and emoji the count is the larger of the per-user reactions we
    saw and the total Telegram last reported (anonymous reactions are only in
    the latter). Message ids grow with time, so the ids of the first and last
    message around the period (two index probes) bound the scan of the reaction
    tables through their (chat_id, msg_id, ...) keys; the join back to
    ``messages`` then keeps exactly the period's messages.
    """
    rows = await fetch_all(
        session,
        f"""
        WITH ids AS (
            SELECT (SELECT msg_id FROM messages WHERE chat_id = :chat_id AND date >= :utc_lo
                    ORDER BY date LIMIT 1) AS lo,
                   (SELECT msg_id FROM messages WHERE chat_id = :chat_id AND date < :utc_hi
                    ORDER BY date DESC LIMIT 1) AS hi
        ), per_emoji AS (
            SELECT msg_id, reaction, max(n) AS n FROM (
                SELECT r.msg_id, r.reaction, count(*) AS n
                FROM message_reactions r, ids
                WHERE r.chat_id = :chat_id AND r.msg_id BETWEEN ids.lo AND ids.hi
                  AND r.removed_at IS NULL
                GROUP BY r.msg_id, r.reaction
                UNION ALL
                SELECT c.msg_id, c.reaction, c.count
                FROM reaction_counts c, ids
                WHERE c.chat_id = :chat_id AND c.msg_id BETWEEN ids.lo AND ids.hi
            ) both_sources
            GROUP BY msg_id, reaction
        ), per_message AS (
            SELECT msg_id, sum(n)::bigint AS total,
                   array_agg(reaction ORDER BY n DESC, reaction) AS emoji,
                   array_agg(n ORDER BY n DESC, reaction) AS counts
            FROM per_emoji WHERE n > 0 GROUP BY msg_id
        )
        SELECT p.msg_id, p.total, p.emoji, p.counts, m.user_id, m.date
        FROM per_message p
        JOIN messages m ON m.chat_id = :chat_id AND m.msg_id = p.msg_id
        WHERE {_in_period_sql(scope)} AND NOT m.is_deleted
        ORDER BY p.total DESC, p.msg_id
        LIMIT :limit
        """,
        params | {"limit": limit},
    )
    names = await user_names(session, [row.user_id for row in rows if row.user_id is not None])
    out = []
    for row in rows:
        total = int(row.total)
        out.append(
            ReactedMessage(
                msg_id=row.msg_id,
                user_id=row.user_id,
                display_name=names[row.user_id][1] if row.user_id is not None else None,
                date=row.date,
                reactions=total,
                top_reactions=[
                    TermCount(term=emoji, count=int(n), share_pct=round(int(n) * 100 / total, 2))
                    for emoji, n in list(zip(row.emoji, row.counts, strict=True))[:5]
                ],
                link=scope.message_link(row.msg_id),
            )
        )
    return out


async def _top_emoji(
    session: AsyncSession, scope: ChatScope, params: dict[str, object], limit: int
) -> list[TermCount]:
    if scope.uses_raw:
        sql = """
            SELECT reaction AS term, count(*)::bigint AS n FROM message_reactions
            WHERE chat_id = :chat_id AND removed_at IS NULL
              AND added_at >= :utc_lo AND added_at < :utc_hi
              AND (added_at AT TIME ZONE :tz)::date BETWEEN :start AND :end
            GROUP BY reaction
        """
    else:
        sql = """
            SELECT term, sum(count)::bigint AS n FROM chat_term_day_rollup
            WHERE chat_id = :chat_id AND local_day BETWEEN :start AND :end AND kind = 'reaction'
            GROUP BY term
        """
    rows = await fetch_all(
        session,
        f"SELECT term, n, sum(n) OVER () AS total FROM ({sql}) t "
        f"WHERE n > 0 ORDER BY n DESC, term LIMIT :limit",
        params | {"limit": limit},
    )
    return [
        TermCount(
            term=row.term, count=int(row.n), share_pct=round(int(row.n) * 100 / int(row.total), 2)
        )
        for row in rows
    ]


async def _top_users(
    session: AsyncSession, scope: ChatScope, params: dict[str, object], limit: int
) -> tuple[list[UserCount], list[UserCount]]:
    """Top reaction givers and receivers from one pass over the period's user-days."""
    rows = await fetch_all(
        session,
        f"SELECT user_id, sum(reactions_given)::bigint AS given, "
        f"sum(reactions_received)::bigint AS received FROM ({user_day_source(scope)}) u "
        f"GROUP BY user_id HAVING sum(reactions_given) > 0 OR sum(reactions_received) > 0",
        params,
    )
    givers = sorted((r for r in rows if r.given > 0), key=lambda r: (-r.given, r.user_id))
    receivers = sorted((r for r in rows if r.received > 0), key=lambda r: (-r.received, r.user_id))
    givers, receivers = givers[:limit], receivers[:limit]
    names = await user_names(session, [r.user_id for r in (*givers, *receivers)])

    def counts(picked: list[Any], column: str) -> list[UserCount]:
        return [
            UserCount(
                user_id=r.user_id,
                username=names[r.user_id][0],
                display_name=names[r.user_id][1],
                count=int(getattr(r, column)),
            )
            for r in picked
        ]

    return counts(givers, "given"), counts(receivers, "received")


async def reactions(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 10
) -> ReactionStats:
    """Top emoji, most-reacted messages (with t.me links) and who gives and gets reactions."""
    _check_limit(limit)
    params = source_params(scope, period)
    total = await fetch_one(
        session,
        f"SELECT coalesce(sum(reactions), 0) AS n FROM ({day_source(scope)}) d",
        params,
    )
    givers, receivers = await _top_users(session, scope, params, limit)
    return ReactionStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        total=int(total.n),
        top_emoji=await _top_emoji(session, scope, params, limit),
        top_messages=await _top_messages(session, scope, params, limit),
        top_givers=givers,
        top_receivers=receivers,
    )


async def interactions(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 20
) -> InteractionStats:
    """Who replies to whom: the top (replier, replied-to) pairs, with the reverse count."""
    _check_limit(limit)
    params = source_params(scope, period) | {"limit": limit}
    rows = await fetch_all(
        session,
        f"""
        WITH pairs AS (
            SELECT from_user_id, to_user_id, sum(replies)::bigint AS replies
            FROM ({reply_pair_source(scope)}) p
            WHERE from_user_id <> to_user_id
            GROUP BY from_user_id, to_user_id
        )
        SELECT a.from_user_id, a.to_user_id, a.replies, coalesce(b.replies, 0) AS back,
               sum(a.replies) OVER () AS total
        FROM pairs a
        LEFT JOIN pairs b ON b.from_user_id = a.to_user_id AND b.to_user_id = a.from_user_id
        ORDER BY a.replies DESC, a.from_user_id, a.to_user_id
        LIMIT :limit
        """,
        params,
    )
    total = int(rows[0].total) if rows else 0
    names = await user_names(
        session, [uid for row in rows for uid in (row.from_user_id, row.to_user_id)]
    )
    pairs: list[ReplyPair] = []
    for row in rows:
        pairs.append(
            ReplyPair(
                from_user_id=row.from_user_id,
                from_name=names[row.from_user_id][1],
                to_user_id=row.to_user_id,
                to_name=names[row.to_user_id][1],
                replies=int(row.replies),
                replies_back=int(row.back),
            )
        )
    return InteractionStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        total_replies=total,
        pairs=pairs,
    )
