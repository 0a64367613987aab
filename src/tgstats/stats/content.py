"""What the chat talks about: media types, words, links and domains, hashtags, mentions, emoji.

Words, links, hashtags, mentions and emoji come from ``chat_term_day_rollup``,
counted at ingest from each message's text features; no text is needed, so
these work with ``store_text`` off. Term counts exist only per chat and day in
the chat's zone: under a ``tz`` override the period's edges stay on the
chat's own days (see docs/stats.md).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.stats.common import fetch_all, pct
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import (
    ContentStats,
    LinkStats,
    MediaBreakdown,
    MediaCount,
    TermCount,
    TermRanking,
)
from tgstats.stats.subqueries import media_source, source_params, term_rows

__all__ = ["TERM_KINDS", "content", "links", "media_breakdown", "top_terms"]

TERM_KINDS = ("word", "url", "domain", "hashtag", "mention", "emoji", "reaction")
MAX_TERMS = 200


async def media_breakdown(
    session: AsyncSession, scope: ChatScope, period: Period
) -> MediaBreakdown:
    """Messages per media type (``text`` = no media), most first."""
    rows = await fetch_all(
        session,
        f"SELECT media_type, sum(messages)::bigint AS messages FROM ({media_source(scope)}) d "
        f"GROUP BY media_type HAVING sum(messages) > 0 ORDER BY 2 DESC, 1",
        source_params(scope, period),
    )
    total = sum(int(row.messages) for row in rows)
    return MediaBreakdown(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        total_messages=total,
        media_messages=sum(int(row.messages) for row in rows if row.media_type != "text"),
        types=[
            MediaCount(
                media_type=row.media_type,
                messages=int(row.messages),
                share_pct=pct(int(row.messages), total),
            )
            for row in rows
        ],
    )


async def top_terms(
    session: AsyncSession, scope: ChatScope, period: Period, kind: str, *, limit: int = 20
) -> TermRanking:
    """The most counted terms of one ``kind`` (word, url, domain, hashtag, mention, emoji,
    reaction) with their share of all terms of that kind in the period."""
    if kind not in TERM_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(TERM_KINDS)}")
    if not 1 <= limit <= MAX_TERMS:
        raise ValueError(f"limit: expected 1 to {MAX_TERMS}")
    terms_sql, params = term_rows(scope, period)
    params |= {"kind": kind, "limit": limit}
    # One pass: the window totals are computed over every term before the LIMIT.
    rows = await fetch_all(
        session,
        f"""
        SELECT term, sum(count)::bigint AS n,
               sum(sum(count)) OVER () AS total, count(*) OVER () AS distinct_terms
        FROM ({terms_sql}) t
        GROUP BY term HAVING sum(count) > 0
        ORDER BY n DESC, term
        LIMIT :limit
        """,
        params,
    )
    totals = rows[0] if rows else None
    total = int(totals.total) if totals else 0
    return TermRanking(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        kind=kind,
        total=total,
        distinct=int(totals.distinct_terms) if totals else 0,
        terms=[
            TermCount(term=row.term, count=int(row.n), share_pct=pct(int(row.n), total))
            for row in rows
        ],
    )


async def links(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 20
) -> LinkStats:
    """Top shared links and the domains they point to."""
    urls = await top_terms(session, scope, period, "url", limit=limit)
    domains = await top_terms(session, scope, period, "domain", limit=limit)
    return LinkStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        total_links=urls.total,
        urls=urls.terms,
        domains=domains.terms,
    )


async def content(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 20
) -> ContentStats:
    """Everything above in one result (the dashboard's content section, ``/stats words``)."""
    return ContentStats(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        media=await media_breakdown(session, scope, period),
        words=await top_terms(session, scope, period, "word", limit=limit),
        links=await links(session, scope, period, limit=limit),
        hashtags=await top_terms(session, scope, period, "hashtag", limit=limit),
        mentions=await top_terms(session, scope, period, "mention", limit=limit),
        emoji=await top_terms(session, scope, period, "emoji", limit=limit),
    )
