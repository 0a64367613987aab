"""How members respond to each other: reactions and reply pairs."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
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
from tgstats.stats.subqueries import (
    MEMBER_REPLIES_SQL,
    day_source,
    reply_pair_rows,
    reply_pair_top,
    source_params,
    term_rows,
    user_rows,
)

__all__ = ["interactions", "reactions"]

MAX_ROWS = 100


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_ROWS:
        raise ValueError(f"limit: expected 1 to {MAX_ROWS}")


async def _top_messages(
    session: AsyncSession, scope: ChatScope, period: Period, limit: int
) -> tuple[list[Any], dict[int, list[tuple[str, int]]]]:
    """Messages of the period with the most reactions now.

    Per message and emoji the count is the larger of the per-user reactions we
    saw and the total Telegram last reported (anonymous reactions are only in
    the latter). Message ids grow with time, so the ids of the period's first
    and last message (two index probes at its exact UTC bounds) bound the scan
    of the reaction tables through their (chat_id, msg_id, ...) keys; history
    moved from a basic group has negated ids that shrink with time, so it gets
    its own two probes and range. The per-message totals (kept by the database
    in ``message_reaction_totals``) are ranked first; only the winners are joined
    back to ``messages`` and broken down by emoji. Returns the ranked rows and,
    per message, its ``(emoji, count)`` pairs.
    """
    zone = scope.zone()
    params: dict[str, Any] = {
        "chat_id": scope.chat_id,
        "lo_at": datetime.combine(period.start, time(), tzinfo=zone).astimezone(UTC),
        "hi_at": datetime.combine(period.end + timedelta(days=1), time(), tzinfo=zone).astimezone(
            UTC
        ),
        "limit": limit,
    }

    # Index probes, in a statement of their own so the planner sees plain bounds below.
    # Migrated history (negated ids) is probed only when the chat has any (one PK probe
    # first; CASE runs a branch's subquery only when taken): otherwise a "msg_id < 0"
    # probe along the date index would read the whole chat.
    def probe(condition: str) -> str:
        return f"(SELECT msg_id FROM messages WHERE chat_id = :chat_id AND {condition})"

    moved = "EXISTS (SELECT 1 FROM messages WHERE chat_id = :chat_id AND msg_id < 0)"
    lo = probe("msg_id > 0 AND date >= :lo_at ORDER BY date LIMIT 1")
    hi = probe("msg_id > 0 AND date < :hi_at ORDER BY date DESC LIMIT 1")
    moved_lo = probe("msg_id < 0 AND date < :hi_at ORDER BY msg_id LIMIT 1")
    moved_hi = probe("msg_id < 0 AND date >= :lo_at ORDER BY msg_id DESC LIMIT 1")
    bounds = await fetch_one(
        session,
        f"SELECT {lo} AS lo, {hi} AS hi, CASE WHEN {moved} THEN {moved_lo} END AS moved_lo,"
        f" CASE WHEN {moved} THEN {moved_hi} END AS moved_hi",
        params,
    )
    params |= bounds._asdict()
    per_emoji = """
        WITH per_emoji AS (
            SELECT msg_id, reaction, max(n) AS n FROM (
                SELECT r.msg_id, r.reaction, count(*) AS n
                FROM message_reactions r
                WHERE r.chat_id = :chat_id AND (r.msg_id BETWEEN :lo AND :hi
                       OR r.msg_id BETWEEN :moved_lo AND :moved_hi)
                  AND r.removed_at IS NULL {only}
                GROUP BY r.msg_id, r.reaction
                UNION ALL
                SELECT c.msg_id, c.reaction, c.count
                FROM reaction_counts c
                WHERE c.chat_id = :chat_id AND (c.msg_id BETWEEN :lo AND :hi
                       OR c.msg_id BETWEEN :moved_lo AND :moved_hi) {only_c}
            ) both_sources
            GROUP BY msg_id, reaction
        )
    """
    # Ranked from each message's total (``message_reaction_totals``, kept by the
    # database): one row per reacted message of the id range, not every reaction.
    ranked = await fetch_all(
        session,
        """
        SELECT p.msg_id, p.total, m.user_id, m.date
        FROM (SELECT t.msg_id, t.total FROM message_reaction_totals t
              WHERE t.chat_id = :chat_id AND (t.msg_id BETWEEN :lo AND :hi
                     OR t.msg_id BETWEEN :moved_lo AND :moved_hi) AND t.total > 0
              ORDER BY t.total DESC, t.msg_id) p
        JOIN messages m ON m.chat_id = :chat_id AND m.msg_id = p.msg_id
        WHERE NOT m.is_deleted AND m.date >= :lo_at AND m.date < :hi_at
        ORDER BY p.total DESC, p.msg_id
        LIMIT :limit
        """,
        params,
    )
    ids = [row.msg_id for row in ranked]
    detail = await fetch_all(
        session,
        per_emoji.format(
            only="AND r.msg_id = ANY(CAST(:ids AS bigint[]))",
            only_c="AND c.msg_id = ANY(CAST(:ids AS bigint[]))",
        )
        + "SELECT msg_id, reaction, n FROM per_emoji WHERE n > 0",
        params | {"ids": ids},
    )
    by_message: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for row in detail:
        by_message[row.msg_id].append((row.reaction, int(row.n)))
    return list(ranked), by_message


def _reacted_messages(
    scope: ChatScope,
    ranked: list[Any],
    by_message: dict[int, list[tuple[str, int]]],
    names: dict[int, tuple[str | None, str]],
) -> list[ReactedMessage]:
    out = []
    for row in ranked:
        total = int(row.total)
        emoji = sorted(by_message[row.msg_id], key=lambda item: (-item[1], item[0]))[:5]
        out.append(
            ReactedMessage(
                msg_id=row.msg_id,
                user_id=row.user_id,
                display_name=names[row.user_id][1] if row.user_id is not None else None,
                date=row.date,
                reactions=total,
                top_reactions=[
                    TermCount(term=term, count=n, share_pct=round(n * 100 / total, 2))
                    for term, n in emoji
                ],
                link=scope.message_link(row.msg_id),
            )
        )
    return out


async def _top_emoji(
    session: AsyncSession, scope: ChatScope, period: Period, params: dict[str, object], limit: int
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
        terms_sql, terms_params = term_rows(scope, period)
        sql = f"SELECT term, sum(count)::bigint AS n FROM ({terms_sql}) r GROUP BY term"
        params = params | terms_params | {"kind": "reaction"}
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
    session: AsyncSession, scope: ChatScope, period: Period, limit: int
) -> tuple[list[Any], list[Any], int]:
    """Top reaction givers and receivers from one pass over the period's user-days, and
    the period's reactions (from the day rows, in the same statement)."""
    rows_sql, rows_params = user_rows(scope, period, sums=True)
    # Both rankings cut in SQL: only the two pages come back. One row at least (the
    # total); ``user_id`` is NULL when nobody gave or got a reaction.
    rows = await fetch_all(
        session,
        f"""
        WITH per_user AS (
            SELECT user_id, sum(reactions_given)::bigint AS given,
                   sum(reactions_received)::bigint AS received
            FROM ({rows_sql}) u GROUP BY user_id
        ), ranked AS (
            (SELECT true AS giver, user_id, given AS n FROM per_user WHERE given > 0
             ORDER BY given DESC, user_id LIMIT :limit)
            UNION ALL
            (SELECT false, user_id, received FROM per_user WHERE received > 0
             ORDER BY received DESC, user_id LIMIT :limit)
        )
        SELECT r.giver, r.user_id, r.n,
               (SELECT coalesce(sum(reactions), 0) FROM ({day_source(scope)}) d) AS total
        FROM (SELECT) AS one LEFT JOIN ranked r ON true
        """,
        source_params(scope, period) | rows_params | {"limit": limit},
    )
    listed = [r for r in rows if r.user_id is not None]
    givers = [r for r in listed if r.giver]
    receivers = [r for r in listed if not r.giver]
    return givers, receivers, int(rows[0].total)


