"""Small helpers shared by the stats modules: percentages, deltas, names, queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.stats.results import MetricDelta
from tgstats.timezones import accepted_timezones, effective_timezone

__all__ = [
    "CHAT_ZONE_SQL",
    "delta",
    "display_name",
    "fetch_all",
    "fetch_one",
    "pct",
    "ratio",
    "user_names",
    "zone_params",
]


#: A chat's zone: a stored zone no longer accepted counts as the default, so that one
#: hand-edited row never fails ``AT TIME ZONE`` for a whole statement. Needs
#: ``zone_params`` and ``chat_settings s`` joined.
CHAT_ZONE_SQL = "CASE WHEN s.timezone = ANY(:zones) THEN s.timezone ELSE :default_tz END"


def zone_params(default_timezone: str) -> dict[str, Any]:
    """The parameters ``CHAT_ZONE_SQL`` reads."""
    return {
        "default_tz": effective_timezone(None, default_timezone),
        "zones": sorted(accepted_timezones()),
    }


def pct(part: float, whole: float) -> float | None:
    """``part`` as a percentage of ``whole``, 2 decimals; None when ``whole`` is 0."""
    if not whole:
        return None
    return round(part * 100.0 / whole, 2)


def ratio(part: float, whole: float, *, digits: int = 2) -> float:
    """``part / whole`` rounded; 0 when ``whole`` is 0."""
    if not whole:
        return 0.0
    return round(part / whole, digits)


def delta(value: float, previous: float) -> MetricDelta:
    change = value - previous
    return MetricDelta(
        value=value,
        previous=previous,
        change=round(change, 4),
        change_pct=pct(change, previous),
    )


def display_name(
    user_id: int,
    first_name: str | None = None,
    last_name: str | None = None,
    username: str | None = None,
) -> str:
    """What people call the member: first + last name, else @username, else the id."""
    full = " ".join(part for part in (first_name, last_name) if part).strip()
    if full:
        return full
    if username:
        return f"@{username}"
    return f"user {user_id}"


async def fetch_all(
    session: AsyncSession, sql: str, params: Mapping[str, Any]
) -> Sequence[Row[Any]]:
    result = await session.execute(text(sql), dict(params))
    return result.all()


async def fetch_one(session: AsyncSession, sql: str, params: Mapping[str, Any]) -> Row[Any]:
    result = await session.execute(text(sql), dict(params))
    row = result.first()
    if row is None:  # aggregate queries always return a row; a missing one is a bug
        raise RuntimeError("stats query returned no row")
    return row


async def user_names(
    session: AsyncSession, user_ids: Sequence[int]
) -> dict[int, tuple[str | None, str]]:
    """``user_id -> (username, display name)`` for the given ids, one query."""
    ids = sorted({uid for uid in user_ids if uid is not None})
    names: dict[int, tuple[str | None, str]] = {uid: (None, display_name(uid)) for uid in ids}
    if not ids:
        return names
    # Negative ids are chats posting as themselves (channels, anonymous admins).
    rows = await fetch_all(
        session,
        "SELECT id, username, first_name, last_name FROM users WHERE id = ANY(:ids) "
        "UNION ALL SELECT id, username, title, NULL FROM chats WHERE id = ANY(:ids)",
        {"ids": ids},
    )
    for row in rows:
        names[row.id] = (
            row.username,
            display_name(row.id, row.first_name, row.last_name, row.username),
        )
    return names
