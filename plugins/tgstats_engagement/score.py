"""The engagement score: one number per member and period, from four parts.

    total = 0.30 * activity + 0.25 * consistency + 0.25 * quality + 0.20 * interaction

Each part is 0-100; ``docs/stats.md`` gives the exact normalisation with a
worked example. Counts come from the per-user day and week rollups through the same
sources every other stat reads (raw rows under a ``tz`` override), so only
members who posted in the period get a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.plugin_api.stats import ChatScope, Period, user_names, user_rows

__all__ = [
    "WEIGHTS",
    "EngagementBoard",
    "EngagementScore",
    "UserCounts",
    "engagement",
    "score",
    "totals",
]

#: Weights of the parts in the total.
WEIGHTS = {"activity": 0.30, "consistency": 0.25, "quality": 0.25, "interaction": 0.20}
#: Messages per day that earn full activity.
ACTIVITY_FULL_PER_DAY = 10.0
#: Quality: (weight, value per message that earns the full share).
QUALITY_PARTS = {
    "length": (0.35, 80.0),  # average characters per message
    "links": (0.15, 0.25),  # links per message
    "media": (0.15, 0.25),  # media messages per message
    "reactions_received": (0.35, 1.0),  # reactions received per message
}
#: Interaction: (weight, value per message that earns the full share).
INTERACTION_PARTS = {
    "replies_sent": (0.5, 0.5),
    "reactions_given": (0.5, 1.0),
}
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class UserCounts:
    """What a member did in the period (counts) and the period's length in days."""

    messages: int
    active_days: int
    text_length: int
    links: int
    media: int
    reactions_received: int
    replies_sent: int
    reactions_given: int
    period_days: int