async def reactions(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 10
) -> ReactionStats:
    """Top emoji, most-reacted messages (with t.me links) and who gives and gets reactions."""
    _check_limit(limit)
    givers, receivers, total = await _top_users(session, scope, period, limit)
    top_emoji = await _top_emoji(session, scope, period, source_params(scope, period), limit)
    ranked, by_message = await _top_messages(session, scope, period, limit)
    # One lookup for every name shown: givers, receivers and the messages' authors.
    names = await user_names(
        session, [r.user_id for r in (*givers, *receivers, *ranked) if r.user_id is not None]
    )

    def counts(picked: list[Any]) -> list[UserCount]:
        return [
            UserCount(
                user_id=r.user_id,
                username=names[r.user_id][0],
                display_name=names[r.user_id][1],
                count=int(r.n),
            )
            for r in picked
        ]

    return ReactionStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        total=total,
        top_emoji=top_emoji,
        top_messages=_reacted_messages(scope, ranked, by_message, names),
        top_givers=counts(givers),
        top_receivers=counts(receivers),
    )


async def _every_pair_summed(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    limit: int,
    total_sql: str = "SELECT sum(replies) FROM pairs",
) -> tuple[list[Any], int]:
    """The top pairs, from every pair of the period summed, and ``total_sql``."""
    pairs_sql, params = reply_pair_rows(scope, period)
    # One pass: every pair summed once (a materialized CTE), then the top pairs and, for
    # them only, the other direction looked up in the same sums.
    rows = await fetch_all(
        session,
        f"""
        WITH pairs AS MATERIALIZED (
            SELECT from_user_id, to_user_id, sum(replies)::bigint AS replies
            FROM ({pairs_sql}) p
            WHERE from_user_id <> to_user_id
            GROUP BY from_user_id, to_user_id
        ), top AS (
            SELECT * FROM pairs WHERE replies > 0
            ORDER BY replies DESC, from_user_id, to_user_id LIMIT :limit
        )
        SELECT t.from_user_id, t.to_user_id, t.replies,
               coalesce(({total_sql}), 0) AS total,
               coalesce(b.replies, 0) AS replies_back
        FROM (SELECT) AS one
        LEFT JOIN top t ON true
        LEFT JOIN pairs b ON b.from_user_id = t.to_user_id AND b.to_user_id = t.from_user_id
        ORDER BY t.replies DESC, t.from_user_id, t.to_user_id
        """,
        params | {"limit": limit},
    )
    # One row at least (the total); no pair listed when its ids are NULL.
    return [row for row in rows if row.from_user_id is not None], int(rows[0].total)


async def _top_pairs(
    session: AsyncSession, scope: ChatScope, period: Period, limit: int
) -> tuple[list[Any], int]:
    """The top pairs and the period's replies between members."""
    if scope.uses_raw:
        return await _every_pair_summed(session, scope, period, limit)
    # Usually exact from each block's largest rows (``reply_pair_top``): a month of a
    # big chat has tens of thousands of pairs, most with a reply or two, and summing
    # them all is most of the work.
    top = reply_pair_top(scope, period, limit=limit)
    if top is not None:
        found = await fetch_all(session, *top)
        listed = [row for row in found if row.from_user_id is not None]
        lowest_listed = listed[-1].replies if len(listed) == limit else 1
        if found[0].bound < lowest_listed:
            return listed, int(found[0].total)
    # The total from the chat's day rows whichever way the pairs were found.
    return await _every_pair_summed(session, scope, period, limit, MEMBER_REPLIES_SQL)


async def interactions(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 20
) -> InteractionStats:
    """Who replies to whom: the top (replier, replied-to) pairs, with the reverse count,
    and the period's replies between members."""
    _check_limit(limit)
    rows, total = await _top_pairs(session, scope, period, limit)
    names = await user_names(
        session, [uid for row in rows for uid in (row.from_user_id, row.to_user_id)]
    )
    pairs = [
        ReplyPair(
            from_user_id=row.from_user_id,
            from_name=names[row.from_user_id][1],
            to_user_id=row.to_user_id,
            to_name=names[row.to_user_id][1],
            replies=int(row.replies),
            replies_back=int(row.replies_back),
        )
        for row in rows
    ]
    return InteractionStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        total_replies=total,
        pairs=pairs,
    )