class EngagementScore(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    username: str | None
    display_name: str
    rank: int
    total: float
    activity: float
    consistency: float
    quality: float
    interaction: float
    messages: int
    active_days: int


class EngagementBoard(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    weights: dict[str, float]
    total: int  # members scored (posted at least once in the period)
    limit: int
    offset: int
    scores: list[EngagementScore]


def _capped(value: float, full: float) -> float:
    """``value / full`` capped to 0..1."""
    return max(0.0, min(1.0, value / full))


def score(c: UserCounts) -> dict[str, float]:
    """The four parts and the total for one member, each 0-100, rounded to 2 decimals."""
    if c.messages <= 0 or c.period_days <= 0:
        return dict.fromkeys(("activity", "consistency", "quality", "interaction", "total"), 0.0)
    per_message = {
        "length": c.text_length / c.messages,
        "links": c.links / c.messages,
        "media": c.media / c.messages,
        "reactions_received": c.reactions_received / c.messages,
        "replies_sent": c.replies_sent / c.messages,
        "reactions_given": c.reactions_given / c.messages,
    }
    parts = {
        "activity": 100 * _capped(c.messages / c.period_days, ACTIVITY_FULL_PER_DAY),
        "consistency": 100 * _capped(c.active_days, c.period_days),
        "quality": 100
        * sum(w * _capped(per_message[k], full) for k, (w, full) in QUALITY_PARTS.items()),
        "interaction": 100
        * sum(w * _capped(per_message[k], full) for k, (w, full) in INTERACTION_PARTS.items()),
    }
    total = sum(WEIGHTS[name] * value for name, value in parts.items())
    return {**{k: round(v, 2) for k, v in parts.items()}, "total": round(total, 2)}


#: ``UserCounts`` fields in the column order ``_totals`` reads.
_COLUMNS = (
    "messages", "active_days", "text_length", "links", "media", "reactions_received",
    "replies_sent", "reactions_given", "period_days",
)  # fmt: skip


def totals(counts: Sequence[UserCounts]) -> list[float]:
    """``score(c)["total"]`` of each member (see ``_totals``)."""
    columns = np.array(
        [[getattr(c, name) for name in _COLUMNS] for c in counts], dtype=np.float64
    ).reshape(len(counts), len(_COLUMNS))
    return _totals(columns)


def _totals(columns: Any) -> list[float]:
    """``score()["total"]`` of each row of ``columns`` (``_COLUMNS``), with numpy.

    The same float operations in the same order as ``score`` (IEEE doubles either
    way; counts below 2**53 convert exactly), so the unrounded totals are equal bit
    for bit; each is then rounded by Python's ``round`` as ``score`` does. Rows
    without messages score 0.
    """
    if not len(columns):
        return []
    messages, days = columns[:, 0], columns[:, 8]
    valid = (messages > 0) & (days > 0)
    messages = np.where(valid, messages, 1.0)
    days = np.where(valid, days, 1.0)

    def capped(value: Any, full: Any) -> Any:
        return np.clip(value / full, 0.0, 1.0)

    per_message = {
        "length": columns[:, 2] / messages,
        "links": columns[:, 3] / messages,
        "media": columns[:, 4] / messages,
        "reactions_received": columns[:, 5] / messages,
        "replies_sent": columns[:, 6] / messages,
        "reactions_given": columns[:, 7] / messages,
    }

    def weighted(parts: dict[str, tuple[float, float]]) -> Any:
        acc: Any = 0
        for key, (weight, full) in parts.items():
            acc = acc + weight * capped(per_message[key], full)
        return acc

    parts = {
        "activity": 100 * capped(messages / days, ACTIVITY_FULL_PER_DAY),
        "consistency": 100 * capped(columns[:, 1], days),
        "quality": 100 * weighted(QUALITY_PARTS),
        "interaction": 100 * weighted(INTERACTION_PARTS),
    }
    total: Any = 0
    for name, value in parts.items():
        total = total + WEIGHTS[name] * value
    return [
        round(t, 2) if ok else 0.0 for t, ok in zip(total.tolist(), valid.tolist(), strict=True)
    ]


async def _counts(session: AsyncSession, scope: ChatScope, period: Period) -> tuple[list[int], Any]:
    """The posters of the period and their counts (one row each, ``_COLUMNS`` order)."""
    rows_sql, params = user_rows(scope, period, sums=True)
    result = await session.execute(
        text(
            f"""
            SELECT user_id, sum(messages)::bigint AS messages,
                   sum(active_days)::bigint AS active_days,
                   sum(text_length)::bigint AS text_length, sum(urls)::bigint AS links,
                   sum(media)::bigint AS media,
                   sum(reactions_received)::bigint AS reactions_received,
                   sum(replies_sent)::bigint AS replies_sent,
                   sum(reactions_given)::bigint AS reactions_given,
                   CAST(:days AS bigint) AS period_days
            FROM ({rows_sql}) u
            GROUP BY user_id HAVING sum(messages) > 0
            """
        ),
        params | {"days": period.days},
    )
    rows = result.all()
    user_ids = [row[0] for row in rows]
    counts = np.array([row[1:] for row in rows], dtype=np.int64).reshape(len(rows), len(_COLUMNS))
    return user_ids, counts


async def engagement(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    *,
    limit: int = 20,
    offset: int = 0,
) -> EngagementBoard:
    """Members who posted in the period, by engagement score (ties: more messages first)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: expected 1 to {MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset: expected 0 or more")
    user_ids, counts = await _counts(session, scope, period)
    # Totals of every member rank them (vectorised); the page's members get their parts.
    order = sorted(
        zip(_totals(counts.astype(np.float64)), counts[:, 0].tolist(), user_ids, strict=True),
        key=lambda item: (-item[0], -item[1], item[2]),
    )
    index = {user_id: i for i, user_id in enumerate(user_ids)}
    page = []
    for _, _, user_id in order[offset : offset + limit]:
        c = UserCounts(*(int(v) for v in counts[index[user_id]]))
        page.append((score(c), c, user_id))
    names = await user_names(session, [user_id for _, _, user_id in page])
    return EngagementBoard(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        weights=dict(WEIGHTS),
        total=len(user_ids),
        limit=limit,
        offset=offset,
        scores=[
            EngagementScore(
                user_id=user_id,
                username=names[user_id][0],
                display_name=names[user_id][1],
                rank=offset + index + 1,
                total=parts["total"],
                activity=parts["activity"],
                consistency=parts["consistency"],
                quality=parts["quality"],
                interaction=parts["interaction"],
                messages=counts.messages,
                active_days=counts.active_days,
            )
            for index, (parts, counts, user_id) in enumerate(page)
        ],
    )
